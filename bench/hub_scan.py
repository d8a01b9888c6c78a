"""Time the hub scan and matching on a large synthetic hub.

Builds, in a temporary folder removed afterwards, a hub of --files sparse files of varied sizes
in nested folders plus Hugging Face cache repos, then prints: the scan with no sidecar (cold),
the scan again with a sidecar (warm), matching that has to hash candidates, and matching again
answered from the sidecar. Usage: python bench/hub_scan.py [--files 100000]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wandown.hub import Wanted, scan_hub


def sparse(path: str, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def sparse_sha256(size: int) -> str:
    digest = hashlib.sha256()
    zeros = bytes(1 << 20)
    remaining = size
    while remaining:
        step = min(remaining, len(zeros))
        digest.update(zeros[:step])
        remaining -= step
    return digest.hexdigest()


def build(hub: Path, n_files: int, rng: random.Random) -> list[Wanted]:
    """Make the hub; return wanted files: some in HF caches, some plain, some absent."""
    hf_repos, blobs_per_repo = 50, 20
    plain = n_files - hf_repos * blobs_per_repo
    wanted: list[Wanted] = []
    for number in range(plain):
        folder = (
            hub / "models" / f"family{number % 20}" / f"kind{number % 7}" / f"set{number % 700}"
        )
        if number < 700 * 20:
            folder.mkdir(parents=True, exist_ok=True)
        size = rng.randrange(1, 8 << 30)
        sparse(str(folder / f"file{number}.safetensors"), size)
    # Plain files worth matching: small sparse files (all zeros, so the digest is easy to know),
    # each with a same-size decoy holding one different byte.
    for number in range(40):
        size = (1 << 20) + number * 4096 + 1
        target = hub / "plain-matches" / f"m{number}.bin"
        target.parent.mkdir(parents=True, exist_ok=True)
        sparse(str(target), size)
        decoy = hub / "plain-matches" / f"decoy{number}.bin"
        sparse(str(decoy), size)
        with open(decoy, "r+b") as handle:
            handle.write(b"x")
        wanted.append(Wanted(size=size, sha256=sparse_sha256(size)))
    for repo in range(hf_repos):
        repo_dir = hub / "hf" / f"models--owner{repo}--repo{repo}"
        (repo_dir / "blobs").mkdir(parents=True)
        snapshot = repo_dir / "snapshots" / ("c" * 40)
        snapshot.mkdir(parents=True)
        (repo_dir / "refs").mkdir()
        (repo_dir / "refs" / "main").write_text("c" * 40)
        for blob in range(blobs_per_repo):
            if blob % 4 == 0:
                # A wanted blob is read once to prove its name, so it is small and its content
                # (zeros) really has the sha256 it is named by.
                size = (2 << 20) + (repo * blobs_per_repo + blob) * 4096 + 3
                sha = sparse_sha256(size)
                wanted.append(Wanted(size=size, sha256=sha))
            else:
                sha = hashlib.sha256(f"{repo}/{blob}".encode()).hexdigest()
                size = rng.randrange(1 << 30, 20 << 30)
            sparse(str(repo_dir / "blobs" / sha), size)
            os.symlink(f"../../blobs/{sha}", snapshot / f"part{blob}.safetensors")
    for _ in range(100):  # absent files: no candidate at all
        wanted.append(Wanted(size=rng.randrange(1, 1 << 40), sha256="0" * 64))
    return wanted


def timed(label: str, action):
    start = time.perf_counter()
    result = action()
    print(f"{label:<38} {time.perf_counter() - start:7.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wandown-hub-bench-"))
    try:
        os.environ["WANDOWN_CACHE_DIR"] = str(work / "cache")
        hub = work / "hub"
        wanted = timed(
            f"build hub ({args.files} files)",
            lambda: build(hub, args.files, random.Random(args.seed)),
        )
        index = timed("scan, no sidecar (cold)", lambda: scan_hub(hub))
        print(
            f"{'':<38} {index.file_count} files, {index.dir_count} folders, "
            f"{index.hf_repo_count} HF repos, {index.hf_blob_count} blobs"
        )
        matches = timed(f"match {len(wanted)} wanted (hashing)", lambda: index.match(wanted))
        print(f"{'':<38} {len(matches)} matched, {len(index.sidecar)} files in the sidecar")
        del index  # as in a new run: the first index is not alive during the second scan
        gc.collect()
        index = timed("scan, with sidecar (warm)", lambda: scan_hub(hub))
        again = timed(f"match {len(wanted)} wanted (sidecar)", lambda: index.match(wanted))
        assert again == matches, "the sidecar run must find the same matches"
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
