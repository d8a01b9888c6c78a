"""Placement and destinations: the real program never replaces a user's file, never writes into
a hub, and never writes through a link, whatever appears at a destination or a working file."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from tests.world import BIG, REPO, build_world, payload
from wandown.engine.partial import PartialPaths, PartialState, save_state
from wandown.engine.ranges import RangeSet

POSE = "ckpts/pose/yolox_l.onnx"


@pytest.fixture
def world(tmp_path, localhub):
    return build_world(tmp_path, localhub, big_size=3_000_000)


def cdn_gets(localhub, name):
    return [r for r in localhub.requests if r.method == "GET" and name in r.path]


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def snapshot(folder):
    """Every name below folder with its bytes (links as their text): what 'untouched' means."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[path] = ("link", os.readlink(path))
        elif path.is_file():
            found[path] = ("file", path.read_bytes())
        else:
            found[path] = ("folder", None)
    return found


# -- finding 3: a file that appears at the destination is never replaced ----------------------


def download_while_a_file_appears(world, content: bytes):
    """Run a slow download of BIG and put content at its destination while it runs."""
    dest = world.path(f"ckpts/{BIG}")
    part = PartialPaths.for_dest(dest).part
    process = world.popen("--download", BIG, "--limit", "1000", "--connections", "2")
    try:
        wait_until(lambda: part.exists())
        dest.write_bytes(content)  # Wan2GP, say, fetched the same file meanwhile
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "Traceback" not in out + err, err
    return process.returncode, out, part


def test_a_file_that_appears_while_downloading_is_left_as_it_is(world):
    mine = b"the user's own file, not the Hub's"
    returncode, out, part = download_while_a_file_appears(world, mine)
    assert world.path(f"ckpts/{BIG}").read_bytes() == mine
    assert f"Complete    ckpts/{BIG}" not in out
    assert "appeared while downloading" in out and str(part) in out
    assert returncode == 1
    assert part.read_bytes() == world.served_file(BIG).read_bytes()  # verified, kept


def test_a_file_that_appears_and_matches_the_hub_is_kept_and_the_download_dropped(world):
    served = world.served_file(BIG).read_bytes()
    returncode, out, part = download_while_a_file_appears(world, served)
    assert returncode == 0, out
    assert "matches the Hub's; kept it and dropped the download" in out
    assert world.path(f"ckpts/{BIG}").read_bytes() == served
    assert not part.exists()


# -- finding 5: a working file that became a link is never written through ----------------------


@pytest.mark.parametrize("kind", ["symlink", "hard link"])
def test_a_partial_replaced_by_a_link_to_a_hub_file_is_never_written(world, localhub, kind):
    served = world.served_file(BIG).read_bytes()
    hub_file = world.hub_dir / "other.safetensors"  # same size, so it looked like a partial
    hub_bytes = payload("a hub file", len(served))
    hub_file.write_bytes(hub_bytes)
    paths = PartialPaths.for_dest(world.path(f"ckpts/{BIG}"))
    paths.folder.mkdir(parents=True)
    if kind == "symlink":
        paths.part.symlink_to(hub_file)
    else:
        os.link(hub_file, paths.part)
    done = RangeSet([(0, len(served) // 2)])
    url = f"{world.endpoint}/{REPO}/resolve/main/{BIG}"
    save_state(
        paths.state,
        PartialState(url, len(served), hashlib.sha256(served).hexdigest(), None, done=done),
    )

    result = world.run("--download", BIG)
    assert hub_file.read_bytes() == hub_bytes
    assert result.returncode == 1
    assert f"{paths.part} is {'a link' if kind == 'symlink' else 'a hard link'}" in result.stdout
    assert not world.path(f"ckpts/{BIG}").exists()
