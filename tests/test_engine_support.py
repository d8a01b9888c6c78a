"""Helpers for the engine tests: repos on a LocalHub, jobs, and event checks (no tests here)."""

from __future__ import annotations

import hashlib
import queue
import random
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wandown.engine import FINAL_STATES, STATES, DownloadJob, Engine, Event
from wandown.localhub import Fault, LocalHub

REPO = "owner/model"
KIB = 1024
MIB = 1024 * 1024


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def put_file(hub: LocalHub, name: str, data: bytes, repo: str = REPO) -> None:
    path = hub.root / repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def job_for(
    hub: LocalHub,
    name: str,
    dest_dir: Path,
    data: bytes | None = None,
    *,
    key: str | None = None,
    repo: str = REPO,
    known: bool = True,
) -> DownloadJob:
    """A job as the plan would make it: size and hash known from the metadata (unless not known)."""
    lfs = name.endswith((".safetensors", ".bin"))
    size = sha256 = blob = None
    if known and data is not None:
        size = len(data)
        if lfs:
            sha256 = hashlib.sha256(data).hexdigest()
        else:
            blob = blob_sha1(data)
    return DownloadJob(
        key=key or name,
        url=f"{hub.url}/{repo}/resolve/main/{name}",
        dest=dest_dir / name,
        size=size,
        sha256=sha256,
        blob_sha1=blob,
    )


def small_engine(**kwargs) -> Engine:
    """An engine cut to test size: 64 KiB chunks, so a file of a few MiB has many ranges."""
    options = dict(
        jobs=2,
        connections=4,
        chunk_size=64 * KIB,
        min_chunk=16 * KIB,
        small_file=128 * KIB,
        read_size=16 * KIB,
        timeout=10.0,  # no spurious retry on a loaded machine; stall tests pass their own
        backoff=0.01,
        state_every=0.05,
    )
    options.update(kwargs)
    return Engine(**options)


def hosted_job(
    hub: LocalHub,
    name: str,
    dest_dir: Path,
    data: bytes,
    fault: Fault | None = None,
    *,
    known: bool = True,
) -> DownloadJob:
    """Put data on the hub as name (with fault armed on it) and return the job that fetches it."""
    put_file(hub, name, data)
    if fault is not None:
        hub.set_fault(REPO, name, fault)
    return job_for(hub, name, dest_dir, data, known=known)


def run_job(job: DownloadJob, within: float = 30, **engine: Any) -> tuple[Event, list[Event]]:
    """Download one job on a fresh small engine; return its final event and every event sent."""
    with small_engine(**engine) as eng:
        eng.submit(job)
        result = eng.wait(timeout=within)[job.key]
        events = drain(eng.events)
    return result, events


def wait_until(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


class NapClock:
    """A monotonic clock for the engine that only moves when it naps; counts the naps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0.0
        self.naps = 0

    def clock(self) -> float:
        with self._lock:
            return self.now

    def nap(self, flag: threading.Event, seconds: float) -> None:
        with self._lock:
            self.now += seconds
            self.naps += 1
        flag.wait(0)


def drain(events: queue.Queue[Event]) -> list[Event]:
    out = []
    while True:
        try:
            out.append(events.get_nowait())
        except queue.Empty:
            return out


def check_events(events: list[Event]) -> dict[str, list[Event]]:
    """Assert the event stream is well-formed; return it grouped by key."""
    by_key: dict[str, list[Event]] = {}
    for event in events:
        assert event.state in STATES
        assert event.done >= 0
        assert event.speed >= 0
        if event.total is not None:
            assert event.done <= event.total
        by_key.setdefault(event.key, []).append(event)
    for key, stream in by_key.items():
        assert stream[0].state == "pending", key
        finals = [e for e in stream if e.state in FINAL_STATES]
        assert len(finals) == 1, (key, finals)
        assert stream[-1] is finals[0], key
    return by_key


RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def requested_bytes(hub: LocalHub, name: str, size: int, since: int = 0) -> int:
    """Sum the bytes asked for by GETs of name (a whole-file GET counts the whole file)."""
    total = 0
    for record in hub.requests[since:]:
        if record.method != "GET" or name not in record.path:
            continue
        header = record.headers.get("range")
        if header is None:
            total += size
            continue
        match = RANGE.fullmatch(header)
        assert match, header
        last = int(match.group(2)) if match.group(2) else size - 1
        total += last - int(match.group(1)) + 1
    return total


def cdn_gets(hub: LocalHub, since: int = 0) -> list:
    return [r for r in hub.requests[since:] if r.server == "cdn" and r.method == "GET"]
