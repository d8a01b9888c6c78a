"""Time fetching Hub metadata for a whole Wan2GP catalog, wandown beside huggingface_hub.

Serves every file of a catalog (generated, a few bytes each) from wandown.localhub on loopback,
lets the server hash them once, then times on the same server: wandown's client with a cold
metadata cache, the same with a warm cache, and huggingface_hub's get_paths_info, one call per
repo and revision, as a script using the official client would. Usage:

    python bench/metadata.py [--catalog ../shared/wan2gp/8681e9f/defaults]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wandown.catalog import load_catalog
from wandown.localhub import LocalHub
from wandown.remote import FileRef, HubSettings, MetadataClient

DEFAULT_CATALOG = Path(__file__).resolve().parent.parent.parent / "shared/wan2gp/8681e9f/defaults"


def serve_catalog(defaults: Path, work: Path) -> tuple[Path, list[FileRef]]:
    root = work / "Wan2GP"
    root.mkdir()
    (root / "defaults").symlink_to(defaults.resolve())
    served = work / "served"
    refs = []
    for record in load_catalog(root).records:
        if record.repo is None:
            continue
        target = served / record.repo / record.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f"{record.repo}/{record.path}\n".encode())
        refs.append(FileRef(record.repo, record.revision, record.path))
    return served, refs


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--catalog",
        type=Path,
        default=DEFAULT_CATALOG,
        help="a Wan2GP defaults/ folder (default: the 8681e9f one in ../shared)",
    )
    args = parser.parse_args()
    if not args.catalog.is_dir():
        print(f"no catalog at {args.catalog}; pass --catalog PATH/defaults", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="wandown-bench-") as folder:
        work = Path(folder)
        served, refs = serve_catalog(args.catalog, work)
        repos = {ref.repo for ref in refs}
        print(f"catalog: {len(refs)} files in {len(repos)} repos, served on loopback")
        with LocalHub(served, hash_cache=work / "hashes.json") as hub:
            settings = HubSettings(endpoint=hub.url)
            MetadataClient(settings, cache_path=work / "warmup.json").fetch(refs)  # server hashes
            hub.clear_requests()
            client = MetadataClient(settings, cache_path=work / "metadata.json")
            cold, result = timed(lambda: client.fetch(refs))
            assert len(result.files) == len(refs), result.errors
            requests = len(hub.requests)
            hub.clear_requests()
            warm, _ = timed(
                lambda: MetadataClient(settings, cache_path=work / "metadata.json").fetch(refs)
            )
            warm_requests = len(hub.requests)
            hf_time = hf_paths_info(hub.url, refs, work)
        print(f"{'client':<40}{'seconds':>9}{'requests':>10}")
        print(f"{'wandown, cold cache':<40}{cold:>9.2f}{requests:>10}")
        print(f"{'wandown, warm cache':<40}{warm:>9.2f}{warm_requests:>10}")
        if hf_time is not None:
            print(f"{'huggingface_hub get_paths_info per repo':<40}{hf_time:>9.2f}{len(repos):>10}")
    return 0


def hf_paths_info(endpoint: str, refs: list[FileRef], work: Path) -> float | None:
    """Time the official client doing the same job, or None when it is not installed."""
    os.environ.update(
        HF_HOME=str(work / "hf"), HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1"
    )
    try:
        from huggingface_hub import HfApi
    except ImportError:
        print("huggingface_hub is not installed; its row is left out")
        return None
    api = HfApi(endpoint=endpoint)
    by_repo: dict[tuple[str, str], list[str]] = defaultdict(list)
    for ref in refs:
        by_repo[(ref.repo, ref.revision)].append(ref.path)
    started = time.perf_counter()
    for (repo, revision), paths in by_repo.items():
        api.get_paths_info(repo, paths, revision=revision)
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
