"""Every file of the real 8681e9f catalog gets its size and identity from a Hub on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from tests.wan2gp_fixtures import SHARED, real_install
from wandown.catalog import load_catalog

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/wan2gp is not here")
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def run_list(root, workdir, endpoint, *extra):
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(PROJECT, "wandown.py"),
            "--list",
            "--json",
            "--all-variants",
            "--wan2gp-dir",
            str(root / "ckpts"),
            "--hub-dir",
            "",
            *extra,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_ENDPOINT": endpoint},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return {record["dest"]: record for record in json.loads(result.stdout)}, result.stderr


@pytest.mark.slow
def test_whole_catalog_metadata_from_a_local_hub(tmp_path, localhub):
    root = real_install(tmp_path, "8681e9f")
    catalog = load_catalog(root)
    contents = {}
    for record in catalog.records:
        data = f"{record.repo}/{record.path}\n".encode() * 3
        target = localhub.root / record.repo / record.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        contents[record.dest] = data
    for record in catalog.records:  # a file mirrored in two repos is fetched from the first
        contents[record.dest] = (localhub.root / record.repo / record.path).read_bytes()

    records, _ = run_list(root, tmp_path, localhub.url)
    assert set(records) == set(contents)
    for dest, record in records.items():
        data = contents[dest]
        assert record["size"] == len(data), dest
        if dest.endswith((".safetensors", ".pt", ".pth", ".bin", ".onnx", ".ckpt")):
            assert record["sha256"] is not None, dest
        if record["sha256"] is not None:  # an LFS file: the Hub names it by sha256
            assert record["sha256"] == hashlib.sha256(data).hexdigest(), dest
        else:
            assert record["blob_sha1"] == blob_sha1(data), dest
    api_calls = [r for r in localhub.requests if r.path.startswith("/api/")]
    assert (
        len(api_calls) <= 3 * 23
    )  # a revision lookup and a few batches per repo, not one per file

    localhub.clear_requests()
    warm, _ = run_list(root, tmp_path, localhub.url)
    assert warm == records
    assert localhub.requests == []

    offline, _ = run_list(root, tmp_path, localhub.url, "--offline")
    assert offline == records


@pytest.mark.parametrize("api", ["paths-info", "tree"])
def test_whole_catalog_metadata_from_a_hub_that_is_not_ours(tmp_path, api):
    """The same catalog against an independent fake of the Hub's API (tests/test_remote_foreign)."""
    from tests.test_remote_foreign import ForeignHub

    root = real_install(tmp_path, "8681e9f")
    repos: dict[str, dict[str, bytes]] = {}
    for record in load_catalog(root).records:
        repos.setdefault(record.repo, {})[record.path] = f"{record.repo}:{record.path}".encode()
    options = (
        {"tree": False, "lfs_key": "sha256"}
        if api == "paths-info"
        else {"paths_info": False, "page_size": 50}
    )
    with ForeignHub(repos, **options) as hub:
        records, _ = run_list(root, tmp_path, hub.url)
    for dest, record in records.items():
        data = repos[record["repo"]][record["path"]]
        assert record["size"] == len(data), dest
        if record["path"].endswith(".safetensors"):
            assert record["sha256"] == hashlib.sha256(data).hexdigest(), dest
        else:
            assert record["sha256"] is None and record["blob_sha1"] == blob_sha1(data), dest
