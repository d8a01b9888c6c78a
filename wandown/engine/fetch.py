"""The engine's HTTP plumbing: resolve a Hub URL to its bytes, and say what an answer means."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import urllib3

from wandown.digests import is_sha1
from wandown.errors import DownloadError
from wandown.hubhttp import messages
from wandown.hubhttp.retry import RETRY_STATUSES, server_wait
from wandown.hubhttp.urls import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    RedirectRefused,
    host_of,
    redirect_target,
    request_headers,
    resolve_parts,
    shown_url,
    too_many_redirects,
)
from wandown.huburl import same_origin

HeadersFor = Callable[[str], Mapping[str, str]]

CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


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


def clean_etag(value: str | None) -> str | None:
    """Return an ETag without W/ and quotes, lower-cased ('W/"abc"' -> 'abc')."""
    if not value:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"').lower() or None


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """Return (first, last, total) of a Content-Range header, or None if it is not one."""
    match = CONTENT_RANGE.match(value or "")
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


def status_problem(
    response: urllib3.BaseHTTPResponse, url: str, hub_url: str, what: str, token_sent: bool
) -> Exception:
    """Turn an unexpected status into the exception that says what to do next.

    Retryable statuses become Transient (with the wait the server asked for); 416 means the
    file changed; every other status is worded by hubhttp.messages.http_failure, the same
    sentence the metadata client gives (gated repo and its licence page, a stale token).
    """
    status = response.status
    if status in RETRY_STATUSES:
        # A date the server names is on the wall clock, not the monotonic one.
        wait = server_wait(response.headers, time.time())
        return Transient(f"the server answered {status} for {what}", wait)
    if status == 416:
        return RemoteChanged(f"{what}: the server refused the byte range (416)")
    parts = resolve_parts(hub_url)
    if parts is None:
        return DownloadError(f"{what}: the server answered HTTP {status} for {shown_url(url)}")
    endpoint, repo, revision, path = parts
    failure = messages.http_failure(
        status,
        response.headers,
        endpoint=endpoint,
        repo=repo,
        revision=revision,
        path=path,
        token_sent=token_sent and same_origin(url, hub_url),
    )
    return DownloadError(f"{what} (HTTP {status}): {failure.message}")


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

    Authorization (from `headers_for`) is sent only to the origins of `token_homes` (the Hub
    URL by default; the source of truth and the endpoints configured to get the token when
    there are several): the engine follows redirects itself and drops the header when a
    redirect leaves them, so a token never reaches a CDN or a mirror even if `headers_for` is
    careless.
    """

    def __init__(
        self,
        pool: urllib3.PoolManager,
        url: str,
        headers_for: HeadersFor,
        timeout: urllib3.Timeout,
        token_homes: tuple[str, ...] | None = None,
    ) -> None:
        self._pool = pool
        self.url = url
        self.token_homes = token_homes if token_homes is not None else (url,)
        self.speaker = "the Hub"  # who messages say answered: the Hub, or a mirror's URL
        self._headers_for = headers_for
        self._timeout = timeout
        self._lock = threading.Lock()
        self.link: Link | None = None

    def headers(self, url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return the request headers for url, with credentials only for the token's homes."""
        return request_headers(
            url,
            self.token_homes,
            {"Accept-Encoding": "identity"},
            self._headers_for(url),
            extra or {},
        )

    def elsewhere(self, url: str) -> Resolver:
        """Return a resolver for the same file at url (another endpoint), with the same rules."""
        return Resolver(self._pool, url, self._headers_for, self._timeout, self.token_homes)

    def sends_token(self) -> bool:
        """Tell whether requests to the Hub URL carry credentials (for failure messages)."""
        names = {name.lower() for name in self.headers(self.url)}
        return "authorization" in names

    def resolve(self) -> Link:
        """Ask the Hub (HEAD, redirects followed by hand) where the file's bytes are."""
        url = self.url
        size: int | None = None
        sha256: str | None = None
        commit: str | None = None
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
                raise Transient(f"cannot reach {host_of(url)}: {reason(error)}") from error
            headers = response.headers
            commit = commit or headers.get("X-Repo-Commit")
            linked_size = _size(headers.get("X-Linked-Size"))
            if linked_size is not None:
                size = linked_size
            sha256 = sha256 or clean_etag(headers.get("X-Linked-Etag"))
            if response.status in REDIRECT_STATUSES:
                url = self._follow(url, headers.get("Location"))
                if not same_origin(url, self.url) and size is not None:
                    # The Hub said size and hash on the redirect (X-Linked-*): the CDN's
                    # answer would only repeat them, so save the round trip.
                    return self._remember(Link(url, size, sha256, None, commit))
                continue
            if response.status != 200:
                raise status_problem(
                    response, url, self.url, "looking up the file", self.sends_token()
                )
            if size is None:
                size = _size(headers.get("Content-Length"))
            etag = clean_etag(headers.get("ETag"))
            blob_sha1 = None
            if sha256 is None and same_origin(url, self.url) and etag and is_sha1(etag):
                blob_sha1 = etag  # the Hub's ETag for a small file is its git blob id
            return self._remember(Link(url, size, sha256, blob_sha1, commit))
        raise DownloadError(
            f"{self.speaker} redirected {hub_file(self.url)} {too_many_redirects().clause}"
        )

    def _follow(self, url: str, location: str | None) -> str:
        """Return where a redirect from url leads; refuse, at once, anything but http(s)."""
        try:
            return redirect_target(url, location)
        except RedirectRefused as refused:
            raise DownloadError(
                f"{self.speaker} redirected {hub_file(url)} {refused.clause}"
            ) from None

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
    parts = resolve_parts(url)
    if parts is None:
        return shown_url(url)
    return shown_url(f"{parts[1]}/{parts[3]}")


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


FALLBACK_READ = 64 * 1024  # without read1 (urllib3 1.x), reads this small still show a trickle


def read_some(response: urllib3.BaseHTTPResponse, most: int) -> bytes:
    """Return what has arrived, up to most bytes, waiting only while nothing has.

    A plain read(most) waits for all of it: a server trickling bytes would show no progress
    at all, so neither the speed watchdog nor the endpoints' pace rule would ever see it.
    An unencoded body (every file the Hub serves) is read past urllib3's decoder: its buffer
    would copy each read twice more on the way through.
    """
    read1 = getattr(response, "read1", None)
    if read1 is not None:
        data: bytes = read1(most, decode_content=bool(response.headers.get("Content-Encoding")))
        return data
    return response.read(min(most, FALLBACK_READ))
