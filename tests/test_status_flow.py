"""One status vocabulary, and load facts that flow one way: frozen records, a Loaded value swapped
whole, never a record changed under a reader."""

from __future__ import annotations

import dataclasses
import json
import os
import re

import pytest

from tests.world import BIG, LORA, SMALL, build_world, session_for
from wandown.catalog import FileRecord
from wandown.engine import events
from wandown.status import PRESENT, Status
from wandown.tui.rows import build_rows


@pytest.fixture
def world(tmp_path, localhub, monkeypatch):
    world = build_world(tmp_path, localhub)
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
    return world


def dests_by_name(world):
    """Map the test model's own file names to their destinations (core files are left out)."""
    listed = json.loads(world.run("--list", "--json").stdout)
    return {e["dest"].rsplit("/", 1)[-1]: e["dest"] for e in listed if e["role"] != "core"}


@pytest.mark.slow
def test_every_view_says_each_status_one_way(world):
    dests = dests_by_name(world)
    small, lora, big = world.path(dests[SMALL]), world.path(dests[LORA]), dests[BIG]
    small.parent.mkdir(parents=True, exist_ok=True)
    small.write_bytes(world.served_file(SMALL).read_bytes())
    lora.parent.mkdir(parents=True, exist_ok=True)
    kept = world.hub_dir / "kept-lora.bin"
    kept.write_bytes(world.served_file(LORA).read_bytes())
    lora.symlink_to(kept)

    listed = {e["dest"]: e["status"] for e in json.loads(world.run("--list", "--json").stdout)}
    assert (listed[dests[SMALL]], listed[dests[LORA]], listed[big]) == (
        "exists",
        "linked",
        "missing",
    )
    assert all(type(value) is str for value in listed.values())
    table = world.run("--list").stdout.splitlines()
    for name, label in ((SMALL, "Exists"), (LORA, "Linked"), (BIG, "Missing")):
        folder = dests[name].rsplit("/", 1)[0]
        row = next(line for line in table if f"  {name}  " in line and line.endswith(f"{folder}/"))
        assert f"  {label}  " in row, row
    assert "  Status  " in table[0]

    result = world.run("--download", BIG)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"Downloading {big}") for line in lines), lines
    assert any(line.startswith(f"Complete    {big}") for line in lines), lines
    assert "done: 1 file: 1 complete" in lines
    listed = {e["dest"]: e["status"] for e in json.loads(world.run("--list", "--json").stdout)}
    assert listed[big] == "exists"


def test_the_engines_states_are_statuses():
    for engine_state in events.STATES:
        status = Status(engine_state)
        assert status.value == engine_state
        if status is not Status.WAITING_DISK:
            assert status.label == engine_state.capitalize()
    assert Status.WAITING_DISK.label == "Waiting for disk space"
    assert Status.WAITING_DISK.active and not Status.WAITING_DISK.present
    assert {Status(s) for s in events.FINAL_STATES} & PRESENT == {Status.COMPLETE}
    assert f"{Status.MISSING}" == "missing" and str(Status.FAILED) == "failed"


def test_a_record_is_frozen_and_holds_no_facts_of_a_load():
    record = FileRecord(
        "ckpts/a.bin",
        "https://x/o/r/resolve/main/a.bin",
        "o/r",
        "main",
        "a.bin",
        "main",
        needed_by={"m"},
    )
    assert record.needed_by == frozenset({"m"}) and isinstance(record.needed_by, frozenset)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.role = "vae"  # type: ignore[misc]
    fields = {f.name for f in dataclasses.fields(FileRecord)}
    assert not fields & {"status", "size", "sha256", "blob_sha1", "found_at"}


def test_a_download_publishes_a_new_loaded_state_and_changes_nothing_a_reader_holds(world):
    session = session_for(world)
    dest = next(r.dest for r in session.loaded.catalog.records if r.file_name == BIG)
    before = session.loaded
    records = before.catalog.records
    frozen = [dataclasses.astuple(r) for r in records]
    try:
        session.start([dest])
        assert session.wait(60)
        after = session.loaded
    finally:
        session.shutdown()
    assert session.store.snapshot().files[dest].status is Status.COMPLETE
    assert before.status(dest) is Status.MISSING  # what a reader took stays what it was
    assert after is not before and after.status(dest) is Status.EXISTS
    assert after.catalog is before.catalog and after.catalog.records is records
    assert [dataclasses.astuple(r) for r in records] == frozen
    assert after.remote[dest].size == world.served_file(BIG).stat().st_size


def test_the_dry_run_and_the_header_ask_the_hubs_own_matching(world):
    dests = dests_by_name(world)
    big = dests[BIG]
    copy = world.hub_dir / "renamed.bin"
    copy.write_bytes(world.served_file(BIG).read_bytes())
    first = world.run("--download", BIG)  # hashes the hub copy, remembers its digests, links it
    assert first.returncode == 0 and f"-> {copy}" in first.stdout, first.stdout
    os.unlink(world.path(big))

    dry = world.run("--download", BIG, "--dry-run")
    assert dry.stdout.splitlines() == [f"{big}: link from {copy}"]
    session = session_for(world)
    try:
        assert session.loaded.linkable() == {big: copy}
        assert session.store.snapshot().header.hub_links == 1
        wanted = session.loaded.wanted(big)
        assert session.hub.proven([wanted]) == {wanted: copy}
    finally:
        session.shutdown()


def test_notices_the_hub_index_says_later_follow_the_session_to_the_status_line(world):
    notices = []
    session = session_for(world, notices)
    try:
        session.hub.notice("before the interface")
        session.notices_to_status_line()
        session.hub.notice("under curses")
    finally:
        session.shutdown()
    assert "before the interface" in notices and "under curses" not in notices
    assert "under curses" in session.store.snapshot().notices


def test_list_and_the_interface_name_who_needs_a_file_with_one_rule(world):
    table = world.run("--list", "--all-variants").stdout.splitlines()[1:-1]
    listed = {}
    for line in table:
        cells = re.split(r" {2,}", line.strip())
        listed[cells[-1] + cells[-4]] = cells[-5]
    session = session_for(world)
    try:
        snapshot = session.store.snapshot()
    finally:
        session.shutdown()
    shown = {row.dest: row.config for row in build_rows(snapshot, show_all=True)}
    assert len(shown) == len(listed) > 5
    for dest, config in shown.items():
        assert listed[dest] == config, dest
    core = [v.dest for v in snapshot.files.values() if v.role == "core"]
    assert core and all(listed[dest] == "all models" for dest in core)
