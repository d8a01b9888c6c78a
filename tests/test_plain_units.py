"""Formatting for people: sizes, speeds, ETAs and the plain-mode log lines, pinned literally."""

from __future__ import annotations

from wandown import state
from wandown.plain import PlainReporter, all_present, progress_line, summary_lines
from wandown.status import Status
from wandown.units import human_bytes, human_duration, human_speed, size_gb


def test_units():
    assert size_gb(None) == "?"
    assert size_gb(28_600_000_000) == "28.60"
    assert human_bytes(512) == "512 B"
    assert human_bytes(1_500_000) == "1.5 MB"
    assert human_bytes(12_345_000_000) == "12.3 GB"
    assert human_bytes(None) == "?"
    assert human_speed(0) == "-"
    assert human_speed(45_100_000) == "45.1 MB/s"
    assert human_duration(None) == "-"
    assert human_duration(44.6) == "45s"
    assert human_duration(725) == "12m05s"
    assert human_duration(11_220) == "3h07m"


def view(dest="ckpts/a.safetensors", **changes):
    base = state.FileView(dest, dest.rsplit("/", 1)[1], "ckpts", "main", ("t2v",), ("t2v",), "u")
    return state.FileView(**{**base.__dict__, **changes})


def snapshot(*views):
    return state.Snapshot(1, state.Header(), {v.dest: v for v in views})


def test_progress_lines():
    downloading = view(
        size=3_000_000_000, done=750_000_000, speed=50_000_000, status=Status.DOWNLOADING
    )
    assert progress_line(downloading) == (
        " 25.0%  ckpts/a.safetensors  750.0 MB of 3.0 GB  50.0 MB/s  ETA 45s"
    )
    hashing = view(size=2_000_000, done=500_000, status=Status.HASHING, message="/hub/x.bin")
    assert (
        progress_line(hashing)
        == " 25.0%  ckpts/a.safetensors  hashing /hub/x.bin  500.0 KB of 2.0 MB"
    )


def test_reporter_says_each_change_once_and_progress_every_few_seconds():
    reporter = PlainReporter(every=5.0)
    watched = {"ckpts/a.safetensors"}
    pending = snapshot(view(status=Status.PENDING))
    assert reporter.lines(pending, 0.0, watched) == []  # queued files make no noise
    running = snapshot(view(status=Status.DOWNLOADING, size=100, done=10, speed=5))
    assert reporter.lines(running, 1.0, watched) == ["Downloading ckpts/a.safetensors (100 B)"]
    assert reporter.lines(running, 3.0, watched) == []
    assert reporter.lines(running, 6.5, watched) == [
        " 10.0%  ckpts/a.safetensors  10 B of 100 B  5 B/s  ETA 18s"
    ]
    done = snapshot(view(status=Status.COMPLETE, size=100, done=100))
    assert reporter.lines(done, 7.0, watched) == ["Complete    ckpts/a.safetensors"]
    assert all_present(done, watched)


def test_summary_names_every_failure():
    failed = view(dest="ckpts/b.bin", status=Status.FAILED, message="the disk is full")
    linked = view(status=Status.LINKED)
    lines = summary_lines(snapshot(failed, linked), {"ckpts/b.bin", "ckpts/a.safetensors"})
    assert lines == ["done: 2 files: 1 linked, 1 failed", "  failed: ckpts/b.bin: the disk is full"]
    assert not all_present(snapshot(failed, linked), {"ckpts/b.bin"})
