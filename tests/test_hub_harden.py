"""The model hub under hostile layouts: links into Wan2GP, rewritten files, pinned revisions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.test_airgap_cli import hf_cache_entry
from tests.test_hub_builders import content, write
from tests.world import BIG, REPO, build_world
from wandown.hub import dedupe, scan, scan_hub


@pytest.fixture
def world(tmp_path, localhub):
    return build_world(tmp_path, localhub)


def downloaded(world) -> bytes:
    """Download BIG into ckpts as a real file and return its bytes."""
    result = world.run("--download", BIG)
    assert result.returncode == 0, result.stdout + result.stderr
    dest = world.path(f"ckpts/{BIG}")
    assert dest.is_file() and not dest.is_symlink()
    return dest.read_bytes()


def test_dedupe_through_a_hub_link_to_ckpts_keeps_every_copy(world):
    data = downloaded(world)
    second = world.path("ckpts/other/copy.safetensors")
    write(second, data)
    os.symlink(world.path("ckpts"), world.hub_dir / "wan2gp")

    result = world.run("--dedupe", "--yes")
    assert result.returncode == 0, result.stderr
    assert "0 files replaced by links" in result.stdout
    for copy in (world.path(f"ckpts/{BIG}"), second):
        assert not copy.is_symlink() and copy.read_bytes() == data

    twin = write(world.hub_dir / "real" / "twin.safetensors", data)
    result = world.run("--dedupe", "--yes")
    assert result.returncode == 0, result.stderr
    for copy in (world.path(f"ckpts/{BIG}"), second):
        assert os.readlink(copy) == str(twin) and copy.read_bytes() == data


def test_dedupe_never_touches_working_folders_venvs_or_git(world):
    data = downloaded(world)
    write(world.hub_dir / "twin.safetensors", data)
    untouchable = [
        world.path(f"ckpts/.wandown/{BIG}.part"),
        world.path("ckpts/.git/objects/copy.bin"),
        world.path("venv/lib/copy.bin"),
        world.path("ckpts/__pycache__/copy.bin"),
    ]
    for path in untouchable:
        write(path, data)
    write(world.path("venv/pyvenv.cfg"), b"home = /usr/bin\n")

    result = world.run("--dedupe", "--yes")
    assert result.returncode == 0, result.stderr
    assert "1 file replaced by a link" in result.stdout
    assert world.path(f"ckpts/{BIG}").is_symlink()
    for path in untouchable:
        assert not path.is_symlink(), path


def test_a_hub_file_rewritten_in_place_with_its_old_mtime_is_hashed_again(world):
    copy = world.hub_dir / "copy.safetensors"
    copy.write_bytes(world.served_file(BIG).read_bytes())
    dest = world.path(f"ckpts/{BIG}")
    first = world.run("--download", BIG)
    assert first.returncode == 0, first.stdout + first.stderr
    assert os.readlink(dest) == str(copy)

    dest.unlink()
    before = copy.stat()
    with open(copy, "r+b") as handle:  # same inode, same size, other bytes
        handle.write(b"X" * 4096)
    os.utime(copy, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = copy.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )

    second = world.run("--download", BIG)
    assert second.returncode == 0, second.stdout + second.stderr
    assert not dest.is_symlink()
    assert dest.read_bytes() == world.served_file(BIG).read_bytes()


def test_an_old_sidecar_without_ctime_is_hashed_again_not_an_error(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    write(hub / "m.bin", content("m", 1000))
    index = scan_hub(hub)
    st = os.stat(hub / "m.bin")
    old = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "dev": st.st_dev}
    index.sidecar.path.parent.mkdir(parents=True, exist_ok=True)
    index.sidecar.path.write_text(
        json.dumps({"version": 1, "files": {"m.bin": {**old, "sha256": "0" * 64}}})
    )
    again = scan_hub(hub)
    assert again.known_digests("m.bin") == {}
    assert again.notices == []


def pin_definition(world, commit: str) -> None:
    """Point the test model's URLs at one commit instead of main."""
    definition = world.root / "defaults" / "testvideo.json"
    text = definition.read_text().replace("/resolve/main/", f"/resolve/{commit}/")
    definition.write_text(text)


