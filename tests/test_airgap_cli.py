"""Air-gapped use and hub upkeep from the command line: offline links, carried metadata, dedupe."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.world import BIG, REPO, build_world


@pytest.fixture
def world(tmp_path, localhub):
    return build_world(tmp_path, localhub)


def hf_cache_entry(hub_dir, repo, path, data, commit="a" * 40):
    """Write the layout huggingface_hub writes for one file: blob, snapshot link, ref."""
    folder = hub_dir / f"models--{repo.replace('/', '--')}"
    sha = hashlib.sha256(data).hexdigest()
    (folder / "blobs").mkdir(parents=True)
    (folder / "blobs" / sha).write_bytes(data)
    snapshot = folder / "snapshots" / commit / path
    snapshot.parent.mkdir(parents=True)
    os.symlink(os.path.relpath(folder / "blobs" / sha, snapshot.parent), snapshot)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    return folder / "blobs" / sha


def test_offline_links_a_hugging_face_cache_entry_without_metadata(world, localhub):
    blob = hf_cache_entry(world.hub_dir, REPO, BIG, world.served_file(BIG).read_bytes())
    plain_copy = world.hub_dir / "plain" / BIG
    plain_copy.parent.mkdir()
    plain_copy.write_bytes(world.served_file(BIG).read_bytes())

    result = world.run("--offline", "--download", BIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.readlink(world.path(f"ckpts/{BIG}")) == str(blob)
    assert localhub.requests == []

    # a plain file is never linked on a guess: without metadata nothing proves it
    other = world.run("--offline", "--download", "config.json")
    assert other.returncode == 1
    assert "Unknown" in other.stdout
    assert localhub.requests == []


def test_metadata_carried_to_an_air_gapped_machine(world, localhub, tmp_path):
    exported = tmp_path / "carried.json"
    result = world.run("--export-metadata", str(exported))
    assert result.returncode == 0, result.stderr
    assert exported.is_file()
    assert "hf_" not in exported.read_text()

    copy = world.hub_dir / "models" / "renamed.bin"
    copy.parent.mkdir()
    copy.write_bytes(world.served_file(BIG).read_bytes())
    air_gapped = {"WANDOWN_CACHE_DIR": str(tmp_path / "other-machine-cache")}
    localhub.clear_requests()
    imported = world.run("--import-metadata", str(exported), extra_env=air_gapped)
    assert imported.returncode == 0, imported.stderr
    assert "imported metadata" in imported.stderr

    linked = world.run("--offline", "--download", BIG, extra_env=air_gapped)
    assert linked.returncode == 0, linked.stdout + linked.stderr
    assert os.readlink(world.path(f"ckpts/{BIG}")) == str(copy)
    assert localhub.requests == []


def test_bad_metadata_file_is_a_clear_error(world, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    result = world.run("--import-metadata", str(bad))
    assert result.returncode != 0
    assert "bad.json" in result.stderr


def test_dedupe_turns_identical_files_into_links(world):
    assert world.run("--download", BIG).returncode == 0
    dest = world.path(f"ckpts/{BIG}")
    assert dest.is_file() and not dest.is_symlink()
    twin = world.hub_dir / "twin.safetensors"
    twin.write_bytes(dest.read_bytes())

    refused = world.run("--dedupe")
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert not dest.is_symlink()

    result = world.run("--dedupe", "--yes")
    assert result.returncode == 0, result.stderr
    assert dest.is_symlink() and os.readlink(dest) == str(twin)
    assert "1 file replaced by a link; 6.0 MB reclaimed" in result.stdout
    assert twin.read_bytes() == world.served_file(BIG).read_bytes()
