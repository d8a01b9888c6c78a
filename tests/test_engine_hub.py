"""The engine against a real LocalHub on loopback: ranges, resume, limits, locks, cancel, auth."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_engine_support import (
    KIB,
    MIB,
    REPO,
    cdn_gets,
    check_events,
    drain,
    job_for,
    payload,
    put_file,
    requested_bytes,
    small_engine,
    wait_until,
)
from wandown.engine import DownloadJob, PartialPaths
from wandown.engine.partial import PartialState, save_state
from wandown.engine.ranges import RangeSet

ROOT = Path(__file__).resolve().parent.parent


def state_done(dest: Path) -> int:
    try:
        value = json.loads(PartialPaths.for_dest(dest).state.read_text())
    except (FileNotFoundError, ValueError):
        return 0
    return sum(b - a for a, b in value["done"])


def test_lfs_and_small_files_arrive_verified_over_many_ranges(localhub, tmp_path):
    big = payload(2 * MIB + 12345, seed=1)
    small = b'{"dim": 5120}\n'
    put_file(localhub, "model.safetensors", big)
    put_file(localhub, "config.json", small)
    dest = tmp_path / "models"
    with small_engine() as engine:
        engine.submit(job_for(localhub, "model.safetensors", dest, big))
        engine.submit(job_for(localhub, "config.json", dest, small))
        results = engine.wait(timeout=30)
        events = drain(engine.events)
    assert {k: e.state for k, e in results.items()} == {
        "model.safetensors": "complete",
        "config.json": "complete",
    }
    assert (dest / "model.safetensors").read_bytes() == big
    assert (dest / "config.json").read_bytes() == small
    assert sorted(os.listdir(dest)) == ["config.json", "model.safetensors"]  # no .wandown left
    by_key = check_events(events)
    assert [e.state for e in by_key["config.json"]][-2:] == ["verifying", "complete"]
    ranges = {r.headers.get("range") for r in cdn_gets(localhub)}
    assert None not in ranges
    assert len(ranges) >= 2 * MIB // (64 * KIB)  # many ranges, not one stream
    # The small file is one plain GET to the Hub itself.
    small_gets = [r for r in localhub.requests if r.method == "GET" and "config.json" in r.path]
    assert len(small_gets) == 1
    assert small_gets[0].server == "hub"
    assert "range" not in small_gets[0].headers
    assert requested_bytes(localhub, "model.safetensors", len(big)) < len(big) * 1.2


def test_unknown_size_and_hash_are_taken_from_the_hub(localhub, tmp_path):
    big = payload(600 * KIB, seed=2)
    put_file(localhub, "model.safetensors", big)
    put_file(localhub, "README.md", b"# hi\n")
    with small_engine() as engine:
        engine.submit(job_for(localhub, "model.safetensors", tmp_path, big, known=False))
        engine.submit(job_for(localhub, "README.md", tmp_path, known=False))
        results = engine.wait(timeout=30)
    assert {e.state for e in results.values()} == {"complete"}
    assert (tmp_path / "model.safetensors").read_bytes() == big


def test_authorization_goes_to_the_hub_but_never_to_the_cdn(localhub, tmp_path):
    big = payload(300 * KIB, seed=3)
    put_file(localhub, "model.safetensors", big)
    careless = lambda url: {"Authorization": "Bearer hf_secret"}  # noqa: E731
    with small_engine(headers_for=careless) as engine:
        engine.submit(job_for(localhub, "model.safetensors", tmp_path, big))
        assert engine.wait(timeout=30)["model.safetensors"].state == "complete"
    hub_requests = [r for r in localhub.requests if r.server == "hub"]
    cdn_requests = [r for r in localhub.requests if r.server == "cdn"]
    assert hub_requests and cdn_requests
    assert all(r.headers.get("authorization") == "Bearer hf_secret" for r in hub_requests)
    assert not any("authorization" in r.headers for r in cdn_requests)


CHILD = """
import sys
from pathlib import Path
from wandown.engine import DownloadJob, Engine
url, dest, size, sha, limit = sys.argv[1:6]
engine = Engine(connections=4, chunk_size=64 * 1024, min_chunk=16 * 1024, small_file=128 * 1024,
                read_size=16 * 1024, limit_kb=int(limit), state_every=0.05, timeout=2.0)
engine.submit(DownloadJob("m", url, Path(dest), int(size), sha))
print(engine.wait(), flush=True)
"""


def start_child(job: DownloadJob, limit_kb: int) -> subprocess.Popen:
    """Run another wandown process downloading job at limit_kb."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            job.url,
            str(job.dest),
            str(job.size),
            job.sha256,
            str(limit_kb),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )


def resume_to_complete(localhub, job: DownloadJob, data: bytes) -> int:
    """Finish job with a fresh engine, check the file, and return the bytes it asked for."""
    mark = len(localhub.requests)
    with small_engine() as engine:
        engine.submit(job)
        assert engine.wait(timeout=30)[job.key].state == "complete"
    assert job.dest.read_bytes() == data
    return requested_bytes(localhub, job.dest.name, len(data), since=mark)


