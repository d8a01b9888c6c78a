"""Every fault ends in a verified file or a clear failure: never a hang, never a wrong file."""

from __future__ import annotations

import errno
import hashlib
import os
import time

import pytest

from tests.test_engine_support import (
    KIB,
    MIB,
    cdn_gets,
    check_events,
    hosted_job,
    job_for,
    payload,
    put_file,
    run_job,
)
from wandown.engine import PartialPaths
from wandown.localhub import Fault

NAME = "model.safetensors"


def fetch(localhub, tmp_path, data: bytes, fault: Fault | None = None, name: str = NAME, **engine):
    """Download name once with fault armed; return (final event, all events)."""
    job = hosted_job(localhub, name, tmp_path / "models", data, fault)
    result, events = run_job(job, within=60, **engine)
    check_events(events)
    return result, events


def assert_verified(tmp_path, data: bytes, name: str = NAME) -> None:
    assert (tmp_path / "models" / name).read_bytes() == data


def assert_nothing_at_dest(tmp_path, name: str = NAME) -> None:
    assert not (tmp_path / "models" / name).exists()


@pytest.mark.parametrize(
    "fault",
    [
        Fault(drop_after=100 * KIB, times=3, server="cdn"),
        Fault(short_body=50 * KIB, times=3, server="cdn"),
        Fault(stall_after=10 * KIB, stall_seconds=5, times=2, server="cdn"),
        Fault(status=503, times=3),
        Fault(status=500, times=2, server="cdn"),
    ],
    ids=["reset", "short-body", "stall", "503", "500-cdn"],
)
def test_transient_faults_are_retried_to_a_verified_file(localhub, tmp_path, fault):
    data = payload(1 * MIB, seed=20)
    result, _ = fetch(localhub, tmp_path, data, fault, timeout=0.5)
    assert result.state == "complete", result.message
    assert_verified(tmp_path, data)


def test_a_small_file_survives_a_reset_too(localhub, tmp_path):
    data = payload(100 * KIB, seed=21)
    fault = Fault(drop_after=30 * KIB, times=2)
    result, _ = fetch(localhub, tmp_path, data, fault, name="vocab.txt")
    assert result.state == "complete", result.message
    assert_verified(tmp_path, data, "vocab.txt")


def test_429_waits_as_long_as_retry_after_says(localhub, tmp_path):
    data = payload(300 * KIB, seed=22)
    started = time.monotonic()
    result, _ = fetch(localhub, tmp_path, data, Fault(status=429, retry_after=1, times=1))
    assert result.state == "complete"
    assert time.monotonic() - started >= 0.9
    assert_verified(tmp_path, data)


def test_a_server_that_keeps_failing_ends_in_a_clear_failure(localhub, tmp_path):
    data = payload(300 * KIB, seed=23)
    result, _ = fetch(localhub, tmp_path, data, Fault(status=500, server="cdn"), retries=2)
    assert result.state == "failed"
    assert "giving up" in result.message and "500" in result.message
    assert_nothing_at_dest(tmp_path)


def test_a_server_ignoring_ranges_falls_back_to_one_stream(localhub, tmp_path):
    data = payload(1 * MIB, seed=24)
    result, events = fetch(localhub, tmp_path, data, Fault(ignore_range=True, server="cdn"))
    assert result.state == "complete", result.message
    assert any("ignores byte ranges" in e.message for e in events)
    assert_verified(tmp_path, data)


def test_a_corrupt_byte_is_fetched_again_once(localhub, tmp_path):
    data = payload(1 * MIB, seed=25)
    # One connection, so the first request is surely the one that carries byte 1000.
    fault = Fault(corrupt_at=1000, times=1)
    result, events = fetch(localhub, tmp_path, data, fault, connections=1)
    assert result.state == "complete"
    assert any("mismatch" in e.message for e in events)
    assert_verified(tmp_path, data)


def test_a_file_that_never_verifies_fails_naming_both_hashes(localhub, tmp_path):
    data = payload(512 * KIB, seed=26)
    result, _ = fetch(localhub, tmp_path, data, Fault(corrupt_at=1000))
    bad = bytearray(data)
    bad[1000] ^= 0xFF
    assert result.state == "failed"
    assert hashlib.sha256(data).hexdigest() in result.message
    assert hashlib.sha256(bad).hexdigest() in result.message
    assert_nothing_at_dest(tmp_path)
    assert os.listdir(tmp_path / "models") == []  # the bad partial and its lock are gone


def test_a_small_file_with_a_bad_body_fails_naming_git_hashes(localhub, tmp_path):
    data = b"x" * 5000
    result, _ = fetch(localhub, tmp_path, data, Fault(corrupt_at=10), name="notes.txt")
    assert result.state == "failed"
    assert "blob_sha1 mismatch" in result.message
    assert_nothing_at_dest(tmp_path, "notes.txt")


def test_an_expired_cdn_link_is_resolved_again(localhub, tmp_path):
    data = payload(1 * MIB, seed=27)
    result, _ = fetch(localhub, tmp_path, data, Fault(expire_after=0.2), limit_kb=1500)
    assert result.state == "complete", result.message
    assert_verified(tmp_path, data)
    resolves = [r for r in localhub.requests if r.server == "hub" and "/resolve/" in r.path]
    assert len(resolves) >= 2
    assert any(r.headers.get("range") for r in cdn_gets(localhub))


def test_416_is_a_clear_failure(localhub, tmp_path):
    data = payload(300 * KIB, seed=28)
    result, _ = fetch(localhub, tmp_path, data, Fault(status=416, server="cdn"))
    assert result.state == "failed"
    assert "416" in result.message
    assert_nothing_at_dest(tmp_path)


def test_a_missing_file_is_a_clear_failure(localhub, tmp_path):
    put_file(localhub, "other.json", b"{}")
    result, _ = run_job(job_for(localhub, "missing.safetensors", tmp_path / "models"))
    assert result.state == "failed"
    assert "404" in result.message
    assert os.listdir(tmp_path / "models") == []  # no hidden folder left for nothing


def test_a_full_disk_fails_clearly_and_keeps_the_partial(localhub, tmp_path, monkeypatch):
    data = payload(1 * MIB, seed=29)
    real_pwrite = os.pwrite
    calls = []

    def pwrite(fd, data, offset):
        calls.append(offset)
        if len(calls) > 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    result, _ = fetch(localhub, tmp_path, data)
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    assert result.state == "failed"
    assert "disk is full" in result.message
    paths = PartialPaths.for_dest(tmp_path / "models" / NAME)
    assert paths.part.exists() and paths.state.exists()
    assert_nothing_at_dest(tmp_path)
    result, _ = fetch(localhub, tmp_path, data)  # space freed: the partial resumes
    assert result.state == "complete"
    assert_verified(tmp_path, data)


def test_an_unwritable_destination_fails_clearly(localhub, tmp_path):
    data = payload(200 * KIB, seed=30)
    blocker = tmp_path / "models"
    blocker.write_text("a file where a folder should be")
    result, _ = run_job(hosted_job(localhub, NAME, blocker / "sub", data))
    assert result.state == "failed"
    assert "cannot write into" in result.message
    assert blocker.read_text() == "a file where a folder should be"


def test_a_folder_in_the_way_fails_clearly(localhub, tmp_path):
    data = payload(200 * KIB, seed=31)
    (tmp_path / "models" / NAME).mkdir(parents=True)
    result, _ = fetch(localhub, tmp_path, data)
    assert result.state == "failed"
    assert "a folder is in the way" in result.message
