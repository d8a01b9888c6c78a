"""The model hub under hostile layouts: links into Wan2GP, rewritten files, pinned revisions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.test_hub_builders import content, write
from tests.world import BIG, build_world
from wandown.hub import scan_hub


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
