"""Faults found in review: retries without a size, damaged state, prompt stop in every phase."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
import socket
import threading
import time

import pytest
import urllib3

from tests.test_engine_support import (
    KIB,
    MIB,
    REPO,
    cdn_gets,
    check_events,
    hosted_job,
    payload,
    run_job,
    small_engine,
    wait_until,
)
from wandown.engine import DownloadJob, PartialPaths, hashing
from wandown.engine.fetch import Resolver
from wandown.engine.partial import FileLock, WorkingFolder, load_state
from wandown.localhub import Fault

NAME = "model.safetensors"


def engine_threads() -> list[threading.Thread]:
    """The engine's own threads still alive (lanes, connections, hashers)."""
    return [t for t in threading.enumerate() if t.name.startswith("wandown-") and t.is_alive()]


@pytest.fixture
def sizeless(monkeypatch):
    """Make every Hub answer leave the size out, as for a file the Hub gives no length for."""
    real = Resolver.resolve

    def resolve(self):
        link = real(self)
        return self._remember(dataclasses.replace(link, size=None))

    monkeypatch.setattr(Resolver, "resolve", resolve)


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=503, times=2, server="cdn"),
        Fault(status=429, retry_after=0, times=1, server="cdn"),
        Fault(drop_after=100 * KIB, times=2, server="cdn"),
        Fault(short_body=50 * KIB, times=1, server="cdn"),
    ],
    ids=["503", "429", "reset", "short-body"],
)
def test_a_file_of_unknown_size_is_retried_too(localhub, tmp_path, sizeless, fault):
    data = payload(300 * KIB, seed=40)
    job = hosted_job(localhub, NAME, tmp_path, data, fault, known=False)
    assert job.size is None
    result, events = run_job(job)
    check_events(events)
    assert result.state == "complete", result.message
    assert len(cdn_gets(localhub)) == 1 + fault.times  # each failed try was tried again
    assert job.dest.read_bytes() == data


def test_a_file_of_unknown_size_gives_up_clearly(localhub, tmp_path, sizeless):
    data = payload(100 * KIB, seed=41)
    fault = Fault(status=503, server="cdn")
    job = hosted_job(localhub, NAME, tmp_path, data, fault, known=False)
    result, _ = run_job(job, retries=2)
    assert result.state == "failed"
    assert "giving up after 2 retries" in result.message and "503" in result.message
    assert not job.dest.exists()