@pytest.mark.slow
def test_a_killed_download_resumes_and_refetches_only_what_was_in_flight(localhub, tmp_path):
    data = payload(4 * MIB, seed=4)
    put_file(localhub, "model.safetensors", data)
    job = job_for(localhub, "model.safetensors", tmp_path, data)
    child = start_child(job, limit_kb=250)  # slow enough to be caught mid-file
    try:
        wait_until(lambda: state_done(job.dest) >= 1 * MIB or child.poll() is not None)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not job.dest.exists()
    done_at_kill = state_done(job.dest)
    assert 1 * MIB <= done_at_kill < len(data)
    before = requested_bytes(localhub, "model.safetensors", len(data))
    after = resume_to_complete(localhub, job, data)
    in_flight = 4 * 64 * KIB  # connections x chunk
    assert after <= len(data) - done_at_kill + in_flight
    assert before + after - len(data) <= 2 * in_flight


def test_a_partial_of_another_remote_version_is_discarded(localhub, tmp_path):
    data = payload(1 * MIB, seed=5)
    put_file(localhub, "model.safetensors", data)
    job = job_for(localhub, "model.safetensors", tmp_path, data)
    paths = PartialPaths.for_dest(job.dest)
    paths.folder.mkdir(parents=True)
    paths.part.write_bytes(b"\xff" * len(data))
    old = PartialState(job.url, len(data), "0" * 64, None, done=RangeSet([(0, len(data) // 2)]))
    save_state(paths.state, old)
    with small_engine() as engine:
        engine.submit(job)
        result = engine.wait(timeout=30)[job.key]
        events = drain(engine.events)
    assert result.state == "complete"
    assert job.dest.read_bytes() == data
    assert requested_bytes(localhub, "model.safetensors", len(data)) >= len(data)
    assert not any("mismatch" in e.message for e in events)


def test_a_job_that_disagrees_with_the_hub_fails_as_changed(localhub, tmp_path):
    data = payload(300 * KIB, seed=6)
    put_file(localhub, "model.safetensors", data)
    job = job_for(localhub, "model.safetensors", tmp_path, data)
    stale = DownloadJob(job.key, job.url, job.dest, job.size, "ab" * 32)
    with small_engine() as engine:
        engine.submit(stale)
        result = engine.wait(timeout=30)[job.key]
    assert result.state == "failed"
    assert "another version" in result.message
    assert not job.dest.exists()


def test_the_shared_limit_bounds_the_bytes_over_time(localhub, tmp_path):
    rate = 512 * KIB  # limit_kb=512
    data = payload(512 * KIB, seed=7)
    put_file(localhub, "a.safetensors", data)
    put_file(localhub, "b.safetensors", data)
    start = time.monotonic()
    with small_engine(limit_kb=512) as engine:
        engine.submit(job_for(localhub, "a.safetensors", tmp_path, data))
        engine.submit(job_for(localhub, "b.safetensors", tmp_path, data))
        seen = []
        started_before_any_finished = set()
        done_by_key: dict[str, int] = {}
        while len(seen) < 2:
            event = engine.events.get(timeout=30)
            done_by_key[event.key] = event.done
            done_total = sum(done_by_key.values())
            if event.final:
                seen.append(event)
            elif event.state == "downloading" and not seen:
                started_before_any_finished.add(event.key)
            # Two files share one bucket: their sum never runs ahead of rate * time + burst.
            elapsed = time.monotonic() - start
            assert done_total <= rate * elapsed + rate / 5 + 2 * 16 * KIB
    elapsed = time.monotonic() - start
    assert all(e.state == "complete" for e in seen)
    assert started_before_any_finished == {"a.safetensors", "b.safetensors"}  # jobs=2 at once
    assert elapsed >= (2 * len(data) - rate / 5) / rate * 0.97


def test_a_new_limit_reaches_connections_that_are_waiting(localhub, tmp_path):
    data = payload(2 * MIB, seed=8)
    put_file(localhub, "model.safetensors", data)
    with small_engine(limit_kb=32) as engine:  # would take a minute
        engine.submit(job_for(localhub, "model.safetensors", tmp_path, data))
        time.sleep(0.3)
        engine.set_limit(None)
        result = engine.wait(timeout=20)["model.safetensors"]
    assert result.state == "complete"


def test_cancel_is_prompt_and_keeps_the_partial_for_a_resume(localhub, tmp_path):
    data = payload(3 * MIB, seed=9)
    put_file(localhub, "model.safetensors", data)
    job = job_for(localhub, "model.safetensors", tmp_path, data)
    with small_engine(limit_kb=200) as engine:  # 15 s for the whole file
        engine.submit(job)
        wait_until(lambda: state_done(job.dest) >= 256 * KIB)
        asked = time.monotonic()
        engine.cancel(job.key)
        result = engine.wait(timeout=10)[job.key]
        took = time.monotonic() - asked
        events = drain(engine.events)
    assert result.state == "cancelled"
    assert took < 5.0  # not the rest of the download: a generous bound for a loaded machine
    check_events(events)
    paths = PartialPaths.for_dest(job.dest)
    assert paths.part.exists() and paths.state.exists()
    assert not job.dest.exists()
    kept = state_done(job.dest)
    after = resume_to_complete(localhub, job, data)
    assert after <= len(data) - kept + 4 * 64 * KIB


@pytest.mark.slow
def test_two_engines_on_one_file_take_turns(localhub, tmp_path):
    data = payload(2 * MIB, seed=10)
    put_file(localhub, "model.safetensors", data)
    job = job_for(localhub, "model.safetensors", tmp_path / "models", data)
    with small_engine(limit_kb=500) as first, small_engine() as second:  # 4 s for the first
        first.submit(job)
        wait_until(lambda: state_done(job.dest) > 0)
        second.submit(job)
        second_result = second.wait(timeout=30)[job.key]
        first_result = first.wait(timeout=30)[job.key]
        second_events = drain(second.events)
    assert first_result.state == "complete"
    assert second_result.state == "complete"
    assert "busy" in [e.state for e in second_events]
    assert "another wandown process" in second_result.message
    assert job.dest.read_bytes() == data
    assert os.listdir(tmp_path / "models") == ["model.safetensors"]
    assert requested_bytes(localhub, "model.safetensors", len(data)) < len(data) * 1.2


def test_stop_ends_everything_promptly_even_mid_stall(localhub, tmp_path):
    from wandown.localhub import Fault

    data = payload(1 * MIB, seed=11)
    put_file(localhub, "model.safetensors", data)
    put_file(localhub, "other.safetensors", data)
    put_file(localhub, "third.safetensors", data)
    localhub.set_fault(REPO, "model.safetensors", Fault(stall_after=1000, stall_seconds=20))
    with small_engine(timeout=30.0, jobs=1) as engine:
        engine.submit(job_for(localhub, "model.safetensors", tmp_path, data))
        engine.submit(job_for(localhub, "other.safetensors", tmp_path, data))
        wait_until(lambda: len(cdn_gets(localhub)) >= 1)
        time.sleep(0.2)
        asked = time.monotonic()
        engine.stop()
        results = engine.wait(timeout=10)
        took = time.monotonic() - asked
        with pytest.raises(RuntimeError):
            engine.submit(job_for(localhub, "third.safetensors", tmp_path, data))
    assert {e.state for e in results.values()} == {"cancelled"}
    assert took < 5.0  # not the 20 s stall, nor the 30 s read timeout
    assert not (tmp_path / "model.safetensors").exists()


def test_sha256_helper_matches_what_the_engine_verified(localhub, tmp_path):
    data = payload(200 * KIB, seed=12)
    put_file(localhub, "weights.bin", data)
    job = job_for(localhub, "weights.bin", tmp_path, data)
    assert job.sha256 == hashlib.sha256(data).hexdigest()
    with small_engine(connections=1) as engine:
        engine.submit(job)
        assert engine.wait(timeout=30)[job.key].state == "complete"


def test_an_empty_file_is_fetched_and_verified(localhub, tmp_path):
    put_file(localhub, "empty.txt", b"")
    with small_engine() as engine:
        engine.submit(job_for(localhub, "empty.txt", tmp_path, b""))
        result = engine.wait(timeout=30)["empty.txt"]
    assert result.state == "complete", result.message
    assert (tmp_path / "empty.txt").read_bytes() == b""


def test_a_key_cannot_be_queued_twice_at_once(localhub, tmp_path):
    data = payload(300 * KIB, seed=13)
    put_file(localhub, "model.safetensors", data)
    job = job_for(localhub, "model.safetensors", tmp_path, data)
    with small_engine(limit_kb=100) as engine:
        engine.submit(job)
        with pytest.raises(ValueError, match="already queued"):
            engine.submit(job)
        engine.cancel(job.key)
        assert engine.wait(timeout=5)[job.key].state == "cancelled"
        assert engine.limit_kb == 100
        engine.set_limit(0)
        assert engine.limit_kb is None
        engine.submit(job)  # a finished key may be queued again: it resumes
        assert engine.wait(timeout=30)[job.key].state == "complete"
    assert job.dest.read_bytes() == data


@pytest.mark.slow
def test_a_file_another_process_is_fetching_waits_as_busy(localhub, tmp_path):
    data = payload(1 * MIB, seed=14)
    put_file(localhub, "model.safetensors", data)
    job = job_for(localhub, "model.safetensors", tmp_path / "models", data)
    child = start_child(job, limit_kb=250)  # 4 s: long enough to be caught at it
    try:
        wait_until(lambda: state_done(job.dest) > 0)
        with small_engine() as engine:
            engine.submit(job)
            result = engine.wait(timeout=30)[job.key]
            states = [e.state for e in drain(engine.events)]
        assert child.wait(timeout=30) == 0
    finally:
        child.kill()
        child.wait()
    assert "busy" in states
    assert result.state == "complete"
    assert "another wandown process" in result.message
    assert job.dest.read_bytes() == data
    assert os.listdir(tmp_path / "models") == ["model.safetensors"]
