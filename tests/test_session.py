"""The session as the interface drives it: start, cancel, offline, in one process."""

from __future__ import annotations

import threading

import pytest

from tests.world import BIG, build_world, hold_matching, session_for
from wandown.config import load_config
from wandown.remote import hub_settings
from wandown.session import RunOptions, Session
from wandown.status import Status


@pytest.fixture
def world(tmp_path, localhub, monkeypatch):
    world = build_world(tmp_path, localhub)
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
    return world


def test_a_file_cancelled_while_the_hub_is_checked_is_never_downloaded(world, localhub):
    decoy = world.hub_dir / "same-size-other-bytes.bin"
    decoy.write_bytes(b"\0" * world.served_file(BIG).stat().st_size)
    session = session_for(world)
    cancelled = threading.Event()
    hashing = hold_matching(session, cancelled, 5)
    dest = f"ckpts/{BIG}"
    try:
        session.start([dest])
        assert hashing.wait(5)
        session.cancel(dest)
        cancelled.set()
        assert session.wait(10)
        view = session.store.snapshot().files[dest]
        assert view.status == Status.CANCELLED
        assert not world.path(dest).exists()
        assert not [r for r in localhub.requests if r.server == "cdn"]
    finally:
        session.shutdown()


def test_offline_never_downloads_even_with_metadata(world, localhub):
    online = session_for(world)
    online.shutdown()  # its metadata is now cached
    localhub.clear_requests()
    session = session_for(world, offline=True)
    dest = f"ckpts/{BIG}"
    try:
        assert session.loaded.remote[dest].size == world.served_file(BIG).stat().st_size
        session.start([dest])
        assert session.wait(10)
        view = session.store.snapshot().files[dest]
        assert view.status == Status.UNKNOWN
        assert "needs the network" in view.message
    finally:
        session.shutdown()
    assert localhub.requests == []
    assert not world.path(dest).exists()


def test_a_hub_that_holds_the_wan2gp_folder_is_not_used(world):
    config = load_config(world.workdir / "config.json")
    config.hub_directories = (world.root.parent,)  # the Wan2GP folder is inside this "hub"
    notices = []
    session = Session(config, hub_settings(), RunOptions(), notices.append)
    try:
        session.load()
        assert session.hub is None
        assert any("overlap" in notice for notice in notices)
    finally:
        session.shutdown()
