"""Where the Hub is, who we are to it, and whether we may talk to it at all."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wandown.endpoints import Endpoint, check_url, truth_of
from wandown.errors import ConfigError
from wandown.huburl import DEFAULT_ENDPOINT

# huggingface_hub's reading of boolean environment variables (constants._is_true).
_TRUE_VALUES = {"1", "ON", "YES", "TRUE"}

_TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


@dataclass(frozen=True)
class HubSettings:
    """The endpoint, the token (never shown in repr) and the offline switch.

    `endpoint` is the source of truth (metadata, every file's sha256); `endpoints`, when set,
    is the ordered list files are fetched from, the source of truth among them.
    """

    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = field(default=None, repr=False)
    offline: bool = False
    token_source: str | None = None
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def fetch_order(self) -> tuple[Endpoint, ...]:
        """Return the endpoints in the order files are fetched from (just the truth by default)."""
        return self.endpoints or (Endpoint(self.endpoint, token=True, truth=True),)

    @property
    def token_homes(self) -> tuple[str, ...]:
        """Return the endpoints whose origins may receive the token: the truth, those marked."""
        return tuple(endpoint.url for endpoint in self.fetch_order if endpoint.token)


def with_endpoints(settings: HubSettings, endpoints: Sequence[Endpoint]) -> HubSettings:
    """Return settings fetching from endpoints (config or --endpoint), the truth among them."""
    if not endpoints:
        return settings
    truth = truth_of(endpoints)
    return dataclasses.replace(settings, endpoint=truth.url, endpoints=tuple(endpoints))


def hub_settings(env: Mapping[str, str] = os.environ) -> HubSettings:
    """Read HF_ENDPOINT, HF_TOKEN (or the token file) and HF_HUB_OFFLINE as huggingface_hub does.

    Raises ConfigError when HF_ENDPOINT is not a plain http(s) URL or the token cannot be sent
    in an HTTP header; neither message ever repeats a password or the token.
    """
    endpoint = _read_endpoint(env)
    offline = (env.get("HF_HUB_OFFLINE") or "").strip().upper() in _TRUE_VALUES
    token, source = _read_token(env)
    if token is not None and not (token.isascii() and token.isprintable()):
        where = source if source in _TOKEN_VARIABLES else f"The token file {source}"
        raise ConfigError(
            f"{where} holds a token with a line break, control or non-ASCII character, which "
            "cannot be sent to the Hub; set it again (HF_TOKEN=... or `hf auth login`)."
        )
    return HubSettings(endpoint=endpoint, token=token, offline=offline, token_source=source)


def _read_endpoint(env: Mapping[str, str]) -> str:
    return check_url(env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT, "HF_ENDPOINT")


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
    for name in _TOKEN_VARIABLES:
        value = (env.get(name) or "").strip()
        if value:
            return value, name
    path = token_file(env)
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None, None
    return (value, str(path)) if value else (None, None)
