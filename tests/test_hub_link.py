"""Linking hub files into place, and dedupe of copies that the hub already holds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.test_hub_builders import content, make_hf_cache, make_invokeai, sha256_hex, write
from wandown.hub import LinkOutcome, ModelHubError, dedupe, link_into_place, scan_hub


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDOWN_CACHE_DIR", str(tmp_path / "cache"))


def test_link_then_already_linked(tmp_path: Path) -> None:
    hub_file = write(tmp_path / "hub" / "m.bin", b"model")
    dest = tmp_path / "wan" / "ckpts" / "m.bin"
    assert link_into_place(hub_file, dest) is LinkOutcome.LINKED
    assert os.readlink(dest) == str(hub_file)
    assert link_into_place(hub_file, dest) is LinkOutcome.ALREADY
    assert dest.read_bytes() == b"model"
    assert [p.name for p in dest.parent.iterdir()] == ["m.bin"]  # no temporary left behind


def test_relative_hub_path_becomes_absolute(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "hub" / "m.bin", b"model")
    monkeypatch.chdir(tmp_path)
    link_into_place(Path("hub/m.bin"), tmp_path / "dest")
    assert os.readlink(tmp_path / "dest") == str(tmp_path / "hub" / "m.bin")


def test_broken_link_is_repaired(tmp_path: Path) -> None:
    hub_file = write(tmp_path / "hub" / "m.bin", b"model")
    dest = tmp_path / "dest.bin"
    os.symlink(tmp_path / "gone.bin", dest)
    with pytest.raises(FileExistsError):
        link_into_place(hub_file, dest)  # never without being asked
    assert link_into_place(hub_file, dest, replace_link=True) is LinkOutcome.REPAIRED
    assert dest.read_bytes() == b"model"


def test_a_link_is_never_followed_when_written(tmp_path: Path) -> None:
    hub_file = write(tmp_path / "hub" / "m.bin", b"model")
    victim = write(tmp_path / "victim.bin", b"precious")
    dest = tmp_path / "dest.bin"
    os.symlink(victim, dest)
    assert link_into_place(hub_file, dest, replace_link=True) is LinkOutcome.REPAIRED
    assert victim.read_bytes() == b"precious"
    assert os.readlink(dest) == str(hub_file)


def test_real_file_at_destination_is_never_replaced(tmp_path: Path) -> None:
    hub_file = write(tmp_path / "hub" / "m.bin", b"model")
    dest = write(tmp_path / "dest.bin", b"user data")
    with pytest.raises(FileExistsError):
        link_into_place(hub_file, dest)
    assert dest.read_bytes() == b"user data" and not dest.is_symlink()


def test_broken_hub_link_is_never_linked(tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    os.symlink(tmp_path / "gone", tmp_path / "hub" / "broken.bin")
    with pytest.raises(ModelHubError, match="broken link"):
        link_into_place(tmp_path / "hub" / "broken.bin", tmp_path / "dest.bin")
    assert not os.path.lexists(tmp_path / "dest.bin")


def test_link_to_a_hub_link_points_at_the_real_file(tmp_path: Path) -> None:
    real = write(tmp_path / "disk" / "m.bin", content("m", 300))
    (tmp_path / "hub").mkdir()
    os.symlink(real, tmp_path / "hub" / "m.bin")
    index = scan_hub(tmp_path / "hub")
    assert index.link_target("m.bin") == real


def build_dedupe_case(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    hub, wan = tmp_path / "hub", tmp_path / "wan2gp"
    data = {"a": content("a", 4000), "b": content("b", 5000), "c": content("c", 6000)}
    write(hub / "plain" / "a.safetensors", data["a"])
    make_hf_cache(hub / "hf", "o/r", {"b.safetensors": data["b"]})
    write(hub / "plain" / "c.safetensors", data["c"])
    write(wan / "ckpts" / "copy_of_a.safetensors", data["a"])
    write(wan / "ckpts" / "nested" / "copy_of_b.safetensors", data["b"])
    write(wan / "ckpts" / "same_size_as_a.bin", content("not a", 4000))
    write(wan / "ckpts" / "unrelated.bin", content("u", 123))
    os.link(hub / "plain" / "c.safetensors", wan / "ckpts" / "hardlink_of_c.safetensors")
    os.symlink(hub / "plain" / "a.safetensors", wan / "ckpts" / "already_link.safetensors")
    return hub, wan, data


@pytest.mark.parametrize("blake3_installed", [True, False])
def test_dedupe_replaces_identical_copies_only(
    tmp_path: Path, monkeypatch, blake3_installed
) -> None:
    hub, wan, data = build_dedupe_case(tmp_path)
    if not blake3_installed:
        monkeypatch.setitem(sys.modules, "blake3", None)
    hub_before = sorted((p, p.lstat().st_mtime_ns, p.lstat().st_size) for p in hub.rglob("*"))
    index = scan_hub(hub)
    report = dedupe(wan, index)
    blob = hub / "hf" / "models--o--r" / "blobs" / sha256_hex(data["b"])
    assert sorted(report.replaced) == sorted(
        [
            (wan / "ckpts" / "copy_of_a.safetensors", hub / "plain" / "a.safetensors"),
            (wan / "ckpts" / "nested" / "copy_of_b.safetensors", blob),
        ]
    )
    assert report.bytes_reclaimed == 4000 + 5000
    assert os.readlink(wan / "ckpts" / "copy_of_a.safetensors") == str(
        hub / "plain" / "a.safetensors"
    )
    assert (wan / "ckpts" / "nested" / "copy_of_b.safetensors").read_bytes() == data["b"]
    assert not (wan / "ckpts" / "same_size_as_a.bin").is_symlink()
    assert not (wan / "ckpts" / "hardlink_of_c.safetensors").is_symlink()
    assert (
        sorted((p, p.lstat().st_mtime_ns, p.lstat().st_size) for p in hub.rglob("*")) == hub_before
    )
    assert not [p for p in wan.rglob("*.dedupe")]
    again = dedupe(wan, scan_hub(hub))
    assert again.replaced == [] and again.bytes_reclaimed == 0


def test_dedupe_refuses_a_folder_inside_the_hub(tmp_path: Path) -> None:
    write(tmp_path / "hub" / "sub" / "a.bin", b"a")
    index = scan_hub(tmp_path / "hub")
    with pytest.raises(ModelHubError, match="inside the hub"):
        dedupe(tmp_path / "hub" / "sub", index)


def test_dedupe_skips_the_hub_inside_the_folder(tmp_path: Path) -> None:
    data = content("a", 2000)
    write(tmp_path / "wan" / "hub" / "a.bin", data)
    write(tmp_path / "wan" / "copy.bin", data)
    index = scan_hub(tmp_path / "wan" / "hub")
    report = dedupe(tmp_path / "wan", index)
    assert report.replaced == [(tmp_path / "wan" / "copy.bin", tmp_path / "wan" / "hub" / "a.bin")]
    assert not (tmp_path / "wan" / "hub" / "a.bin").is_symlink()


def test_dedupe_sees_files_invokeai_keeps_outside_the_hub_on_a_fresh_index(tmp_path: Path) -> None:
    data = content("outside", 5000)
    make_invokeai(tmp_path / "hub" / "invoke", {}, outside={tmp_path / "elsewhere" / "x.sft": data})
    write(tmp_path / "wan" / "copy.safetensors", data)
    report = dedupe(tmp_path / "wan", scan_hub(tmp_path / "hub"))
    assert len(report.replaced) == 1
    assert os.path.realpath(tmp_path / "wan" / "copy.safetensors") == str(
        tmp_path / "elsewhere" / "x.sft"
    )