def test_offline_a_pinned_commit_is_never_served_from_another_snapshot(world, localhub):
    pinned, main = "b" * 40, "a" * 40
    pin_definition(world, pinned)
    hf_cache_entry(world.hub_dir, REPO, BIG, b"main's newer bytes" * 1000, commit=main)

    result = world.run("--offline", "--download", BIG)
    assert result.returncode == 1, result.stdout + result.stderr
    assert not os.path.lexists(world.path(f"ckpts/{BIG}"))

    folder = world.hub_dir / f"models--{REPO.replace('/', '--')}"
    pinned_bytes = world.served_file(BIG).read_bytes()
    pinned_blob = hf_cache_entry(world.hub_dir / "second", REPO, BIG, pinned_bytes, pinned)
    os.rename(pinned_blob, folder / "blobs" / pinned_blob.name)
    snapshot = folder / "snapshots" / pinned / BIG
    snapshot.parent.mkdir(parents=True)
    os.symlink(f"../../blobs/{pinned_blob.name}", snapshot)

    result = world.run("--offline", "--download", BIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.readlink(world.path(f"ckpts/{BIG}")) == str(folder / "blobs" / pinned_blob.name)
    assert localhub.requests == []


def test_offline_a_branch_resolves_through_its_ref(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    hf_cache_entry(hub, "o/r", "m.bin", b"old" * 100, commit="a" * 40)
    folder = hub / "models--o--r"
    newer = hf_cache_entry(tmp_path / "other", "o/r", "m.bin", b"new" * 100, commit="c" * 40)
    os.rename(newer, folder / "blobs" / newer.name)
    os.rename(newer.parent.parent / "snapshots" / ("c" * 40), folder / "snapshots" / ("c" * 40))
    (folder / "refs" / "dev").write_text("c" * 40)
    index = scan_hub(hub)
    main_hit = index.find_in_hf_cache("o/r", "m.bin", "main")
    dev_hit = index.find_in_hf_cache("o/r", "m.bin", "dev")
    assert main_hit is not None and dev_hit is not None
    assert main_hit[0].read_bytes() == b"old" * 100
    assert dev_hit[0].read_bytes() == b"new" * 100
    assert index.find_in_hf_cache("o/r", "m.bin", "nope") is None
    assert index.find_in_hf_cache("o/r", "m.bin", "../../../etc") is None


def test_scan_does_not_follow_a_link_to_a_folder_around_the_hub(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    write(hub / "real" / "m.bin", content("m", 100))
    write(tmp_path / "elsewhere" / "x.bin", content("x", 100))
    write(tmp_path / "models" / "y.bin", content("y", 100))
    os.symlink(tmp_path, hub / "up")
    os.symlink(tmp_path / "models", hub / "models")
    os.symlink(hub / "real", hub / "real" / "loop")
    os.symlink(tmp_path, tmp_path / "models" / "up")
    os.symlink(tmp_path / "elsewhere", hub / "models2")  # unrelated to the others: followed
    write(hub / "real" / ".wandown" / "m.bin.part", content("m", 100))
    write(hub / "real" / "__pycache__" / "m.bin", content("m", 100))
    index = scan_hub(hub)
    assert sorted(index.files) == ["models/y.bin", "models2/x.bin", "real/m.bin"]
    assert any("up" in n and "contains the hub" in n for n in index.notices)


def test_scan_does_not_walk_the_whole_file_system(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    hub.mkdir()
    os.symlink("/", hub / "root")
    os.symlink("/proc", hub / "proc")
    index = scan_hub(hub)
    assert index.files == {}
    assert len(index.notices) == 2


def test_scan_stops_at_its_entry_cap_with_a_notice(tmp_path: Path, monkeypatch) -> None:
    hub = tmp_path / "hub"
    for n in range(50):
        write(hub / f"d{n % 5}" / f"f{n}.bin", b"x")
    monkeypatch.setattr(scan, "MAX_ENTRIES", 20)
    index = scan_hub(hub)
    assert len(index.files) < 20
    assert sum("stopped" in n for n in index.notices) == 1
    assert index.skipped_places >= 1


def test_the_working_folder_names_include_the_engines_partial_folder() -> None:
    from wandown.engine.partial import PARTIAL_FOLDER

    assert PARTIAL_FOLDER in scan.WORKING_FOLDERS


def test_dedupe_proves_the_hub_file_unchanged_right_before_linking(tmp_path: Path) -> None:
    data = content("m", 3000)
    hub_file = write(tmp_path / "hub" / "m.bin", data)
    copy = write(tmp_path / "wan" / "m.bin", data)
    index = scan_hub(tmp_path / "hub")
    index.digests("m.bin", {"sha256", "blake3"})
    os.utime(hub_file, ns=(1, 1))  # replaced or edited after it was hashed
    report = dedupe(tmp_path / "wan", index)
    assert report.replaced == [] and not copy.is_symlink()
    assert any("changed since it was hashed" in n for n in index.notices)


def test_dedupe_never_links_into_a_checkpoint_root_outside_the_folder(tmp_path: Path) -> None:
    data = content("m", 3000)
    shared = write(tmp_path / "shared_ckpts" / "m.bin", data)
    copy = write(tmp_path / "wan" / "m.bin", data)
    (tmp_path / "hub").mkdir()
    os.symlink(shared, tmp_path / "hub" / "m.bin")
    index = scan_hub(tmp_path / "hub")
    assert dedupe(tmp_path / "wan", index, protected=[tmp_path / "shared_ckpts"]).replaced == []
    assert not copy.is_symlink()
    assert len(dedupe(tmp_path / "wan", index).replaced) == 1


def test_scan_leaves_out_the_wan2gp_folder_however_it_is_reached(tmp_path: Path) -> None:
    wan = tmp_path / "Wan2GP"
    write(wan / "ckpts" / "a.bin", content("a", 100))
    write(tmp_path / "data" / "b.bin", content("b", 100))
    os.symlink(wan, tmp_path / "data" / "Wan2GP")
    hub = tmp_path / "hub"
    hub.mkdir()
    os.symlink(wan / "ckpts", hub / "wan2gp")
    os.symlink(wan / "ckpts" / "a.bin", hub / "a.bin")
    os.symlink(tmp_path / "data", hub / "data")
    index = scan_hub(hub, exclude=[wan])
    assert sorted(index.files) == ["data/b.bin"]
    assert len(index.notices) == 3


def test_dedupe_alone_keeps_both_copies_a_hub_link_reaches(tmp_path: Path) -> None:
    data = content("m", 3000)
    first = write(tmp_path / "wan" / "ckpts" / "a.bin", data)
    second = write(tmp_path / "wan" / "ckpts" / "sub" / "b.bin", data)
    (tmp_path / "hub").mkdir()
    os.symlink(tmp_path / "wan" / "ckpts", tmp_path / "hub" / "wan2gp")
    index = scan_hub(tmp_path / "hub")  # no exclude: dedupe must protect itself
    assert len(index.files) == 2
    assert dedupe(tmp_path / "wan", index).replaced == []
    for copy in (first, second):
        assert not copy.is_symlink() and copy.read_bytes() == data
