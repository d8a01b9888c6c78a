"""What the engine is asked to do: one job per file, the settings all files share."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import urllib3

from wandown.hubhttp.retry import RetryPolicy

from .fetch import Link, RemoteChanged
from .reads import ReadSizes

T = TypeVar("T")

Nap = Callable[[threading.Event, float], object]
# Says why a file must not start on its disk now (under the reserve), or None when it may.
Room = Callable[[Path], "str | None"]


def nap(flag: threading.Event, seconds: float) -> None:
    """Sleep for seconds, waking at once when flag is set (the engine's default pause)."""
    flag.wait(seconds)


@dataclass(frozen=True)
class DownloadJob:
    """One file to fetch from the Hub and put at dest, verified.

    `url` is the Hub's /resolve/ URL; `size`, `sha256` (LFS files) and `blob_sha1` (small files:
    git's sha1 of b"blob <size>\\0" + content) are what the metadata promised. Missing values are
    taken from the Hub's answer; a value that differs from the Hub's fails the file as changed.
    """

    key: str
    url: str
    dest: Path
    size: int | None
    sha256: str | None
    blob_sha1: str | None = None
    commit: str | None = None
    hub_folders: tuple[Path, ...] = ()  # checked again right before the file is placed
    hub_folder_ids: frozenset[tuple[int, int]] = frozenset()


def _env_seconds(name: str, default: float) -> float:
    """Read a number of seconds from the environment (tests shorten waits this way)."""
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    """How hard and how patiently the engine works; one instance shared by all files.

    `retry` is the one Hub retry policy (hubhttp.retry) set up for downloads: `retries`
    failures in a row per connection, no time budget, its clock and sleep injectable.
    """

    connections: int
    chunk_size: int
    min_chunk: int
    small_file: int
    reads: ReadSizes
    timeout: urllib3.Timeout
    retries: int
    retry: RetryPolicy
    min_speed: float
    stall_window: float
    state_every: float
    busy_timeout: float = field(default_factory=lambda: _env_seconds("WANDOWN_BUSY_TIMEOUT", 600))
    # How long a file waits for its disk to come back above min_free_gb, and how often it looks.
    disk_wait: float = field(default_factory=lambda: _env_seconds("WANDOWN_DISK_WAIT", 600))
    disk_poll: float = field(default_factory=lambda: _env_seconds("WANDOWN_DISK_POLL", 5))

    def is_small(self, size: int | None) -> bool:
        """Tell whether a file is small: one plain GET, in the lane that never waits on big ones."""
        return size is not None and size <= self.small_file


@dataclass(frozen=True)
class Expected:
    """The file as the job and the Hub agree it must be."""

    size: int | None
    kind: str | None  # "sha256", "blob_sha1" or None (size check only)
    digest: str | None
    commit: str | None


def _agree(job: DownloadJob, what: str, promised: T | None, served: T | None) -> T | None:
    if promised is not None and served is not None and promised != served:
        raise RemoteChanged(
            f"{job.dest.name}: the Hub now serves another version ({what} {served}, "
            f"expected {promised}); refresh the file list and try again"
        )
    return promised if promised is not None else served


def expected_file(job: DownloadJob, link: Link) -> Expected:
    """Combine the job's promise with the Hub's answer; refuse when they disagree."""
    size = _agree(job, "size", job.size, link.size)
    commit = job.commit or link.commit
    sha256 = _agree(job, "sha256", job.sha256 and job.sha256.lower(), link.sha256)
    if sha256 is not None:
        return Expected(size, "sha256", sha256, commit)
    blob = _agree(job, "git sha1", job.blob_sha1 and job.blob_sha1.lower(), link.blob_sha1)
    return Expected(size, "blob_sha1" if blob is not None else None, blob, commit)
