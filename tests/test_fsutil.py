"""fsutil's promises piece by piece: no replaced user file, no write through a link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wandown import fsutil


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_symlink_places_a_new_link_and_replaces_only_a_link(tmp_path):
    target = tmp_path / "hub.bin"
    target.write_bytes(b"hub")
    link = tmp_path / "ckpts" / "x.bin"
    fsutil.atomic_symlink(target, link)
    assert os.readlink(link) == str(target)
    other = tmp_path / "other.bin"
    with pytest.raises(FileExistsError):
        fsutil.atomic_symlink(other, link)  # replacing must be asked for
    assert os.readlink(link) == str(target)
    fsutil.atomic_symlink(other, link, replace_link=True)  # asked: a link may become another
    assert os.readlink(link) == str(other)
    assert names(link.parent) == ["x.bin"]


def test_atomic_symlink_never_replaces_a_real_file_unless_asked(tmp_path):
    target = tmp_path / "hub.bin"
    target.write_bytes(b"hub")
    link = tmp_path / "x.bin"
    link.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="is a real file"):
        fsutil.atomic_symlink(target, link)
    assert link.read_bytes() == b"mine" and not link.is_symlink()
    fsutil.atomic_symlink(target, link, replace_file=True)  # dedupe, after proving it identical
    assert os.readlink(link) == str(target)
    assert names(tmp_path) == ["hub.bin", "x.bin"]


def test_a_file_that_appears_while_a_link_is_made_is_kept(tmp_path, monkeypatch):
    target = tmp_path / "hub.bin"
    target.write_bytes(b"hub")
    link = tmp_path / "x.bin"
    real_symlink = os.symlink

    def symlink_then_a_file_appears(source, name, *args, **kwargs):
        real_symlink(source, name, *args, **kwargs)
        link.write_bytes(b"written by Wan2GP meanwhile")

    monkeypatch.setattr(os, "symlink", symlink_then_a_file_appears)
    with pytest.raises(FileExistsError):
        fsutil.atomic_symlink(target, link)
    assert link.read_bytes() == b"written by Wan2GP meanwhile"
    assert names(tmp_path) == ["hub.bin", "x.bin"]


def test_atomic_write_replaces_a_link_without_writing_its_target(tmp_path):
    hub_file = tmp_path / "hub.json"
    hub_file.write_text("hub")
    path = tmp_path / "state.json"
    path.symlink_to(hub_file)
    fsutil.atomic_write_bytes(path, b"ours")
    assert hub_file.read_text() == "hub"
    assert not path.is_symlink() and path.read_bytes() == b"ours"


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "link-unlink"])
def test_place_new_never_replaces(tmp_path, monkeypatch, renameat2):
    if not renameat2:
        monkeypatch.setattr(fsutil, "_renameat2_noreplace", lambda source, dest: False)
    part, dest = tmp_path / "x.part", tmp_path / "x"
    part.write_bytes(b"download")
    dest.write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        fsutil.place_new(part, dest)
    assert (part.read_bytes(), dest.read_bytes()) == (b"download", b"mine")
    dest.unlink()
    fsutil.place_new(part, dest)
    assert dest.read_bytes() == b"download" and not part.exists()


@pytest.mark.parametrize("kind", ["symlink", "hard link", "fifo"])
def test_open_private_file_refuses_what_is_not_its_own(tmp_path, kind):
    other = tmp_path / "hub.bin"
    other.write_bytes(b"hub")
    path = tmp_path / "x.part"
    if kind == "symlink":
        path.symlink_to(other)
    elif kind == "hard link":
        os.link(other, path)
    else:
        os.mkfifo(path)
    with pytest.raises(fsutil.UnsafePathError, match=r"x\.part is"):
        fsutil.open_private_file(path)
    assert other.read_bytes() == b"hub"


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "lstat-replace"])
def test_a_file_that_replaces_a_link_while_it_is_relinked_is_kept(tmp_path, monkeypatch, exchange):
    target = tmp_path / "hub.bin"
    target.write_bytes(b"hub")
    link = tmp_path / "x.bin"
    link.symlink_to(tmp_path / "old-hub.bin")
    real_place_new = fsutil.place_new

    def a_file_replaces_the_link_first(source, dest):
        os.unlink(link)
        link.write_bytes(b"written by Wan2GP meanwhile")
        real_place_new(source, dest)

    monkeypatch.setattr(fsutil, "place_new", a_file_replaces_the_link_first)
    if not exchange:
        real_renameat2 = fsutil._renameat2

        def no_exchange(source, dest, flags):
            return flags != fsutil._RENAME_EXCHANGE and real_renameat2(source, dest, flags)

        monkeypatch.setattr(fsutil, "_renameat2", no_exchange)
    with pytest.raises(FileExistsError, match="is a real file"):
        fsutil.atomic_symlink(target, link, replace_link=True)
    assert link.read_bytes() == b"written by Wan2GP meanwhile"
    assert names(tmp_path) == ["hub.bin", "x.bin"]
