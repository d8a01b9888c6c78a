"""What a Hub URL names: its origin, and the repo, revision and file of a model file URL.

Pure string work on the standard library alone, so the catalog (which never touches the
network) and the HTTP layer share one origin rule and one URL parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_ENDPOINT = "https://huggingface.co"
NO_ORIGIN = ("", "", 0)

# A Hub repo id: "name" or "owner/name", letters, digits, '-', '_' and '.'.
_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class FileRef:
    """One file of a Hub repo as the catalog names it: repo, branch/tag/commit, path."""

    repo: str
    revision: str
    path: str


def origin(url: str) -> tuple[str, str, int]:
    """Return (scheme, host, port) with the default port filled in, for same-origin checks.

    Credentials go only to one origin, so 'https://h' and 'https://H:443/x' must be equal and
    a user name in the URL must not matter. A malformed URL (a broken IPv6 literal, a port that
    is not a number) gives NO_ORIGIN, ("", "", 0), which no usable URL has.
    """
    try:
        parts = urlsplit(url)
        hostname, port = parts.hostname, parts.port
    except ValueError:
        return NO_ORIGIN
    scheme = parts.scheme.lower()
    if port is None:
        port = 443 if scheme == "https" else 80
    return scheme, (hostname or "").lower(), port


def same_origin(url: str, home: str) -> bool:
    """Tell whether url is on home's origin (never true for a malformed URL)."""
    return origin(url) != NO_ORIGIN and origin(url) == origin(home)


def is_valid_repo_id(repo: str) -> bool:
    """Tell whether repo looks like a Hub model id ("name" or "owner/name")."""
    parts = repo.split("/")
    return 1 <= len(parts) <= 2 and all(_REPO_PART.match(part) for part in parts)


def parse_hub_url(url: str, endpoint: str | None = None) -> FileRef | None:
    """Turn a model file URL into a FileRef, or None when it is not one.

    Accepts `https://huggingface.co/<owner>/<repo>/resolve/<revision>/<path>` and the same on
    `endpoint` (a mirror set with HF_ENDPOINT). Dataset and Space URLs are not model files.
    """
    hosts = {origin(DEFAULT_ENDPOINT)}
    prefix = ""
    if endpoint and origin(endpoint) != NO_ORIGIN:
        hosts.add(origin(endpoint))
        prefix = urlsplit(endpoint).path.rstrip("/")
    url = url.strip()
    url_origin = origin(url)
    if url_origin not in hosts or not url_origin[1]:
        return None
    path = urlsplit(url).path
    if prefix and url_origin == origin(endpoint or "") and path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    segments = path.lstrip("/").split("/")
    for repo_len in (2, 1):
        if len(segments) > repo_len + 2 and segments[repo_len] == "resolve":
            repo = "/".join(segments[:repo_len])
            revision = unquote(segments[repo_len + 1])
            file_path = unquote("/".join(segments[repo_len + 2 :]))
            if segments[0] in ("datasets", "spaces", "api") or not is_valid_repo_id(repo):
                return None
            if not revision or not _is_relative_file_path(file_path):
                return None
            return FileRef(repo=repo, revision=revision, path=file_path)
    return None


def _is_relative_file_path(path: str) -> bool:
    """Tell whether path names a file inside a repo: no /x, no .., no empty parts, no \\."""
    # The path becomes a place on the user's disk, so an encoded "/" (%2F) or ".." must not
    # lead out of the models folder; a backslash is a separator on Windows.
    if "\\" in path or "\0" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))
