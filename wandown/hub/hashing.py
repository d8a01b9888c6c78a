"""Read a hub file once and compute every identity wanted from it.

Three identities matter: sha256 (what the Hugging Face Hub reports for LFS files), the git blob
sha1 (what the Hub reports for small files kept outside LFS) and BLAKE3 (what InvokeAI, Stability
Matrix and ComfyUI record). The `blake3` package is optional at run time: without it BLAKE3 work
is skipped and everything else still works.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from wandown.digests import BLOB_SHA1, SHA256, new_hash

Progress = Callable[[Path, int, int], None]
"""progress(path, bytes_done, total) while a file is read for hashing."""

BLAKE3 = "blake3"

CHUNK_SIZE = 4 * 1024 * 1024

# Files this small are hashed for every identity at once: the Hub stores files under 10 MB
# outside LFS (identified by git blob sha1), and reading them is cheap, so a later run that asks
# for another identity never has to read them again.
SMALL_FILE_LIMIT = 10 * 1024 * 1024


class HashingCancelled(Exception):
    """Hashing stopped because the caller's cancel event was set."""


def load_blake3() -> Callable[[], object] | None:
    """Return the blake3 constructor, or None when the package is not installed."""
    try:
        from blake3 import blake3
    except ImportError:
        return None
    return blake3


def hash_file(
    path: Path,
    kinds: Iterable[str],
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    blake3_factory: Callable[[], object] | None = None,
) -> dict[str, str]:
    """Read path once and return {kind: hex digest} for each kind asked for.

    BLAKE3 is computed only when blake3_factory is given. An empty dict means the file changed
    size while it was read (the caller re-checks size and mtime afterwards as well).
    """
    kinds = set(kinds)
    total = path.stat().st_size
    hashers: dict[str, object] = {}
    for kind in kinds & {SHA256, BLOB_SHA1}:
        hashers[kind] = new_hash(kind, total)
    if BLAKE3 in kinds and blake3_factory is not None:
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
                hasher.update(chunk)  # type: ignore[attr-defined]
            done += len(chunk)
            if progress is not None:
                progress(path, done, total)
    if done != total:
        # The file changed while it was read; no digest describes it.
        return {}
    return {kind: hasher.hexdigest() for kind, hasher in hashers.items()}  # type: ignore[attr-defined]
