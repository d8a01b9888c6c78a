"""One urllib3 pool for the Hub: retries with backoff, auth for the endpoint only, redirects."""

from __future__ import annotations

import email.utils
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import (
    HTTPError,
    LocationValueError,
    NewConnectionError,
    ProtocolError,
)
from urllib3.exceptions import (
    TimeoutError as Urllib3Timeout,
)

from wandown import __version__
from wandown.remote import messages
from wandown.remote.messages import HubError
from wandown.remote.settings import HubSettings, origin

USER_AGENT = f"wandown/{__version__}"
TIMEOUT = urllib3.Timeout(connect=10.0, read=30.0)
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10

Wait = Callable[[float, threading.Event], object]

# IETF draft-ietf-httpapi-ratelimit-headers, as the Hub sends it: RateLimit: "api";r=0;t=55
_RATELIMIT_RESET = re.compile(r";\s*t\s*=\s*(\d+)")


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying one request: attempts, total wait, backoff curve."""

    max_attempts: int = 8
    budget: float = 60.0
    first_backoff: float = 0.5
    max_backoff: float = 10.0

    def backoff(self, attempt: int, jitter: float = 0.5) -> float:
        """Return the wait before retry number `attempt` (1-based); jitter in [0, 1) spreads it.

        Jitter 0.5 gives the plain exponential curve; 0 and 1 give 75 % and 125 % of it, so
        clients that failed together do not retry together.
        """
        base = min(self.max_backoff, self.first_backoff * 2 ** (attempt - 1))
        return base * (0.75 + jitter / 2)


def wait_unless_cancelled(seconds: float, cancel: threading.Event) -> None:
    """Sleep for seconds, waking at once when cancel is set."""
    cancel.wait(seconds)


def server_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Return the wait the server asks for (RateLimit t=, Retry-After seconds or date), if any."""
    ratelimit = headers.get("ratelimit")
    if ratelimit:
        match = _RATELIMIT_RESET.search(ratelimit)
        if match:
            return float(match.group(1))
    retry_after = (headers.get("retry-after") or "").strip()
    if not retry_after:
        return None
    if retry_after.isdigit():
        return float(retry_after)
    try:
        when = email.utils.parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


class HubHttp:
    """Send requests to the Hub and its CDN through one pool, retrying what is worth retrying.

    The token goes only to the endpoint's own origin (scheme, host, port); every redirect hop
    recomputes the headers, so a CDN or other host never sees it.
    """

    def __init__(
        self,
        settings: HubSettings,
        *,
        pool: urllib3.PoolManager | None = None,
        pool_size: int = 8,
        retry: RetryPolicy | None = None,
        wait: Wait = wait_unless_cancelled,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        timeout: urllib3.Timeout = TIMEOUT,
    ) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self._wait = wait
        self._clock = clock
        self._now = now
        self._jitter = jitter
        self._timeout = timeout
        self._pool = pool
        self._pool_size = pool_size
        self._pool_lock = threading.Lock()
        self._endpoint_origin = origin(settings.endpoint)

    @property
    def pool(self) -> urllib3.PoolManager:
        """Return the shared pool, creating it on first use (offline runs never do)."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = urllib3.PoolManager(maxsize=self._pool_size, block=False)
            return self._pool

    def close(self) -> None:
        """Close every pooled connection."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.clear()

    def auth_headers(self, url: str) -> dict[str, str]:
        """Return the Authorization header for url when it is on the endpoint's origin, else {}."""
        if self.settings.token and origin(url) == self._endpoint_origin:
            return {"authorization": f"Bearer {self.settings.token}"}
        return {}

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        cancel: threading.Event | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request with retries and return the response, whatever its status.

        Raises HubError only for what retrying could not fix: unreachable host, timeouts,
        429/5xx bursts longer than the retry budget, a header HTTP cannot carry; and with kind
        CANCELLED as soon as `cancel` is set (no new attempt, no further wait). Redirects are
        returned, not followed.
        """
        if self.settings.offline:
            raise HubError(messages.UNREACHABLE, "Offline mode: no request to the Hub was made.")
        return self._send_with_retries(method, url, body, headers, cancel or threading.Event())

    def follow(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[urllib3.BaseHTTPResponse, str]:
        """Like request(), following redirects; return the final response and its URL.

        Headers are rebuilt for each hop, so Authorization is dropped as soon as a redirect
        leaves the endpoint's origin (the Hub sends LFS files to a CDN with signed URLs).
        """
        for _hop in range(MAX_REDIRECTS + 1):
            response = self.request(method, url, headers=headers, cancel=cancel)
            location = response.headers.get("location")
            if response.status not in REDIRECT_STATUSES or not location:
                return response, url
            url = _redirect_target(url, location)
            if response.status == 303:
                method = "GET"
        raise messages.unexpected(url, f"more than {MAX_REDIRECTS} redirects")

    def _send_with_retries(
        self,
        method: str,
        url: str,
        body: bytes | None,
        extra_headers: Mapping[str, str] | None,
        cancel: threading.Event,
    ) -> urllib3.BaseHTTPResponse:
        headers = {"user-agent": USER_AGENT, **(extra_headers or {}), **self.auth_headers(url)}
        host = _host_and_port(url)
        started = self._clock()
        attempt = 0
        while True:
            if cancel.is_set():
                raise messages.cancelled()
            attempt += 1
            failure: str | None = None
            asked_wait: float | None = None
            try:
                response = self.pool.request(
                    method,
                    url,
                    body=body,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    timeout=self._timeout,
                )
            except NewConnectionError as exc:
                raise messages.unreachable(host, _connection_reason(exc)) from None
            except Urllib3Timeout:
                failure = "the connection timed out"
            except ProtocolError:
                failure = "the connection was dropped"
            except LocationValueError:
                raise messages.unexpected(url, "the URL is malformed") from None
            except HTTPError as exc:
                raise messages.unreachable(host, type(exc).__name__) from None
            except ValueError:  # UnicodeError too
                # http.client refuses a header value with a line break (or one that is not
                # Latin-1) and names the value in its message, so that text never goes on.
                raise messages.unsendable(host) from None
            else:
                if response.status not in RETRY_STATUSES:
                    return response
                asked_wait = server_wait(response.headers, self._now())
            waited = self._clock() - started
            wait = asked_wait
            if wait is None:
                wait = self.retry.backoff(attempt, self._jitter())
            if attempt >= self.retry.max_attempts or waited + wait > self.retry.budget:
                if failure is not None:
                    raise messages.timed_out(host, failure, waited)
                raise messages.gave_up(response.status, waited, asked_wait)
            self._wait(wait, cancel)


def _redirect_target(url: str, location: str) -> str:
    """Return where a redirect from url leads; a HubError, never retried, if not http(s)."""
    try:
        target = urljoin(url, location)
        parts = urlsplit(target)
        host = parts.hostname
    except ValueError:
        raise messages.unexpected(url, "the redirect location is malformed") from None
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in target)[:200]
    if parts.scheme.lower() not in ("http", "https"):
        raise messages.unexpected(
            url, f"it redirects to {shown}, which is not an http(s) URL; not following it"
        )
    if not host:
        raise messages.unexpected(url, f"it redirects to {shown}, which names no host")
    return target


def _host_and_port(url: str) -> str:
    """Return the host[:port] of url for messages, never a user name or password in it."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        netloc = ""
    return netloc.rpartition("@")[2] or "the Hub"


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    if "NameResolution" in type(exc).__name__ or "resolve" in text or "getaddrinfo" in text:
        return "the host name could not be resolved"
    if "refused" in text.lower():
        return "connection refused"
    return "no connection could be made"
