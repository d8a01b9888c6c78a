"""Every user-facing sentence about a Hub failure, built in one place."""

from __future__ import annotations

from collections.abc import Mapping

from wandown.errors import RemoteError
from wandown.hubhttp.urls import header, shown_url

TOKEN_HINT = "set a token with HF_TOKEN=... or `hf auth login`"

# Kinds of failure, so callers can group or count them without parsing sentences.
GATED = "gated"
BAD_TOKEN = "bad-token"
NEEDS_TOKEN = "needs-token"
FORBIDDEN = "forbidden"
REPO_NOT_FOUND = "repo-not-found"
REVISION_NOT_FOUND = "revision-not-found"
FILE_NOT_FOUND = "file-not-found"
RATE_LIMITED = "rate-limited"
SERVER = "server-error"
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"
UNEXPECTED = "unexpected-answer"
UNSENDABLE = "unsendable-request"
CANCELLED = "cancelled"


class HubError(RemoteError):
    """A Hub request failed for a reason the user can act on; `kind` names which."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def http_failure(
    status: int,
    headers: Mapping[str, str],
    *,
    endpoint: str,
    repo: str,
    revision: str | None = None,
    path: str | None = None,
    token_sent: bool,
) -> HubError:
    """Explain a final (non-retried) HTTP error status from the Hub's API or resolve URLs.

    The Hub names the cause in `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound,
    GatedRepo); without a token it answers 401 for private, gated and missing repos alike, and
    401 "Invalid credentials in Authorization header" for a bad token.
    """
    code = header(headers, "x-error-code")
    detail = header(headers, "x-error-message") or ""
    repo_page = f"{endpoint}/{repo}"
    if code == "GatedRepo":
        if token_sent:
            return HubError(
                GATED,
                f"{repo} is gated and your token's account has not been granted access: "
                f"accept the licence at {repo_page} while logged in with that account.",
            )
        return HubError(
            GATED,
            f"{repo} is gated: accept its licence at {repo_page}, then {TOKEN_HINT}.",
        )
    if status == 401 and token_sent and (code is None or "credentials" in detail.lower()):
        return HubError(
            BAD_TOKEN,
            f"The Hub rejected your token (HTTP 401): it is invalid or expired; {TOKEN_HINT}.",
        )
    if code == "RepoNotFound" or (status == 401 and code is None and not token_sent):
        hint = "" if token_sent else f" (if it is private or gated, {TOKEN_HINT})"
        return HubError(REPO_NOT_FOUND, f"Repository {repo} not found on {endpoint}{hint}.")
    if code == "EntryNotFound" or (status == 404 and code is None and path is not None):
        missing = file_not_found(repo, revision, path)
        if detail:  # e.g. localhub: the file changed on disk since the commit was listed
            return HubError(FILE_NOT_FOUND, f"{missing.message} The Hub says: {shown_url(detail)}")
        return missing
    if code == "RevisionNotFound" or status == 404:
        return HubError(REVISION_NOT_FOUND, f"Revision {revision!r} not found in {repo}.")
    if status == 403:
        return HubError(
            FORBIDDEN, f"The Hub refused access to {repo} (HTTP 403). {shown_url(detail)}".strip()
        )
    if status == 401:
        return HubError(NEEDS_TOKEN, f"{repo} needs a token the Hub accepts; {TOKEN_HINT}.")
    if status >= 500:
        return HubError(SERVER, f"The Hub failed with HTTP {status} for {repo}.")
    suffix = f": {shown_url(detail)}" if detail else ""
    return HubError(UNEXPECTED, f"The Hub answered HTTP {status} for {repo}{suffix}.")


def file_not_found(repo: str, revision: str | None, path: str | None) -> HubError:
    """Say that a file is missing from a repo at a revision."""
    at = f" at revision {revision!r}" if revision else ""
    what = f"File {path!r}" if path else "A file"
    return HubError(FILE_NOT_FOUND, f"{what} not found in {repo}{at}.")


def not_a_file(repo: str, revision: str, path: str) -> HubError:
    """Say that the catalog names a folder where a file was expected."""
    return HubError(FILE_NOT_FOUND, f"{path!r} in {repo} at revision {revision!r} is a folder.")


def gave_up(status: int, waited: float, retry_wait: float | None) -> HubError:
    """Explain a 429 or 5xx that outlasted the retry budget."""
    if status == 429:
        later = f"; try again in {retry_wait:.0f} s" if retry_wait else "; try again later"
        return HubError(
            RATE_LIMITED,
            f"The Hub is rate limiting requests (HTTP 429) after {waited:.0f} s of retries{later}.",
        )
    if status == 408:
        return HubError(TIMEOUT, f"The Hub timed out (HTTP 408) after {waited:.0f} s of retries.")
    return HubError(SERVER, f"The Hub failed with HTTP {status} after {waited:.0f} s of retries.")


def timed_out(endpoint_host: str, reason: str, waited: float) -> HubError:
    """Explain a timeout or dropped connection that outlasted the retry budget."""
    return HubError(TIMEOUT, f"{endpoint_host}: {reason} after {waited:.0f} s of retries.")


def unreachable(host: str, reason: str) -> HubError:
    """Explain a refused connection or a failed name lookup."""
    return HubError(UNREACHABLE, f"Cannot reach {host}: {reason}.")


def unsendable(host: str) -> HubError:
    """Explain a request HTTP cannot carry, without repeating any header value."""
    return HubError(
        UNSENDABLE,
        f"Cannot send a request to {host}: the token or another request header holds a line "
        "break or a character HTTP headers cannot carry.",
    )


def cancelled() -> HubError:
    """Say that a request was abandoned because the user stopped the work."""
    return HubError(CANCELLED, "Stopped before the Hub answered.")


def bad_repo_id(repo: str) -> HubError:
    """Say that a repo id cannot be a Hub model id."""
    return HubError(REPO_NOT_FOUND, f"{repo!r} is not a Hub repo id (expected owner/name).")


def unexpected(url: str, what: str) -> HubError:
    """Explain an answer whose body wandown cannot use."""
    return HubError(UNEXPECTED, f"Unexpected answer from {url}: {what}.")


def refused_redirect(url: str, why: str) -> HubError:
    """Say that a redirect was not followed (see urls.redirect_target), naming the request."""
    return unexpected(shown_url(url), why)
