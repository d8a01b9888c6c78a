"""Pure pieces of the Hub protocol: byte ranges, LFS pointers, JSON shapes, link signing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from urllib.parse import unquote

from wandown.localhub.hashes import git_blob_sha1
from wandown.localhub.repos import RepoFile

UNSATISFIABLE = "unsatisfiable"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})

JSONObject = dict[str, object]
"""A JSON object as the Hub API answers it."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """Return (first, last) byte of a single ``Range: bytes=`` request, UNSATISFIABLE, or None.

    None means "send the whole file": no header, a syntax error or several ranges, all of which
    RFC 9110 section 14.2 lets a server ignore.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    first_text, last_text = first_text.strip(), last_text.strip()
    if not (first_text.isdigit() or first_text == "") or not (
        last_text.isdigit() or last_text == ""
    ):
        return None
    if first_text == "":
        if last_text == "":
            return None
        suffix = int(last_text)  # "bytes=-N": the last N bytes
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # "bytes=5-3" is invalid, so ignored
    if first >= size:
        return UNSATISFIABLE
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


def lfs_pointer(sha256: str, size: int) -> bytes:
    """Return the git-lfs pointer file (spec v1) that git stores in place of an LFS file."""
    text = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"
    return text.encode()


@dataclass(frozen=True)
class FileMeta:
    """What the Hub says about one file."""

    path: str
    size: int
    lfs: bool
    oid: str  # git object id as trees show it: the pointer's for LFS files
    etag: str  # sha256 for LFS files, blob sha1 otherwise
    sha256: str | None  # known for LFS files
    pointer_size: int | None


def lfs_meta(file: RepoFile, sha256: str) -> FileMeta:
    """Describe an LFS file whose sha256 is known."""
    pointer = lfs_pointer(sha256, file.size)
    return FileMeta(
        file.path, file.size, True, git_blob_sha1(pointer), sha256, sha256, len(pointer)
    )


def plain_meta(file: RepoFile, blob_sha1: str) -> FileMeta:
    """Describe a regular (non-LFS) file whose git blob sha1 is known."""
    return FileMeta(file.path, file.size, False, blob_sha1, blob_sha1, None, None)


def iso_time(ns: int) -> str:
    """Format nanoseconds since the epoch the way the Hub does (``2024-01-31T12:00:00.000Z``)."""
    seconds, remainder = divmod(max(ns, 0), 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{remainder // 1_000_000:03d}Z"


def last_commit(commit: str, modified_ns: int) -> JSONObject:
    """Return the ``lastCommit`` object of expanded tree entries."""
    return {"id": commit, "title": "Served by wandown localhub", "date": iso_time(modified_ns)}


SAFE_SCAN: JSONObject = {
    "status": "safe",
    "avScan": {"virusFound": False, "virusNames": None},
    "pickleImportScan": None,
}


def file_entry(meta: FileMeta, *, expand: bool, commit: str, modified_ns: int) -> JSONObject:
    """Return a tree / paths-info entry for a file."""
    entry: JSONObject = {"type": "file", "oid": meta.oid, "size": meta.size, "path": meta.path}
    if meta.lfs:
        entry["lfs"] = {"oid": meta.sha256, "size": meta.size, "pointerSize": meta.pointer_size}
    if expand:
        entry["lastCommit"] = last_commit(commit, modified_ns)
        entry["securityFileStatus"] = dict(SAFE_SCAN)
    return entry


def folder_entry(path: str, *, expand: bool, commit: str, modified_ns: int) -> JSONObject:
    """Return a tree / paths-info entry for a folder."""
    tree_id = hashlib.sha1(f"tree\0{commit}\0{path}".encode(), usedforsecurity=False).hexdigest()
    entry: JSONObject = {"type": "directory", "oid": tree_id, "size": 0, "path": path}
    if expand:
        entry["lastCommit"] = last_commit(commit, modified_ns)
    return entry


def sibling(meta: FileMeta, *, blobs: bool) -> JSONObject:
    """Return a ``siblings`` item of model_info."""
    entry: JSONObject = {"rfilename": meta.path}
    if blobs:
        entry["size"] = meta.size
        entry["blobId"] = meta.oid
        if meta.lfs:
            entry["lfs"] = {
                "sha256": meta.sha256,
                "size": meta.size,
                "pointerSize": meta.pointer_size,
            }
    return entry


def is_true(value: str | None) -> bool:
    """Read a query or form flag (huggingface_hub sends bools as ``true``/``True``/``1``)."""
    return value is not None and value.strip().lower() in TRUE_WORDS


def encode_cursor(offset: int) -> str:
    """Return the opaque pagination cursor for an offset."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """Return the offset of a cursor, or None if it is not one of ours."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        offset = json.loads(raw)["offset"]
    except (ValueError, KeyError, TypeError):
        return None
    return offset if isinstance(offset, int) and offset >= 0 else None


def sign_link(secret: bytes, *fields: str) -> str:
    """Sign the fields of a CDN link so the CDN can tell it issued it."""
    return hmac.new(secret, "\n".join(fields).encode(), hashlib.sha256).hexdigest()[:32]


def split_revision(segments: list[str]) -> tuple[str, list[str]]:
    """Take a revision off the front of raw path segments, returning it and the rest.

    huggingface_hub percent-encodes revisions (``refs%2Fpr%2F1``), but a hand-typed
    ``refs/pr/1`` is accepted too.
    """
    first = unquote(segments[0]) if segments else ""
    if first == "refs" and len(segments) >= 3:
        return "/".join(unquote(s) for s in segments[:3]), segments[3:]
    return first, segments[1:]