DAMAGED = {
    "not-utf8": b"\xff\xfe garbage",
    "not-json": b"{ half a state",
    "a-list": b"[1, 2]",
    "missing-keys": b'{"version": 1}',
    "bad-ranges": b'{"version": 1, "url": "u", "size": 10, "done": [[0]]}',
    "past-the-end": json.dumps(
        {
            "version": 1,
            "url": "u",
            "size": 300 * KIB,
            "sha256": None,
            "blob_sha1": None,
            "done": [[0, 10**12]],
        }
    ).encode(),
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_state_reads_as_start_over(tmp_path, content):
    path = tmp_path / "x.state"
    path.write_bytes(content)
    assert load_state(path) is None


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_state_file_starts_the_download_over(localhub, tmp_path, content):
    data = payload(300 * KIB, seed=42)
    job = hosted_job(localhub, NAME, tmp_path, data)
    paths = PartialPaths.for_dest(job.dest)
    paths.folder.mkdir()
    paths.part.write_bytes(b"junk" * 1000)
    paths.state.write_bytes(content)
    result, _ = run_job(job)
    assert result.state == "complete", result.message
    assert job.dest.read_bytes() == data
    assert not paths.folder.exists()


@pytest.fixture
def silent_server():
    """A server on loopback that accepts connections, reads requests and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    requested = threading.Event()

    def serve():
        while True:
            try:
                connection, _ = server.accept()
                accepted.append(connection)
                if connection.recv(4096):
                    requested.set()
            except OSError:  # shut down by the teardown below
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], requested
    for sock in [server, *accepted]:  # shutdown, unlike close, wakes a blocked accept/recv
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    thread.join(5)
    for sock in [server, *accepted]:
        sock.close()


@pytest.mark.parametrize("how", ["cancel", "stop"])
def test_a_hub_that_never_answers_does_not_hold_up_a_stop(tmp_path, silent_server, how):
    port, requested = silent_server
    job = DownloadJob(
        "x", f"http://127.0.0.1:{port}/{REPO}/resolve/main/{NAME}", tmp_path / NAME, 10, None
    )
    engine = small_engine(timeout=30.0)
    try:
        engine.submit(job)
        assert requested.wait(10)
        time.sleep(0.1)  # now blocked reading the answer to its HEAD
        engine.cancel(job.key) if how == "cancel" else engine.stop()
        result = engine.wait(timeout=3).get(job.key)
    finally:
        engine.close()
    assert result is not None and result.state == "cancelled"
    assert engine_threads() == []


class SlowHash:
    """A hash that takes a while per block, like re-reading a 20 GB prefix from a slow disk."""

    def __init__(self, real, held: threading.Event, released: threading.Event):
        self.real = real
        # Once held, no block is hashed until released, so a cancel always lands mid-hash.
        self.held = held
        self.released = released

    def update(self, block):
        time.sleep(0.3)
        if self.held.is_set():
            self.released.wait(timeout=30)
        self.real.update(block)

    def hexdigest(self):
        return self.real.hexdigest()


def test_cancel_while_verifying_stops_the_hash_and_keeps_the_partial(
    localhub, tmp_path, monkeypatch
):
    data = payload(6 * MIB, seed=43)
    job = hosted_job(localhub, NAME, tmp_path, data)
    real_new_hash = hashing.new_hash
    held, released = threading.Event(), threading.Event()

    def slow_hash(kind, size):
        return SlowHash(real_new_hash(kind, size), held, released)

    monkeypatch.setattr(hashing, "new_hash", slow_hash)
    engine = small_engine(chunk_size=1 * MIB)
    try:
        engine.submit(job)
        while (event := engine.events.get(timeout=30)).state != "verifying":
            assert not event.final, event.message
        held.set()
        engine.cancel(job.key)
        released.set()
        result = engine.wait(timeout=10).get(job.key)
    finally:
        released.set()
        engine.close()
    assert result is not None and result.state == "cancelled"
    assert engine_threads() == []
    paths = PartialPaths.for_dest(job.dest)
    assert paths.part.exists() and paths.state.exists()
    assert not job.dest.exists()
    monkeypatch.setattr(hashing, "new_hash", real_new_hash)
    result, _ = run_job(job)  # the kept partial resumes to a verified file
    assert result.state == "complete"
    assert job.dest.read_bytes() == data


class SlowFinalQueue(queue.Queue):
    """An event queue whose publisher lingers after putting a final event."""

    def put(self, item, block=True, timeout=None):
        super().put(item, block, timeout)
        if item.final:
            time.sleep(0.3)


def test_a_file_can_be_queued_again_as_soon_as_its_final_event_is_out(localhub, tmp_path):
    data = payload(1 * MIB, seed=44)
    job = hosted_job(localhub, NAME, tmp_path, data)
    with small_engine(events=SlowFinalQueue(), limit_kb=500) as engine:
        engine.submit(job)
        wait_until(lambda: engine.events.get(timeout=10).state == "downloading")
        engine.cancel(job.key)
        wait_until(lambda: engine.events.get(timeout=10).final)
        engine.set_limit(None)
        engine.submit(job)  # at once, as a view restarting on the 'cancelled' event does
        result = engine.wait(timeout=30)[job.key]
        time.sleep(0.5)  # the first run's worker has recorded its result by now
        assert engine.wait(timeout=0)[job.key].state == "complete"
    assert result.state == "complete", result.message
    assert job.dest.read_bytes() == data


def refuse_connection_threads(monkeypatch, allowed: int) -> list[threading.Thread]:
    """Let only the first `allowed` connection threads start; return those that did."""
    real_start = threading.Thread.start
    started: list[threading.Thread] = []

    def start(thread):
        if thread.name.startswith("wandown-conn-"):
            if len(started) >= allowed:
                raise RuntimeError("can't start new thread")
            started.append(thread)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    return started


def test_a_connection_thread_that_cannot_start_leaves_the_file_to_the_others(
    localhub, tmp_path, monkeypatch
):
    # Extra connections are an optimisation: a system out of threads gets the file anyway.
    data = payload(1 * MIB, seed=45)
    job = hosted_job(localhub, NAME, tmp_path, data)
    started = refuse_connection_threads(monkeypatch, allowed=1)
    result, _ = run_job(job, limit_kb=2000)
    assert result.state == "complete", result.message
    assert len(started) == 1
    assert job.dest.read_bytes() == data


def test_no_connection_thread_at_all_fails_the_file(localhub, tmp_path, monkeypatch):
    data = payload(1 * MIB, seed=45)
    job = hosted_job(localhub, NAME, tmp_path, data)
    refuse_connection_threads(monkeypatch, allowed=0)
    result, _ = run_job(job, limit_kb=200)
    assert result.state == "failed"
    assert "cannot start a download thread" in result.message
    assert not job.dest.exists()


def test_close_is_bounded_even_when_a_request_cannot_be_cut(tmp_path, silent_server):
    port, requested = silent_server
    job = DownloadJob(
        "x", f"http://127.0.0.1:{port}/{REPO}/resolve/main/{NAME}", tmp_path / NAME, 10, None
    )
    # A caller's own pool: its connections are not watched, so the HEAD waits for its timeout.
    engine = small_engine(timeout=30.0, pool=urllib3.PoolManager())
    engine.submit(job)
    assert requested.wait(10)
    engine.close(timeout=0.2)
    assert engine_threads() != []  # close() returned although the lookup still waits
    engine.pool.clear()


def test_a_finishing_neighbour_cannot_remove_the_hidden_folder_in_use(
    localhub, tmp_path, monkeypatch
):
    data = payload(200 * KIB, seed=46)
    job = hosted_job(localhub, NAME, tmp_path, data)
    real_acquire = FileLock.try_acquire
    still_there = []

    def try_acquire(lock):
        # What another file of this folder does as it completes, between our mkdir and open.
        neighbour = WorkingFolder(lock.path.parent)
        neighbour.enter()
        neighbour.leave(tidy=True)
        still_there.append(lock.path.parent.is_dir())
        return real_acquire(lock)

    monkeypatch.setattr(FileLock, "try_acquire", try_acquire)
    result, _ = run_job(job)
    assert still_there == [True]
    assert result.state == "complete", result.message
    assert job.dest.read_bytes() == data
    assert not PartialPaths.for_dest(job.dest).folder.exists()  # the last one out tidies
