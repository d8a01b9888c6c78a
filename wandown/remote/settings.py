"""Where the Hub is, who we are to it, and whether we may talk to it at all."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from wandown.errors import ConfigError

DEFAULT_ENDPOINT = "https://huggingface.co"

# huggingface_hub's reading of boolean environment variables (constants._is_true).
_TRUE_VALUES = {"1", "ON", "YES", "TRUE"}

# A Hub repo id: "name" or "owner/name", letters, digits, '-', '_' and '.'.
_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class HubSettings:
    """The endpoint, the token (never shown in repr) and the offline switch."""

    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = field(default=None, repr=False)
    offline: bool = False
    token_source: str | None = None


@dataclass(frozen=True)
class FileRef:
    """One file of a Hub repo as the catalog names it: repo, branch/tag/commit, path."""

    repo: str
    revision: str
    path: str


def hub_settings(env: Mapping[str, str] = os.environ) -> HubSettings:
    """Read HF_ENDPOINT, HF_TOKEN (or the token file) and HF_HUB_OFFLINE as huggingface_hub does.

    Raises ConfigError when HF_ENDPOINT is not an http(s) URL.
    """
    endpoint = (env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip().rstrip("/")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"HF_ENDPOINT={endpoint!r} is not an http:// or https:// URL.")
    offline = (env.get("HF_HUB_OFFLINE") or "").strip().upper() in _TRUE_VALUES
    token, source = _read_token(env)
    return HubSettings(endpoint=endpoint, token=token, offline=offline, token_source=source)


def token_file(env: Mapping[str, str] = os.environ) -> Path:
    """Return the file `hf auth login` writes: $HF_TOKEN_PATH, else $HF_HOME/token."""
    explicit = env.get("HF_TOKEN_PATH")
    if explicit:
        return Path(explicit).expanduser()
    home = env.get("HF_HOME")
    if home:
        return Path(home).expanduser() / "token"
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "token"


def _read_token(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        value = (env.get(name) or "").strip()
        if value:
            return value, name
    path = token_file(env)
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None, None
    return (value, str(path)) if value else (None, None)


def origin(url: str) -> tuple[str, str, int]:
    """Return (scheme, host, port) with the default port filled in, for same-origin checks."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = 443 if scheme == "https" else 80
    return scheme, (parts.hostname or "").lower(), port


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
    if endpoint:
        hosts.add(origin(endpoint))
        prefix = urlsplit(endpoint).path.rstrip("/")
    parts = urlsplit(url.strip())
    if origin(url.strip()) not in hosts or not parts.hostname:
        return None
    path = parts.path
    if prefix and origin(url.strip()) == origin(endpoint or "") and path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    segments = path.lstrip("/").split("/")
    for repo_len in (2, 1):
        if len(segments) > repo_len + 2 and segments[repo_len] == "resolve":
            repo = "/".join(segments[:repo_len])
            revision = unquote(segments[repo_len + 1])
            file_path = unquote("/".join(segments[repo_len + 2 :]))
            if segments[0] in ("datasets", "spaces", "api") or not is_valid_repo_id(repo):
                return None
            if not revision or not file_path or ".." in file_path.split("/"):
                return None
            return FileRef(repo=repo, revision=revision, path=file_path)
    return None
