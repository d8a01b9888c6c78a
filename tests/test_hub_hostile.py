"""The hostile tester's second round, driven through the real program: a HF blob whose name
lies, a hub folder link that Wan2GP's ckpts shares, a link the user makes while wandown hashes,
a deleted working folder, an unmounted hub behind ckpts."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_airgap_cli import hf_cache_entry
from tests.world import BIG, PROJECT, REPO, build_world
from wandown.hub import scan_hub


@pytest.fixture
def world(tmp_path, localhub):
    return build_world(tmp_path, localhub)


def flipped(data: bytes, at: int = 1234) -> bytes:
    """The same bytes with one bit pattern flipped: same size, other content (bit rot)."""
    bad = bytearray(data)
    bad[at] ^= 0xFF
    return bytes(bad)


def lying_blob(hub_dir: Path, repo: str, path: str, good: bytes) -> Path:
    """A HF cache entry whose blob is named sha256(good) but holds other bytes of its size."""
    blob = hf_cache_entry(hub_dir, repo, path, good)
    blob.write_bytes(flipped(good))
    assert blob.name == hashlib.sha256(good).hexdigest()
    return blob


def test_dedupe_never_replaces_a_good_copy_with_a_blob_whose_name_lies(world):
    good = os.urandom(100_000)
    lying_blob(world.hub_dir, "someone/thing", "weights.safetensors", good)
    mine = world.path("ckpts/my_model.safetensors")
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_bytes(good)

    result = world.run("--dedupe", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not mine.is_symlink() and mine.read_bytes() == good
    assert "0 files replaced by links" in result.stdout


def test_dedupe_still_links_a_blob_that_holds_what_its_name_says(world):
    good = os.urandom(100_000)
    blob = hf_cache_entry(world.hub_dir, "someone/thing", "weights.safetensors", good)
    mine = world.path("ckpts/my_model.safetensors")
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_bytes(good)

    result = world.run("--dedupe", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.readlink(mine) == str(blob) and mine.read_bytes() == good


def test_download_never_links_a_blob_whose_name_lies(world):
    good = world.served_file(BIG).read_bytes()
    blob = lying_blob(world.hub_dir, REPO, BIG, good)

    result = world.run("--download", BIG)
    assert result.returncode == 0, result.stdout + result.stderr
    dest = world.path(f"ckpts/{BIG}")
    assert not dest.is_symlink() and dest.read_bytes() == good  # downloaded, not linked
    assert blob.read_bytes() == flipped(good)  # the hub is only read
    assert "does not hold what its Hugging Face blob name says" in result.stdout + result.stderr


def test_offline_a_blob_is_linked_only_when_its_bytes_match_its_name(world, localhub):
    good = world.served_file(BIG).read_bytes()
    blob = lying_blob(world.hub_dir, REPO, BIG, good)

    result = world.run("--offline", "--download", BIG)
    dest = world.path(f"ckpts/{BIG}")
    assert not os.path.lexists(dest), result.stdout + result.stderr
    assert localhub.requests == []

    blob.write_bytes(good)  # repaired: now its bytes prove its name
    result = world.run("--offline", "--download", BIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.readlink(dest) == str(blob) and dest.read_bytes() == good


def test_a_ckpts_link_to_a_folder_the_hub_links_to_is_never_written(world, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (world.hub_dir / "extra").symlink_to(shared)  # the scan follows it: shared holds hub files
    ckpts = world.path("ckpts")
    if ckpts.exists():
        ckpts.rmdir()
    ckpts.symlink_to(shared)

    result = world.run("--download", BIG)
    assert result.returncode != 0
    assert "wandown never writes into a hub" in result.stdout + result.stderr
    assert sorted(shared.iterdir()) == []  # no download, no .wandown/ in the hub


def test_the_scan_reports_the_real_folders_its_links_led_to(tmp_path):
    hub, shared = tmp_path / "hub", tmp_path / "shared"
    (shared / "deep").mkdir(parents=True)
    hub.mkdir()
    (hub / "extra").symlink_to(shared)
    (hub / "deeper").symlink_to(shared / "deep")  # inside a tree already walked: still a root
    index = scan_hub(hub, tmp_path / "sidecar.json")
    assert str(hub.resolve()) in index.real_roots and str(shared.resolve()) in index.real_roots


def test_a_link_the_user_makes_while_wandown_hashes_is_never_replaced(
    world, tmp_path, monkeypatch, capsys
):
    from wandown import cli
    from wandown.hub.index import HubIndex

    (world.hub_dir / "big.safetensors").write_bytes(world.served_file(BIG).read_bytes())
    own = tmp_path / "mine" / "own.safetensors"
    own.parent.mkdir()
    own.write_bytes(b"my own model")
    dest = world.path(f"ckpts/{BIG}")
    match = HubIndex.match

    def user_links_while_hashing(self, *args, **kwargs):
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(own)
        return match(self, *args, **kwargs)

    monkeypatch.setattr(HubIndex, "match", user_links_while_hashing)
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
    monkeypatch.chdir(world.workdir)
    status = cli.main(["--download", BIG])
    out = capsys.readouterr()
    assert os.readlink(dest) == str(own), out
    assert "appeared while linking" in out.out + out.err
    assert status != 0


@pytest.mark.parametrize("config", ["relative", "absolute"])
def test_a_deleted_current_folder_is_a_clear_message(world, tmp_path, config):
    gone = tmp_path / "gone"
    gone.mkdir()
    args = [sys.executable, str(PROJECT / "wandown.py"), "--list"]
    if config == "absolute":
        args += ["--config-file", str(world.workdir / "config.json"), "--hub-dir", "hub"]
    # The shell stands in a folder that is deleted under it, as `cd x; rm -r ../x` does.
    script = f"import os, subprocess, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); "
    script += f"sys.exit(subprocess.run({args!r}).returncode)"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=world.env(), timeout=60
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "current folder" in result.stderr and "cd into a folder that exists" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_a_ckpts_link_to_an_unmounted_hub_is_named_as_such(world):
    ckpts = world.path("ckpts")
    if ckpts.exists():
        ckpts.rmdir()
    world.hub_dir.rmdir()  # the hub is not mounted: hub features are off
    ckpts.symlink_to(world.hub_dir / "wan2gp-ckpts")

    result = world.run("--download", BIG)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"is a link to {world.hub_dir / 'wan2gp-ckpts'}, which is missing" in output
    assert "is the hub mounted?" in output and "File exists" not in output
    assert not os.path.lexists(world.hub_dir)  # nothing recreated the hub's folders
