"""Placement and destinations: the real program never replaces a user's file, never writes into
a hub, and never writes through a link, whatever appears at a destination or a working file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.world import BIG, REPO, build_world, hold_matching, payload, session_for
from wandown import destination, plan
from wandown.config import load_config
from wandown.engine.partial import PartialPaths, PartialState, save_state
from wandown.engine.ranges import RangeSet
from wandown.remote import hub_settings
from wandown.session import RunOptions, Session
from wandown.status import Status

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
    # Wan2GP, say, fetched the same file meanwhile
    return download_while(world, lambda: dest.write_bytes(content))


def download_while(world, meanwhile):
    """Run a slow download of BIG, call meanwhile once its part exists; return code, out, part."""
    part = PartialPaths.for_dest(world.path(f"ckpts/{BIG}")).part
    process = world.popen("--download", BIG, "--limit", "1000", "--connections", "2")
    try:
        wait_until(lambda: part.exists())
        meanwhile()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "Traceback" not in out + err, err
    return process.returncode, out, part


@pytest.mark.slow
def test_a_file_that_appears_while_downloading_is_left_as_it_is(world):
    mine = b"the user's own file, not the Hub's"
    returncode, out, part = download_while_a_file_appears(world, mine)
    assert world.path(f"ckpts/{BIG}").read_bytes() == mine
    assert f"Complete    ckpts/{BIG}" not in out
    assert "appeared while downloading" in out and str(part) in out
    assert returncode == 1
    assert part.read_bytes() == world.served_file(BIG).read_bytes()  # verified, kept


@pytest.mark.slow
def test_a_file_that_appears_and_matches_the_hub_is_kept_and_the_download_dropped(world):
    served = world.served_file(BIG).read_bytes()
    returncode, out, part = download_while_a_file_appears(world, served)
    assert returncode == 0, out
    assert "matches the Hub's; kept it and dropped the download" in out
    assert world.path(f"ckpts/{BIG}").read_bytes() == served
    assert not part.exists()


def test_a_file_that_appears_while_the_hub_is_checked_is_not_linked_over_or_downloaded(
    world, localhub, monkeypatch
):
    (world.hub_dir / "renamed.bin").write_bytes(world.served_file(BIG).read_bytes())
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
    session = session_for(world)
    go_on = threading.Event()
    hashing = hold_matching(session, go_on, 10)
    dest = f"ckpts/{BIG}"
    mine = b"copied in by the user meanwhile"
    localhub.clear_requests()
    try:
        session.start([dest])
        assert hashing.wait(10)
        world.path(dest).parent.mkdir(parents=True, exist_ok=True)
        world.path(dest).write_bytes(mine)
        go_on.set()
        assert session.wait(20)
        view = session.store.snapshot().files[dest]
    finally:
        session.shutdown()
    assert world.path(dest).read_bytes() == mine
    assert view.status == Status.FAILED
    assert "appeared while linking" in view.message
    assert cdn_gets(localhub, BIG) == []


# -- finding 4: never into a hub, never over a broken link --------------------------------------


def link_into_hub(world, folder: str) -> None:
    """Make a folder of the install ('' for the install itself) a link into the hub."""
    place = world.root / folder if folder else world.root
    inside = world.hub_dir / "moved-here" / (folder or "Wan2GP")
    inside.parent.mkdir(parents=True, exist_ok=True)
    if place.exists():
        shutil.move(place, inside)
    else:
        inside.mkdir(parents=True)
    place.parent.mkdir(parents=True, exist_ok=True)
    place.symlink_to(inside, target_is_directory=True)


@pytest.mark.parametrize("folder", ["ckpts", "ckpts/pose", ""], ids=["ckpts", "subfolder", "root"])
def test_a_wan2gp_folder_that_links_into_the_hub_is_refused(world, localhub, folder):
    link_into_hub(world, folder)
    before = snapshot(world.hub_dir)

    dry = world.run("--download", POSE, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"{POSE}: refused: {POSE} would be written inside the hub {world.hub_dir}" in dry.stdout

    result = world.run("--download", POSE)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Failed      {POSE}: {POSE} would be written inside the hub" in result.stdout
    assert "never writes into a hub" in result.stdout
    assert snapshot(world.hub_dir) == before
    assert cdn_gets(localhub, "yolox_l.onnx") == []


@pytest.mark.slow
@pytest.mark.parametrize("made_by", ["user", "wandown"])
def test_a_link_to_a_missing_hub_file_is_neither_replaced_nor_downloaded(world, localhub, made_by):
    dest = world.path(f"ckpts/{BIG}")
    gone = world.hub_dir / "unmounted" / BIG
    if made_by == "wandown":  # a link wandown made to a hub file that is gone since
        gone.parent.mkdir()
        gone.write_bytes(world.served_file(BIG).read_bytes())
        assert world.run("--download", BIG).returncode == 0
        assert os.readlink(dest) == str(gone)
        gone.unlink()
    else:
        dest.parent.mkdir(parents=True)
        dest.symlink_to(gone)
    localhub.clear_requests()

    dry = world.run("--download", BIG, "--dry-run")
    message = f"ckpts/{BIG} is a link to {gone}, which is missing (is the hub mounted?)"
    assert message in dry.stdout

    result = world.run("--download", BIG)
    assert result.returncode == 1
    assert f"Failed      ckpts/{BIG}: {message}; remove the link to download it" in result.stdout
    assert os.readlink(dest) == str(gone)
    assert cdn_gets(localhub, BIG) == []


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


# -- the pieces -----------------------------------------------------------------------------


def test_destination_problems(tmp_path):
    hub = tmp_path / "hub"
    (hub / "store").mkdir(parents=True)
    root = tmp_path / "Wan2GP"
    (root / "ckpts").mkdir(parents=True)
    (root / "ckpts" / "folder.bin").mkdir()
    (root / "ckpts" / "linked").symlink_to(hub / "store")
    assert destination.problem(root / "ckpts" / "new.bin", "ckpts/new.bin", [hub]) is None
    folder = destination.problem(root / "ckpts" / "folder.bin", "ckpts/folder.bin", [hub])
    assert folder == "ckpts/folder.bin is a folder; move it away to download the file"
    inside = destination.problem(root / "ckpts" / "linked" / "x", "ckpts/linked/x", [hub])
    assert inside is not None and inside.startswith(
        f"ckpts/linked/x would be written inside the hub {hub}"
    )


def test_a_refused_destination_is_its_own_plan_outcome():
    step = plan.decide(
        Status.MISSING, None, Path("/hub/m.bin"), False, refusal="ckpts/m.bin is bad"
    )
    assert (step.action, step.reason) == (plan.Action.REFUSED, "ckpts/m.bin is bad")
    assert plan.describe("ckpts/m.bin", step) == "ckpts/m.bin: refused: ckpts/m.bin is bad"


def test_a_working_folder_that_links_into_the_hub_is_never_written(world, localhub):
    working = world.path("ckpts/.wandown")
    inside = world.hub_dir / "elsewhere"
    inside.mkdir()
    working.parent.mkdir(parents=True)
    working.symlink_to(inside, target_is_directory=True)

    result = world.run("--download", BIG)
    assert result.returncode == 1
    assert f"{working} is a link (to {inside})" in result.stdout
    assert list(inside.iterdir()) == []
    assert not world.path(f"ckpts/{BIG}").exists()


@pytest.mark.slow
def test_a_wan2gp_folder_moved_into_the_hub_mid_download_is_not_written_into(world):
    """The check before the download is asked again before placing: folders move meanwhile."""
    ckpts = world.path("ckpts")
    moved = world.hub_dir / "ckpts"

    def file_ckpts_into_the_hub():
        shutil.move(str(ckpts), str(moved))  # the user files ckpts into the hub...
        ckpts.symlink_to(moved)  # ...and links it back for Wan2GP

    returncode, out, part = download_while(world, file_ckpts_into_the_hub)
    assert returncode == 1
    assert "would be written inside the hub" in out and "was not placed" in out
    assert not (moved / BIG).exists()
    assert not (moved / ".wandown" / part.name).exists()


# -- bind mounts: the same folder at two paths that no link relates -----------------------------


@contextlib.contextmanager
def bind_mount(source: Path, target: Path):
    """Bind-mount source at target for the block, or skip where this machine does not allow it."""
    source.mkdir(parents=True, exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def test_a_hub_folder_bind_mounted_as_ckpts_is_never_written(world):
    inside = world.hub_dir / "wan-ckpts"
    ckpts = world.path("ckpts")
    if ckpts.exists():
        shutil.rmtree(ckpts)
    with bind_mount(inside, ckpts):
        dry = world.run("--download", "missing", "--dry-run")
        real = world.run("--download", "missing")
        written = sorted(p.name for p in inside.rglob("*"))
    assert "a folder of the hub mounted there" in dry.stdout + dry.stderr
    assert real.returncode == 1
    assert "would be written inside the hub" in real.stdout
    assert written == []


def test_dedupe_never_takes_a_bind_mount_of_ckpts_in_the_hub_for_a_hub_copy(world):
    assert world.run("--download", BIG).returncode == 0
    ckpts = world.path("ckpts")
    original = ckpts / BIG
    copy = ckpts / "copyB.safetensors"
    shutil.copyfile(original, copy)
    with bind_mount(ckpts, world.hub_dir / "wan-ckpts"):
        result = world.run("--dedupe", "--yes")
    assert "reclaimed" not in result.stdout or "0 B reclaimed" in result.stdout, result.stdout
    for path in (original, copy):
        assert not path.is_symlink(), f"{path} became a link into a bind mount of its own folder"
        assert (
            hashlib.sha256(path.read_bytes()).hexdigest()
            == hashlib.sha256(world.served_file(BIG).read_bytes()).hexdigest()
        )


@pytest.mark.slow
@pytest.mark.parametrize("thing", ["dangling link", "folder"])
def test_a_verified_download_is_kept_when_something_else_appears_at_its_place(world, thing):
    dest = world.path(f"ckpts/{BIG}")

    def put_something_there():
        if thing == "folder":
            dest.mkdir()
        else:
            dest.symlink_to("/nonexistent/wandown-test")

    returncode, out, part = download_while(world, put_something_there)
    assert returncode == 1
    assert f"the verified download stays in {part}" in out
    assert part.read_bytes() == world.served_file(BIG).read_bytes()


def test_a_file_linked_by_an_earlier_run_names_its_hub_file(world, monkeypatch):
    hub_copy = world.hub_dir / "kept" / "renamed.bin"
    hub_copy.parent.mkdir()
    hub_copy.write_bytes(world.served_file(BIG).read_bytes())
    assert world.run("--download", BIG).returncode == 0
    assert world.path(f"ckpts/{BIG}").is_symlink()
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
    session = Session(
        load_config(world.workdir / "config.json"), hub_settings(), RunOptions(), print
    )
    session.load()
    view = session.loaded.views()[f"ckpts/{BIG}"]
    assert view.status is Status.LINKED
    assert view.link_source is not None
    assert Path(view.link_source).name == "renamed.bin"  # the hub file, not the link itself
    assert Path(view.link_source).resolve() == hub_copy


def test_a_hub_given_as_a_file_is_named_as_such(world):
    not_a_folder = world.workdir / "hub.txt"
    not_a_folder.write_text("a file, not a folder")
    result = world.run("--list", "--hub-dir", str(not_a_folder))
    assert f"hub folder {not_a_folder} is not a folder; hub features are off" in result.stderr
