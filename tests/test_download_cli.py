"""--download end to end: the real program against wandown.localhub on loopback."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.world import BIG, LORA, OTHER_VARIANT, REPO, SMALL, build_world, payload
from wandown.localhub import Fault


@pytest.fixture
def world(tmp_path, localhub):
    return build_world(tmp_path, localhub)


def cdn_gets(localhub, name):
    return [
        r for r in localhub.requests if r.method == "GET" and name in r.path and r.server == "cdn"
    ]


def test_download_missing_fetches_and_verifies_everything(world, localhub):
    result = world.run("--download", "missing")
    assert result.returncode == 0, result.stdout + result.stderr
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()
    assert world.path(f"ckpts/{SMALL}").read_bytes() == world.served_file(SMALL).read_bytes()
    assert world.path(f"loras/{LORA}").read_bytes() == world.served_file(LORA).read_bytes()
    assert world.path("ckpts/pose/yolox_l.onnx").is_file()
    assert not world.path(f"ckpts/{OTHER_VARIANT}").exists()
    assert f"Complete    ckpts/{BIG}" in result.stdout
    assert "done:" in result.stdout and "failed" not in result.stdout
    leftovers = [p for p in world.root.rglob("*") if ".wandown" in p.parts and p.is_file()]
    assert leftovers == []

    localhub.clear_requests()
    again = world.run("--download", "missing")
    assert again.returncode == 0
    assert "nothing to do" in again.stdout
    assert not [r for r in localhub.requests if r.server == "cdn"]


def test_dry_run_changes_nothing(world, localhub):
    result = world.run("--download", "testvideo", "--dry-run")
    assert result.returncode == 0
    assert f"ckpts/{BIG}: download 6.0 MB" in result.stdout
    assert not world.path(f"ckpts/{BIG}").exists()
    assert not [r for r in localhub.requests if r.server == "cdn"]


def test_hub_file_is_linked_not_downloaded_and_decoys_are_not(world, localhub):
    good = world.hub_dir / "some" / "deep" / "renamed.bin"
    good.parent.mkdir(parents=True)
    good.write_bytes(world.served_file(BIG).read_bytes())
    decoy = world.hub_dir / BIG  # same name and size, other content
    decoy.write_bytes(payload("decoy", len(good.read_bytes())))
    truncated = world.hub_dir / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-1])
    before = {p: p.stat().st_mtime_ns for p in world.hub_dir.rglob("*")}

    result = world.run("--download", BIG)
    assert result.returncode == 0, result.stdout + result.stderr
    dest = world.path(f"ckpts/{BIG}")
    assert dest.is_symlink() and os.readlink(dest) == str(good)
    assert f"Linked      ckpts/{BIG} -> {good}" in result.stdout
    assert cdn_gets(localhub, BIG) == []
    assert {p: p.stat().st_mtime_ns for p in world.hub_dir.rglob("*")} == before


def test_selectors_and_unknown_selector(world):
    bad = world.run("--download", "no-such-thing")
    assert bad.returncode == 2
    assert "'no-such-thing' matches no model id" in bad.stderr
    by_dest = world.run("--download", f"loras/{LORA}")
    assert by_dest.returncode == 0
    assert world.path(f"loras/{LORA}").is_file()
    assert not world.path(f"ckpts/{BIG}").exists()


def test_server_error_fails_cleanly_with_the_reason(world, localhub):
    localhub.set_fault(REPO, BIG, Fault(status=404))
    result = world.run("--download", BIG)
    assert result.returncode == 1
    assert "failed: ckpts/" + BIG in result.stdout
    assert not world.path(f"ckpts/{BIG}").exists()


def test_corrupt_bytes_never_reach_the_destination(world, localhub):
    localhub.set_fault(REPO, BIG, Fault(corrupt_at=12345))
    result = world.run("--download", BIG)
    assert result.returncode == 1
    assert "sha256" in result.stdout
    assert not world.path(f"ckpts/{BIG}").exists()
    localhub.clear_faults()
    assert world.run("--download", BIG).returncode == 0
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()


@pytest.mark.slow
def test_kill_dash_nine_then_resume_refetches_little(world, localhub):
    size = len(world.served_file(BIG).read_bytes())
    process = world.popen("--download", BIG, "--limit", "1000", "--connections", "2")
    partial_dir = world.path("ckpts/.wandown")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        parts = list(partial_dir.glob("*.part")) if partial_dir.exists() else []
        if parts and parts[0].stat().st_blocks * 512 > size // 4:
            break
        time.sleep(0.2)
    time.sleep(1.5)  # let the state file catch up with the bytes on disk
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert not world.path(f"ckpts/{BIG}").exists()

    localhub.clear_requests()
    result = world.run("--download", BIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()
    fetched = 0
    for request in cdn_gets(localhub, BIG):
        first, last = request.headers["range"].split("=")[1].split("-")
        fetched += int(last) - int(first) + 1
    assert 0 < fetched < size * 0.9


def test_sigterm_stops_cleanly_and_keeps_the_partial(world):
    process = world.popen("--download", BIG, "--limit", "500")
    assert process.stdout is not None
    for line in process.stdout:  # a fixed sleep could signal a loaded machine's slow start-up
        if line.startswith("Downloading"):
            break
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=20)
    assert process.returncode == 130
    assert "Traceback" not in err
    assert "interrupted" in err
    assert not world.path(f"ckpts/{BIG}").exists()
    assert list(world.path("ckpts/.wandown").glob("*.part"))
