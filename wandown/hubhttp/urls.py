"""Who may receive what: origins, credentials, redirects, and how wandown introduces itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit

from wandown import __version__
from wandown.huburl import same_origin
from wandown.safetext import printable

USER_AGENT = f"wandown/{__version__}"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# The Hub needs two hops at most (a renamed repo, then the CDN); requests allows 30.
MAX_REDIRECTS = 10
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})

if TYPE_CHECKING:
    import urllib3


def timeout(read: float = READ_TIMEOUT) -> urllib3.Timeout:
    """Return the Timeout every Hub request uses: connect in 10 s at most, read within `read`."""
    import urllib3  # here: the rules above are read by starts that make no request

    return urllib3.Timeout(connect=min(read, CONNECT_TIMEOUT), read=read)


def request_headers(
    url: str, home: str | tuple[str, ...], *layers: Mapping[str, str]
) -> dict[str, str]:
    """Return the headers for a request to url: User-Agent, then each layer in turn.

    Authorization and Cookie survive only when url is on the origin of home (the endpoint), or
    of one of the homes given (the source of truth and the endpoints configured to get the
    token): a redirect to a CDN, a mirror or any other host never carries the token, whatever
    a layer holds.
    """
    headers = {"User-Agent": USER_AGENT}
    for layer in layers:
        for name, value in layer.items():
            for old in [n for n in headers if n.lower() == name.lower()]:
                del headers[old]
            headers[name] = value
    if not may_carry_credentials(url, home):
        for name in [n for n in headers if n.lower() in CREDENTIAL_HEADERS]:
            del headers[name]
    return headers


def may_carry_credentials(url: str, home: str | tuple[str, ...]) -> bool:
    """Tell whether a request to url may carry the token: the one rule, for every request."""
    homes = (home,) if isinstance(home, str) else home
    return any(same_origin(url, one) for one in homes)


class RedirectRefused(ValueError):
    """A redirect wandown will not follow.

    str() says why as a sentence about the answer ('it redirects to file:/x, which is not an
    http(s) URL; not following it'); `clause` says it as the end of 'the Hub redirected X ...'.
    """

    def __init__(self, clause: str, sentence: str | None = None) -> None:
        super().__init__(sentence or f"it redirects {clause}")
        self.clause = clause


def redirect_target(url: str, location: str | None) -> str:
    """Return where a redirect from url leads; RedirectRefused unless it is an http(s) URL.

    A file:, ftp: or host-less location is refused at once, never retried: following it could
    read a local file or talk to a service that is not the Hub.
    """
    if not location:
        raise RedirectRefused("nowhere (no Location header)")
    try:
        given = urlsplit(location)
        # urljoin reads 'https:///x' against an https URL as a path on the same host.
        target = location if given.scheme else urljoin(url, location)
        parts = urlsplit(target)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        raise RedirectRefused(
            "to a malformed location; not following it", "the redirect location is malformed"
        ) from None
    shown = shown_url(target)
    if parts.scheme.lower() not in ("http", "https"):
        raise RedirectRefused(f"to {shown}, which is not an http(s) URL; not following it")
    if not host:
        raise RedirectRefused(f"to {shown}, which names no host; not following it")
    return target


def too_many_redirects() -> RedirectRefused:
    """Say that a chain of redirects did not end within MAX_REDIRECTS hops."""
    return RedirectRefused(
        f"more than {MAX_REDIRECTS} times; not following it", f"more than {MAX_REDIRECTS} redirects"
    )


def shown_url(text: str, limit: int = 200) -> str:
    """Return a URL from a server fit for a one-line message: control characters escaped, cut."""
    safe = printable(text)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def host_of(url: str) -> str:
    """Return the host[:port] of url for messages, never a user name or password in it."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        netloc = ""
    return netloc.rpartition("@")[2] or "the Hub"


def resolve_parts(url: str) -> tuple[str, str, str, str] | None:
    """Split a /resolve/ URL into (endpoint, repo, revision, path) for messages, or None.

    The repo is taken as the two segments before /resolve/ ('owner/name'), one when only one
    is there; the catalog's reading of Hub URLs is remote.settings.parse_hub_url.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    before, found, rest = parts.path.partition("/resolve/")
    if not found or "/" not in rest:
        return None
    segments = before.strip("/").split("/")
    if not segments or not segments[-1]:
        return None
    repo_segments = segments[-2:] if len(segments) >= 2 else segments
    prefix = "/".join(segments[: len(segments) - len(repo_segments)])
    endpoint = f"{parts.scheme}://{parts.netloc}" + (f"/{prefix}" if prefix else "")
    revision, _, path = rest.partition("/")
    return endpoint, "/".join(repo_segments), unquote(revision), unquote(path)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Read a header by its lower-case name from any mapping (a test's dict may be mixed case)."""
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value
