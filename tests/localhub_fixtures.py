"""Helpers for the localhub tests: write repos and caches to disk, make raw HTTP requests.

Digests here are computed independently of wandown.localhub so the tests can catch its mistakes.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import random
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


def payload(size: int, seed: int = 0) -> bytes:
    """Return size reproducible pseudo-random bytes."""
    return random.Random(seed).randbytes(size)


def git_blob_sha1(data: bytes) -> str:
    """Return git's object id for a blob (what `git hash-object` prints)."""
    return hashlib.sha1(b"blob " + str(len(data)).encode() + b"\0" + data).hexdigest()


def lfs_pointer_oid(data: bytes) -> tuple[str, int]:
    """Return (git object id, size) of the git-lfs pointer file standing for data."""
    pointer = (
        "version https://git-lfs.github.com/spec/v1\n"
        f"oid sha256:{hashlib.sha256(data).hexdigest()}\n"
        f"size {len(data)}\n"
    ).encode()
    return git_blob_sha1(pointer), len(pointer)


def write_repo(root: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """Write files into the plain folder ROOT/<owner>/<name>/ and return that folder."""
    folder = root / repo_id
    for path, data in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def write_hf_cache(
    cache: Path,
    repo_id: str,
    refs: dict[str, str],
    snapshots: dict[str, dict[str, tuple[bytes, bool]]],
) -> Path:
    """Lay out a huggingface_hub cache folder: blobs named by digest, snapshots of symlinks.

    snapshots maps commit -> {path: (data, is_lfs)}; refs maps ref name (``main``,
    ``pr/1``) -> commit.
    """
    folder = cache / ("models--" + repo_id.replace("/", "--"))
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    for commit, files in snapshots.items():
        for path, (data, lfs) in files.items():
            name = hashlib.sha256(data).hexdigest() if lfs else git_blob_sha1(data)
            blob = folder / "blobs" / name
            blob.write_bytes(data)
            link = folder / "snapshots" / commit / path
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
    for ref, commit in refs.items():
        ref_file = folder / "refs" / ref
        ref_file.parent.mkdir(parents=True, exist_ok=True)
        ref_file.write_text(commit)
    return folder


@dataclass
class Answer:
    """A raw HTTP answer."""

    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> object:
        """Parse the body as JSON."""
        import json

        return json.loads(self.body)


def fetch(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> Answer:
    """Make one request on a fresh connection, following no redirect."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        connection.close()


def read_until_failure(
    url: str, headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, bytes, BaseException | None]:
    """GET url and read the body in small pieces until it ends or the connection breaks."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    connection.request("GET", target, headers=headers or {})
    response = connection.getresponse()
    received = bytearray()
    failure: BaseException | None = None
    try:
        while True:
            piece = response.read1(4096)
            if not piece:
                break
            received += piece
    except (OSError, http.client.HTTPException) as err:
        failure = err
    finally:
        connection.close()
    return response, bytes(received), failure
