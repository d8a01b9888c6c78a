"""Misbehaviour on demand, per file, so downloaders can be tested against a flaky Hub and CDN."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

SERVERS = ("hub", "cdn")


@dataclass(frozen=True)
class Fault:
    """What to do wrong when serving one file.

    A fault fires on each request it applies to: ``status`` on any HEAD/GET of the file,
    ``expire_after`` on CDN requests whose link is older than that many seconds, the body faults
    (drop, stall, short body, corrupt, ignore range) on requests that send the file's bytes (the
    hub for small files, the CDN for LFS files). With ``times`` it fires on the next K such
    requests and then disarms itself; without, on every one. ``server`` limits it to "hub" or
    "cdn".
    """

    drop_after: int | None = None  # reset the connection (TCP RST) after this many body bytes
    stall_after: int | None = None  # pause once this many body bytes are sent...
    stall_seconds: float = 0.0  # ...for this long
    status: int | None = None  # answer this status (e.g. 500, 503, 429) instead of the file
    times: int | None = None
    retry_after: float | None = None  # seconds for Retry-After (and RateLimit on 429)
    ignore_range: bool = False  # answer 200 with the whole file even to a Range request
    short_body: int | None = None  # send only this many bytes, then close cleanly (FIN)
    corrupt_at: int | None = None  # flip every bit of the byte at this file offset
    expire_after: float | None = None  # the CDN answers 403 for links older than this
    # Answer 206 with this Content-Range and no body; {first}, {last}, {size} and {before}
    # (first - 1) are the asked range's, e.g. "bytes {first}-{before}/{size}" ends before it starts.
    content_range: str | None = None
    redirect_to: str | None = None  # the hub answers 302 to this Location instead of the file
    trickle: int | None = None  # send the body at about this many bytes a second
    server: str | None = None

    def __post_init__(self) -> None:
        for name in ("drop_after", "stall_after", "short_body", "corrupt_at", "times", "trickle"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"Fault.{name} must be a non-negative int, not {value!r}")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"Fault.status must be an HTTP status, not {self.status!r}")
        if self.server is not None and self.server not in SERVERS:
            raise ValueError(f"Fault.server must be one of {SERVERS}, not {self.server!r}")
        if self.stall_seconds < 0 or (self.expire_after is not None and self.expire_after < 0):
            raise ValueError("Fault durations must not be negative")

    @property
    def has_body_fault(self) -> bool:
        """Tell whether this fault changes how the file's bytes are sent."""
        return self.ignore_range or any(
            v is not None
            for v in (
                self.drop_after,
                self.stall_after,
                self.short_body,
                self.corrupt_at,
                self.content_range,
                self.trickle,
            )
        )


def without_body_fault(fault: Fault) -> Fault:
    """Return fault minus what it does to a response body (for a request that sends none)."""
    return dataclasses.replace(
        fault,
        drop_after=None,
        stall_after=None,
        ignore_range=False,
        short_body=None,
        corrupt_at=None,
        content_range=None,
        trickle=None,
    )


@dataclasses.dataclass
class _Armed:
    fault: Fault
    remaining: int | None  # requests it still applies to; None: every one


class FaultBoard:
    """The armed faults, keyed by (repo id, path); safe to use from many handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[tuple[str, str], _Armed] = {}

    def set(self, repo_id: str, path: str, fault: Fault) -> None:
        """Arm fault for one file, replacing any fault it had."""
        with self._lock:
            self._armed[(repo_id, path)] = _Armed(fault, fault.times)

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._armed.clear()

    def take(
        self,
        repo_id: str,
        path: str,
        *,
        server: str,
        sends_body: bool,
        link_age: float | None = None,
    ) -> Fault | None:
        """Return the part of the file's fault that applies to this request, counting it."""
        with self._lock:
            slot = self._armed.get((repo_id, path))
            if slot is None:
                return None
            fault, remaining = slot.fault, slot.remaining
            if fault.server not in (None, server):
                return None
            expired = (
                fault.expire_after is not None
                and server == "cdn"
                and link_age is not None
                and link_age > fault.expire_after
            )
            body = sends_body and fault.has_body_fault
            if fault.status is None and fault.redirect_to is None and not expired and not body:
                return None
            if remaining is not None:
                if remaining <= 0:
                    return None
                slot.remaining = remaining - 1
            active = fault
            if not expired:
                active = dataclasses.replace(active, expire_after=None)
            if not body:
                active = without_body_fault(active)
            return active
