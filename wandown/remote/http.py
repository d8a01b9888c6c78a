"""The metadata client's connection to the Hub: one pool, the shared retry and redirect rules."""

from __future__ import annotations

import threading
from collections.abc import Mapping

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

from wandown.hubhttp import messages
from wandown.hubhttp.messages import HubError
from wandown.hubhttp.retry import RETRY_STATUSES, RetryPolicy, server_wait
from wandown.hubhttp.urls import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    RedirectRefused,
    host_of,
    may_carry_credentials,
    redirect_target,
    request_headers,
    too_many_redirects,
)
from wandown.hubhttp.urls import (
    timeout as default_timeout,
)
from wandown.remote.settings import HubSettings


class HubHttp:
    """Send requests to the Hub through one pool, retrying what is worth retrying.

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
        timeout: urllib3.Timeout | None = None,
    ) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self._timeout = timeout or default_timeout()
        self._pool = pool
        self._pool_size = pool_size
        self._pool_lock = threading.Lock()

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
        """Return the Authorization header for url when it may get the token, else {}.

        That is the endpoint's origin, and those of the endpoints configured with "token": true.
        """
        if self.settings.token and may_carry_credentials(url, self.settings.token_homes):
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
        """Send one request, with retries, following redirects; return the final response.

        Raises HubError only for what retrying could not fix: unreachable host, timeouts,
        429/5xx bursts longer than the retry budget, a header HTTP cannot carry, a redirect
        that is not to an http(s) URL or does not end; and with kind CANCELLED as soon as
        `cancel` is set (no new attempt, no further wait).
        """
        if self.settings.offline:
            raise HubError(messages.UNREACHABLE, "Offline mode: no request to the Hub was made.")
        cancel = cancel or threading.Event()
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._send_with_retries(method, url, body, headers, cancel)
            if response.status not in REDIRECT_STATUSES:
                return response
            try:
                url = redirect_target(url, response.headers.get("location"))
            except RedirectRefused as refused:
                raise messages.refused_redirect(url, str(refused)) from None
            if response.status == 303:
                method, body = "GET", None
        raise messages.refused_redirect(url, str(too_many_redirects()))

    def _send_with_retries(
        self,
        method: str,
        url: str,
        body: bytes | None,
        extra_headers: Mapping[str, str] | None,
        cancel: threading.Event,
    ) -> urllib3.BaseHTTPResponse:
        headers = request_headers(
            url, self.settings.token_homes, extra_headers or {}, self.auth_headers(url)
        )
        host = host_of(url)
        policy = self.retry
        started = policy.clock()
        attempt = 0
        while True:
            if cancel.is_set():
                raise messages.cancelled()
            attempt += 1
            failure: str | None = None
            asked: float | None = None
            status = 0
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
                status = response.status
                asked = server_wait(response.headers, policy.now())
            waited = policy.clock() - started
            wait = policy.next_wait(attempt, waited, asked)
            if wait is None:
                if failure is not None:
                    raise messages.timed_out(host, failure, waited)
                raise messages.gave_up(status, waited, asked)
            policy.pause(wait, cancel)


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    if "NameResolution" in type(exc).__name__ or "resolve" in text or "getaddrinfo" in text:
        return "the host name could not be resolved"
    if "refused" in text.lower():
        return "connection refused"
    return "no connection could be made"
