"""The identities files have, and the one way wandown reads a file to compute them.

The Hugging Face Hub names files by sha256 (LFS files) or git's blob sha1 (small files);
InvokeAI, Stability Matrix and ComfyUI record BLAKE3. A leaf module, so the engine, the model
hub and localhub compute and recognise them the same way.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

SHA256 = "sha256"
BLOB_SHA1 = "blob_sha1"
BLAKE3 = "blake3"

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
"""A sha256 as the Hub writes it (lower-case hex); use with fullmatch."""
SHA1_HEX = re.compile(r"[0-9a-f]{40}")
"""A git object id (blob or commit sha1) as the Hub writes it; use with fullmatch."""

CHUNK_SIZE = 4 * 1024 * 1024
"""Bytes read at a time: large enough that hashlib releases the GIL while it works."""

Progress = Callable[[Path, int, int], None]
"""progress(path, bytes_done, total) while a file is read for hashing."""


class Hasher(Protocol):
    """What hash_file needs of a hash object (hashlib's and blake3's both qualify)."""

    def update(self, data: ReadableBuffer, /) -> object: ...

    def hexdigest(self) -> str: ...


Blake3Factory = Callable[[], Hasher]


class HashingCancelled(Exception):
    """Hashing stopped because the caller's cancel event was set."""


def is_sha256(text: str) -> bool:
    """Tell whether text is a sha256 the way the Hub writes one."""
    return SHA256_HEX.fullmatch(text) is not None


def is_sha1(text: str) -> bool:
    """Tell whether text is a git sha1 (a blob's or a commit's) the way the Hub writes one."""
    return SHA1_HEX.fullmatch(text) is not None


def git_blob_header(size: int) -> bytes:
    """Return the header git hashes before a blob's bytes (the Hub's ETag for small files)."""
    return b"blob %d\0" % size


def new_hash(kind: str, size: int) -> Hasher:
    """Start a sha256 (LFS files) or a git blob sha1 (small files) of a file of `size` bytes."""
    if kind == SHA256:
        return hashlib.sha256()
    if kind == BLOB_SHA1:
        return hashlib.sha1(git_blob_header(size), usedforsecurity=False)
    raise ValueError(f"unknown hash kind {kind!r}")


def load_blake3() -> Blake3Factory | None:
    """Return the blake3 constructor, or None when the optional package is not installed."""
    try:
        from blake3 import blake3
    except ImportError:
        return None
    return blake3


def hash_file(
    path: str | os.PathLike[str],
    kinds: Iterable[str],
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    blake3_factory: Blake3Factory | None = None,
) -> dict[str, str]:
    """Read path once and return {kind: hex digest} for each kind asked for.

    BLAKE3 is computed only when blake3_factory is given. An empty dict means the file changed
    size while it was read: no digest describes it. Raises HashingCancelled once cancel is set.
    """
    path = Path(path)
    wanted = set(kinds)
    unknown = wanted - {SHA256, BLOB_SHA1, BLAKE3}
    if unknown:
        raise ValueError(f"unknown hash kind {sorted(unknown)[0]!r}")
    total = path.stat().st_size
    hashers = {kind: new_hash(kind, total) for kind in wanted - {BLAKE3}}
    if BLAKE3 in wanted and blake3_factory is not None:
        hashers[BLAKE3] = blake3_factory()
    done = 0
    with open(path, "rb", buffering=0) as handle:
        if progress is not None:
            progress(path, 0, total)
        while True:
            if cancel is not None and cancel.is_set():
                raise HashingCancelled(str(path))
            chunk = handle.read(CHUNK_SIZE)
            if not chunk:
                break
            for hasher in hashers.values():
                hasher.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(path, done, total)
    if done != total:
        return {}
    return {kind: hasher.hexdigest() for kind, hasher in hashers.items()}


def file_digest(
    path: str | os.PathLike[str], kind: str, cancel: threading.Event | None = None
) -> str | None:
    """Return one digest of a whole file, for a caller comparing it with an expected one.

    None if cancel was set before the end; "" (which matches no digest) if the file changed
    size while it was read.
    """
    try:
        return hash_file(path, [kind], cancel=cancel).get(kind, "")
    except HashingCancelled:
        return None
