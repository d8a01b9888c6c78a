"""The clients bench/download.py times that are Python: wandown's engine and hf_hub_download.

    python bench/child.py wandown URL DEST SIZE SHA256 [FILES]
    python bench/child.py hf ENDPOINT CACHE DEST REPO NAME

Kept apart from the bench itself so a timed child imports only what its client needs: the
bench's own modules (argparse, subprocess, nginx's helpers) would add some 50 ms to each
start, time curl and aria2c are not charged for.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def wandown_child(url: str, dest: str, size: str, sha256: str, files: str = "1") -> int:
    """Download `files` copies at once at config.json's default settings.

    No bandwidth limit: the default limit is the user's choice, not the engine's speed. Copy 1
    goes to dest, copy N to <dest folder>/copyN/<name> (checked by the bench, not here).
    """
    from wandown.config import DEFAULTS
    from wandown.engine import DownloadJob, Engine

    first = Path(dest)
    targets = [first] + [first.parent / f"copy{n}" / first.name for n in range(2, int(files) + 1)]
    jobs = max(len(targets), DEFAULTS["jobs"])
    with Engine(jobs=jobs, connections=DEFAULTS["connections"]) as engine:
        for n, target in enumerate(targets):
            engine.submit(DownloadJob(str(n), url, target, int(size), sha256))
        results = engine.wait()
    failed = [r.message for r in results.values() if r.state != "complete"]
    if failed:
        print("; ".join(failed), file=sys.stderr)
        return 1
    return 0


def hf_child(endpoint: str, cache: str, dest: str, repo: str, name: str) -> int:
    """Download one file with huggingface_hub from endpoint."""
    os.environ["HF_ENDPOINT"] = endpoint
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(repo, name, cache_dir=cache, local_dir=dest)
    return 0 if os.path.exists(path) else 1


CHILDREN = {"wandown": wandown_child, "hf": hf_child}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in CHILDREN:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(CHILDREN)}}} ARGS...")
    sys.exit(CHILDREN[sys.argv[1]](*sys.argv[2:]))
