"""Scanning: every layout at any depth, link loops, unreadable places, and a hub left untouched."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.test_hub_builders import (
    blob_sha1_hex,
    content,
    make_hf_cache,
    make_invokeai,
    sha256_hex,
    write,
)
from wandown.hub import Wanted, dedupe, link_into_place, scan_hub


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WANDOWN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_mixed_layouts_at_any_depth(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    write(hub / "a" / "b" / "c" / "d" / "e" / "deep.bin", b"deep")
    weights, config = content("w", 64), b"{}"
    make_hf_cache(
        hub / "nested" / "hf" / "hub", "o/r", {"w.safetensors": weights, "config.json": config}
    )
    make_invokeai(hub / "apps" / "invoke", {"m.safetensors": content("m", 10)})
    index = scan_hub(hub)
    assert "a/b/c/d/e/deep.bin" in index.files
    assert index.hf_repo_count == 1 and index.hf_blob_count == 2
    assert index.known[f"nested/hf/hub/models--o--r/blobs/{sha256_hex(weights)}"] == {
        "sha256": sha256_hex(weights)
    }
    assert index.known[f"nested/hf/hub/models--o--r/blobs/{blob_sha1_hex(config)}"] == {
        "blob_sha1": blob_sha1_hex(config)
    }
    # Snapshot links are not files of their own: the blob is the file.
    assert not any("/snapshots/" in key for key in index.files)
    assert index.invokeai_roots == [str(hub / "apps" / "invoke")]
    assert "apps/invoke/models/m.safetensors" in index.files
    assert index.file_count == len(index.files)


def test_incomplete_blobs_and_lookalike_folders(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    repo = make_hf_cache(hub, "o/r", {"w.bin": content("w", 50)})
    write(repo / "blobs" / ("f" * 64 + ".incomplete"), b"partial")
    write(hub / "models--not--a-cache" / "file.bin", b"plain")  # no blobs/snapshots: a plain folder
    index = scan_hub(hub)
    assert not any(key.endswith(".incomplete") for key in index.files)
    assert "models--not--a-cache/file.bin" in index.files


def test_link_loops_do_not_hang_and_files_count_once(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    write(hub / "models" / "x.bin", b"x")
    os.symlink("..", hub / "models" / "up")  # hub/models/up -> hub
    os.symlink(".", hub / "models" / "self")
    os.symlink(hub / "models", hub / "again")
    notices: list[str] = []
    index = scan_hub(hub, notices=notices.append)
    assert list(index.files) == ["models/x.bin"]
    assert len([n for n in notices if "already scanned" in n or "contains the hub" in n]) == 3


def test_folder_link_outside_is_followed(tmp_path: Path) -> None:
    write(tmp_path / "disk2" / "big.bin", b"big")
    (tmp_path / "hub").mkdir()
    os.symlink(tmp_path / "disk2", tmp_path / "hub" / "disk2")
    index = scan_hub(tmp_path / "hub")
    assert "disk2/big.bin" in index.files


def test_unreadable_folder_gives_one_notice(tmp_path: Path, monkeypatch) -> None:
    hub = tmp_path / "hub"
    write(hub / "ok" / "a.bin", b"a")
    write(hub / "secret" / "inner" / "b.bin", b"b")
    real_scandir = os.scandir

    def refusing(path="."):
        if os.fspath(path) == str(hub / "secret"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    notices: list[str] = []
    index = scan_hub(hub, notices=notices.append)
    assert list(index.files) == ["ok/a.bin"]
    assert notices == [f"skipping {hub / 'secret'}: Permission denied"]
    assert index.skipped_places == 1


def test_broken_links_are_skipped_with_a_notice(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    write(hub / "a.bin", b"a")
    os.symlink(tmp_path / "gone", hub / "dangling_dir")
    os.symlink(tmp_path / "gone.bin", hub / "dangling.bin")
    notices: list[str] = []
    index = scan_hub(hub, notices=notices.append)
    assert list(index.files) == ["a.bin"]
    assert index.broken_links == 2
    assert sorted(notices) == sorted(
        [
            f"skipping {hub / 'dangling_dir'}: a broken link",
            f"skipping {hub / 'dangling.bin'}: a broken link",
        ]
    )


def listing(root: Path) -> list[tuple]:
    """Every entry below root with what a write would change (links are not followed)."""
    result = []
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            st = os.lstat(os.path.join(folder, name))
            result.append(
                (os.path.join(folder, name), st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino)
            )
    return sorted(result)


def test_read_only_hub_is_left_untouched(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    a = content("a", 3000)
    write(hub / "plain" / "a.safetensors", a)
    write(hub / "plain" / "decoy.safetensors", content("decoy", 3000))
    make_hf_cache(hub / "hf", "o/r", {"w.safetensors": content("w", 2000), "config.json": b"{}"})
    make_invokeai(hub / "invoke", {"m.safetensors": content("m", 1000)})
    for folder, _dirs, files in os.walk(hub):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
    before = listing(hub)
    try:
        wan2gp = tmp_path / "wan2gp"
        write(wan2gp / "copy.safetensors", a)
        index = scan_hub(hub)
        wanted = [
            Wanted(size=3000, sha256=sha256_hex(a)),
            Wanted(size=1000, sha256=sha256_hex(content("not there", 1000))),
        ]
        matches = index.match(wanted)
        assert len(matches) == 1
        link_into_place(matches[wanted[0]], wan2gp / "ckpts" / "a.safetensors")
        assert index.find_in_hf_cache("o/r", "config.json") is not None
        assert len(dedupe(wan2gp, index).replaced) == 1
        scan_hub(hub).match(wanted)
        assert listing(hub) == before
    finally:
        for folder, _dirs, _files in os.walk(hub):
            os.chmod(folder, 0o755)


def test_link_to_a_cache_repo_folder_is_read_as_a_cache(tmp_path: Path) -> None:
    weights = content("w", 64)
    repo = make_hf_cache(tmp_path / "elsewhere", "o/r", {"w.safetensors": weights})
    (tmp_path / "hub").mkdir()
    os.symlink(repo, tmp_path / "hub" / repo.name)
    index = scan_hub(tmp_path / "hub")
    assert index.hf_repo_count == 1
    found = index.find_in_hf_cache("o/r", "w.safetensors")
    assert found == (
        tmp_path / "hub" / repo.name / "blobs" / sha256_hex(weights),
        sha256_hex(weights),
    )


@pytest.mark.parametrize("content", [b"[1]", b"\xff\xfe garbage", b'{"version": 1, "files": 3}'])
def test_a_damaged_sidecar_is_reported_and_replaced(tmp_path, content):
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "a.bin").write_bytes(b"abc")
    sidecar = tmp_path / "sidecar.json"
    sidecar.write_bytes(content)
    notices = []
    index = scan_hub(hub, sidecar_path=sidecar, notices=notices.append)
    assert index.file_count == 1
    assert any("sidecar" in notice and "afresh" in notice for notice in notices)
