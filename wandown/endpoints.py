"""The ordered endpoints a run fetches from, which one is the source of truth, who gets the token.

`HF_ENDPOINT` is the one-endpoint form; `endpoints` in config.json and `--endpoint URL` give a
list (a LAN peer, a company proxy, then the Hub). Pure: validation and messages only.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from wandown.errors import ConfigError

# Where the authority part of a URL ends (RFC 3986 section 3.2).
_AUTHORITY_END = re.compile(r"[/?#]")
_OBJECT_KEYS = frozenset({"url", "token", "truth"})
# Letters (any script: internationalised names), digits, dots, hyphens, underscores.
_HOST_NAME = re.compile(r"[^\W](?:[\w.-]*[^\W_])?")


@dataclass(frozen=True)
class Endpoint:
    """One Hub-compatible server: its base URL, whether it receives the token, whether it is
    the source of truth (the one metadata and every file's sha256 come from)."""

    url: str
    token: bool = False
    truth: bool = False


def check_url(value: str, what: str) -> str:
    """Return value as a plain http(s) base URL without a trailing slash; ConfigError if not.

    The URL is a metadata cache key and appears in messages, so credentials in it would end up
    on disk and on screen: that check runs before anything echoes the value.
    """
    url = value.strip().rstrip("/")
    after_scheme = url.partition("://")[2] if "://" in url else url
    if "@" in _AUTHORITY_END.split(after_scheme, maxsplit=1)[0]:
        raise ConfigError(f"{what} must not contain a user name or password.")
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(f"{what}={url!r} is not a valid http:// or https:// URL.")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ConfigError(f"{what} must be a plain URL, without a ?query or #fragment.")
    if not _valid_host(parts.netloc, parts.hostname or ""):
        raise ConfigError(
            f"{what}={url!r}: {parts.hostname!r} is not a host name (letters, digits, dots and "
            "hyphens; no spaces)."
        )
    # Scheme and host are case-insensitive (RFC 3986 section 6.2.2.1): one spelling, so the
    # same endpoint written twice is seen as a duplicate and caches under one key.
    return urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()))


def _valid_host(netloc: str, host: str) -> bool:
    """Tell whether a URL's host is an IP address in brackets or a plausible name."""
    if netloc.startswith("["):
        try:
            return isinstance(ipaddress.ip_address(host.partition("%")[0]), ipaddress.IPv6Address)
        except ValueError:
            return False
    return _HOST_NAME.fullmatch(host) is not None


def from_flags(urls: Sequence[str]) -> tuple[Endpoint, ...]:
    """Read `--endpoint URL` flags: in order, the last one the source of truth."""
    return ordered([Endpoint(check_url(url, "--endpoint")) for url in urls], "--endpoint")


def from_config(raw: Any, where: str) -> tuple[Endpoint, ...]:
    """Read config.json's `endpoints`: a list of URLs or of {"url", "token", "truth"} objects."""
    what = f"{where}: 'endpoints'"
    if not isinstance(raw, list):
        raise ConfigError(f"{what} must be a list of URLs, not {json.dumps(raw)}")
    found = [_one(item, f"{what}[{index}]") for index, item in enumerate(raw)]
    return ordered(found, what) if found else ()


def _one(item: Any, what: str) -> Endpoint:
    if isinstance(item, str):
        return Endpoint(check_url(item, what))
    if not isinstance(item, dict):
        raise ConfigError(
            f'{what} must be a URL or an object like {{"url": "https://...", "token": true}}, '
            f"not {json.dumps(item)}"
        )
    unknown = sorted(set(item) - _OBJECT_KEYS)
    if unknown:
        raise ConfigError(f"{what} has unknown key {unknown[0]!r}; it takes url, token, truth")
    if not isinstance(item.get("url"), str):
        raise ConfigError(f"{what} needs a 'url' string")
    for key in ("token", "truth"):
        if not isinstance(item.get(key, False), bool):
            raise ConfigError(f"{what}: '{key}' must be true or false")
    return Endpoint(
        check_url(item["url"], f"{what}.url"), bool(item.get("token")), bool(item.get("truth"))
    )


def ordered(found: Sequence[Endpoint], what: str) -> tuple[Endpoint, ...]:
    """Mark the source of truth (the last one unless one is marked) and refuse duplicates."""
    urls = [endpoint.url for endpoint in found]
    for url in urls:
        if urls.count(url) > 1:
            raise ConfigError(f"{what} names {url} twice; list each endpoint once")
    marked = [index for index, endpoint in enumerate(found) if endpoint.truth]
    if len(marked) > 1:
        raise ConfigError(
            f"{what} marks {len(marked)} endpoints as the source of truth; mark one at most"
        )
    truth = marked[0] if marked else len(found) - 1
    return tuple(
        Endpoint(e.url, token=e.token or i == truth, truth=i == truth) for i, e in enumerate(found)
    )


def truth_of(endpoints: Sequence[Endpoint]) -> Endpoint:
    """Return the source of truth of an ordered list."""
    return next(endpoint for endpoint in endpoints if endpoint.truth)
