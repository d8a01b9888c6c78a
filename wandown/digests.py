"""The identities the Hugging Face Hub gives files: sha256 for LFS files, git's blob sha1 else.

A leaf module, so the engine, the model hub and localhub compute them the same way.
"""

from __future__ import annotations

import hashlib

SHA256 = "sha256"
BLOB_SHA1 = "blob_sha1"


def git_blob_header(size: int) -> bytes:
    """Return the header git hashes before a blob's bytes (the Hub's ETag for small files)."""
    return b"blob %d\0" % size


def new_hash(kind: str, size: int) -> hashlib._Hash:
    """Start a sha256 (LFS files) or a git blob sha1 (small files) of a file of `size` bytes."""
    if kind == SHA256:
        return hashlib.sha256()
    if kind == BLOB_SHA1:
        return hashlib.sha1(git_blob_header(size), usedforsecurity=False)
    raise ValueError(f"unknown hash kind {kind!r}")
