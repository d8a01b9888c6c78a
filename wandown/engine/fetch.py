"""HTTP for the engine: resolve a Hub URL to its CDN link, check responses, decide on retries."""

from __future__ import annotations

import contextlib
import email.utils
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import urllib3
import urllib3.connection

from wandown import __version__
from wandown.digests import is_sha1
from wandown.errors import DownloadError

USER_AGENT = f"wandown/{__version__}"
MAX_REDIRECTS = 5
MAX_SERVER_WAIT = 300.0  # never sleep longer than this on a server's Retry-After

HeadersFor = Callable[[str], Mapping[str, str]]


class Transient(Exception):
    """A failure worth retrying after a pause: reset, stall, short body, 5xx, 429."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class LinkExpired(Exception):
    """The CDN refused a link that worked before (signed URLs expire): resolve the Hub URL again."""


class RangeIgnored(Exception):
    """The server answered a Range request with the whole file (200 instead of 206)."""


class RemoteChanged(DownloadError):
    """The remote file is not the one the job or the partial describes."""


class Cancelled(Exception):
    """The file (or the whole engine) was asked to stop."""


def origin(url: str) -> tuple[str, str]:
    """Return (scheme, host:port) of a URL, the unit that may receive credentials."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def clean_etag(value: str | None) -> str | None:
    """Return an ETag without W/ and quotes, lower-cased ('W/"abc"' -> 'abc')."""
    if not value:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"').lower() or None


def retry_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Return how long the server asks us to wait, from Retry-After or RateLimit's t= / reset=.

    Retry-After is seconds or an HTTP date (RFC 9110 section 10.2.3); RateLimit is the IETF
    draft header the Hub sends on 429 ('"api";r=0;t=55' or the older 'limit=.., reset=55').
    """
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        try:
            return max(0.0, min(float(value), MAX_SERVER_WAIT))
        except ValueError:
            pass
        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            when = email.utils.parsedate_to_datetime(value).timestamp()
            current = time.time() if now is None else now
            return max(0.0, min(when - current, MAX_SERVER_WAIT))
    value = headers.get("RateLimit")
    if value:
        match = re.search(r"(?:^|[;,\s])(?:t|reset)\s*=\s*(\d+(?:\.\d+)?)", value)
        if match:
            return min(float(match.group(1)), MAX_SERVER_WAIT)
    return None


CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """Return (first, last, total) of a Content-Range header, or None if it is not one."""
    match = CONTENT_RANGE.match(value or "")
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


def interrupt(response: urllib3.BaseHTTPResponse | None) -> None:
    """Unblock a thread stuck reading response, from another thread (cancel must be prompt)."""
    if response is None:
        return
    shutdown = getattr(response, "shutdown", None)  # urllib3 >= 2.3
    if shutdown is not None:
        with contextlib.suppress(Exception):
            shutdown()
        return
    connection = getattr(response, "connection", None) or getattr(response, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _cut(thing: object) -> None:
    """Interrupt a response or a connection from another thread."""
    if hasattr(thing, "release_conn"):  # a response (urllib3 1.26 has no BaseHTTPResponse)
        interrupt(thing)  # type: ignore[arg-type]
        return
    sock = getattr(thing, "sock", None)
    if sock is not None:
        # socket.socket's own shutdown even for TLS: SSLSocket.shutdown would drop its SSL
        # object under the feet of the thread that is reading from it.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class CancelFlag(threading.Event):
    """One file's cancel flag; setting it also cuts every request the file has in flight.

    Responses are added by whoever reads them; connections add themselves while a request
    made under `watching(flag)` waits for its answer (see WatchedPoolManager), which is how
    a cancel reaches a Hub that accepted the connection and never answers.
    """

    def __init__(self) -> None:
        super().__init__()
        self._live_lock = threading.Lock()
        self._live: set[object] = set()

    def set(self) -> None:
        super().set()
        with self._live_lock:
            live = list(self._live)
        for thing in live:
            _cut(thing)

    def add(self, thing: object) -> None:
        """Cut thing when the flag is set (at once if it already is)."""
        with self._live_lock:
            self._live.add(thing)
        if self.is_set():
            _cut(thing)

    def discard(self, thing: object) -> None:
        with self._live_lock:
            self._live.discard(thing)


_watch_state = threading.local()


@contextlib.contextmanager
def watching(flag: threading.Event) -> Iterator[None]:
    """Let flag cut the connections this thread's requests use until the block ends."""
    outer = getattr(_watch_state, "scope", None)
    noted: set[object] = set()
    _watch_state.scope = (flag, noted) if isinstance(flag, CancelFlag) else None
    try:
        yield
    finally:
        _watch_state.scope = outer
        if isinstance(flag, CancelFlag):
            for connection in noted:
                flag.discard(connection)


def _note(connection: object) -> None:
    scope = getattr(_watch_state, "scope", None)
    if scope is not None:
        flag, noted = scope
        noted.add(connection)
        flag.add(connection)


class _Watched:
    """Record the connection with the current `watching` flag when it connects or sends."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _note(self)

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _note(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def watched_pool_manager(**pool_kw: Any) -> urllib3.PoolManager:
    """Return a PoolManager whose connections a CancelFlag can cut before any answer."""
    manager = urllib3.PoolManager(**pool_kw)
    manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    return manager


def status_problem(response: urllib3.BaseHTTPResponse, url: str, what: str) -> Exception:
    """Turn an unexpected status into the exception that says what to do next."""
    status = response.status
    if status == 429 or status >= 500 or status == 408:
        wait = retry_wait(response.headers)
        return Transient(f"the server answered {status} for {what}", wait)
    if status == 401:
        return DownloadError(
            f"{what}: the Hub wants a token (401); log in or set a Hugging Face token"
        )
    if status == 403:
        return DownloadError(f"{what}: access denied (403); the repository may be gated")
    said = response.headers.get("X-Error-Message")
    if status == 404:
        # localhub (and the Hub) say why in X-Error-Message, e.g. a file changed since listed.
        return DownloadError(f"{what}: not found on the Hub (404): {shown_url(said or url)}")
    if status == 416:
        return RemoteChanged(f"{what}: the server refused the byte range (416)")
    detail = f" ({shown_url(said)})" if said else ""
    return DownloadError(f"{what}: unexpected answer {status} from {url}{detail}")


@dataclass(frozen=True)
class Link:
    """Where the bytes of a Hub file are, and what the Hub says about them."""

    data_url: str
    size: int | None
    sha256: str | None
    blob_sha1: str | None
    commit: str | None


class Resolver:
    """Turn one Hub /resolve/ URL into a link to its bytes, shared by a file's connections.

    Authorization (from `headers_for`) is sent only to the origin of the Hub URL: the engine
    follows redirects itself and drops the header when a redirect leaves that origin, so a token
    never reaches the CDN even if `headers_for` is careless.
    """

    def __init__(
        self,
        pool: urllib3.PoolManager,
        url: str,
        headers_for: HeadersFor,
        timeout: urllib3.Timeout,
    ) -> None:
        self._pool = pool
        self.url = url
        self._headers_for = headers_for
        self._timeout = timeout
        self._lock = threading.Lock()
        self.link: Link | None = None

    def headers(self, url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return the request headers for url, with credentials only for the Hub's origin."""
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        headers.update(self._headers_for(url))
        if origin(url) != origin(self.url):
            for name in [n for n in headers if n.lower() in ("authorization", "cookie")]:
                del headers[name]
        if extra:
            headers.update(extra)
        return headers

    def resolve(self) -> Link:
        """Ask the Hub (HEAD, redirects followed by hand) where the file's bytes are."""
        url = self.url
        size = sha256 = blob_sha1 = commit = None
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self._pool.request(
                    "HEAD",
                    url,
                    headers=self.headers(url),
                    redirect=False,
                    retries=False,
                    timeout=self._timeout,
                )
            except urllib3.exceptions.HTTPError as error:
                raise Transient(f"cannot reach {origin(url)[1]}: {reason(error)}") from error
            headers = response.headers
            commit = commit or headers.get("X-Repo-Commit")
            linked_size = _size(headers.get("X-Linked-Size"))
            if linked_size is not None:
                size = linked_size
            sha256 = sha256 or clean_etag(headers.get("X-Linked-Etag"))
            if response.status in (301, 302, 303, 307, 308):
                location = headers.get("Location")
                if not location:
                    raise DownloadError(f"the Hub redirected {self.url} nowhere")
                url = self._follow(url, location)
                if origin(url) != origin(self.url) and size is not None:
                    # The Hub said size and hash on the redirect (X-Linked-*): the CDN's
                    # answer would only repeat them, so save the round trip.
                    return self._remember(Link(url, size, sha256, None, commit))
                continue
            if response.status != 200:
                raise status_problem(response, url, "looking up the file")
            if size is None:
                size = _size(headers.get("Content-Length"))
            etag = clean_etag(headers.get("ETag"))
            same_origin = origin(url) == origin(self.url)
            if sha256 is None and same_origin and etag and is_sha1(etag):
                blob_sha1 = etag  # the Hub's ETag for a small file is its git blob id
            return self._remember(Link(url, size, sha256, blob_sha1, commit))
        raise DownloadError(f"too many redirects for {self.url}")

    def _follow(self, url: str, location: str) -> str:
        """Return where a redirect from url leads; refuse, at once, anything but http(s)."""
        try:
            target = urljoin(url, location)
            parts = urlsplit(target)
            host = parts.hostname
        except ValueError:
            target, parts, host = location, None, None
        why = None
        if parts is None or parts.scheme.lower() not in ("http", "https"):
            why = "which is not an http(s) URL"
        elif not host:
            why = "which names no host"
        if why is not None:
            raise DownloadError(
                f"the Hub redirected {hub_file(url)} to {shown_url(target)}, {why}; "
                "not following it"
            )
        return target

    def _remember(self, link: Link) -> Link:
        with self._lock:
            self.link = link
        return link

    def refresh(self, stale_url: str) -> str:
        """Resolve again unless another connection already did; return the fresh link."""
        with self._lock:
            current = self.link.data_url if self.link else None
        if current is not None and current != stale_url:
            return current
        return self.resolve().data_url


def hub_file(url: str) -> str:
    """Name a Hub /resolve/ URL as repo/path for messages ('owner/repo/resolve/rev/a/b' -> ...)."""
    repo, found, rest = urlsplit(url).path.partition("/resolve/")
    if not found or "/" not in rest:
        return shown_url(url)
    return shown_url(unquote(f"{repo.strip('/')}/{rest.split('/', 1)[1]}"))


def shown_url(text: str, limit: int = 200) -> str:
    """Return a URL from a server fit for a one-line message: control characters escaped, cut."""
    safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def _size(value: str | None) -> int | None:
    """Return a size header as an int, or None when absent or not a number."""
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def reason(error: BaseException) -> str:
    """Return a short human reason for a urllib3 or socket error."""
    inner = getattr(error, "reason", None) or error
    text = str(inner)
    if isinstance(error, urllib3.exceptions.ReadTimeoutError):
        return "the connection stalled (read timeout)"
    if isinstance(error, urllib3.exceptions.ProtocolError):
        return f"the connection broke ({text})"
    return text
