"""One way to say each thing: one hash-a-file, one set of hex patterns, one signal mechanism."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.localhub_fixtures import fetch
from tests.world import BIG, build_world
from wandown import cli, digests, interrupts
from wandown.digests import BLAKE3, BLOB_SHA1, SHA256, HashingCancelled, file_digest, hash_file
from wandown.localhub.hashes import HashCache

PACKAGE = Path(__file__).resolve().parent.parent / "wandown"


def sources() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text() for p in PACKAGE.rglob("*.py")}


def test_hash_a_file_and_the_hex_patterns_live_in_digests_only() -> None:
    """The acceptance grep: a second copy is how the three hash_file functions drifted apart."""
    defines_hash_file = [n for n, text in sources().items() if re.search(r"def hash_file\b", text)]
    hex_patterns = [n for n, text in sources().items() if re.search(r"\[0-9a-f\]\{(40|64)\}", text)]
    assert defines_hash_file == ["digests.py"]
    assert hex_patterns == ["digests.py"]


def test_one_read_gives_every_identity_asked_for(tmp_path: Path) -> None:
    data = b"weights" * 300_000
    target = tmp_path / "model.bin"
    target.write_bytes(data)
    seen: list[tuple[int, int]] = []
    got = hash_file(
        target,
        {SHA256, BLOB_SHA1, BLAKE3},
        progress=lambda path, done, total: seen.append((done, total)),
        blake3_factory=digests.load_blake3(),
    )
    assert got[SHA256] == hashlib.sha256(data).hexdigest()
    assert got[BLOB_SHA1] == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    blake3 = digests.load_blake3()
    if blake3 is not None:
        hasher = blake3()
        hasher.update(data)
        assert got[BLAKE3] == hasher.hexdigest()
    assert seen[0] == (0, len(data)) and seen[-1] == (len(data), len(data))
    assert hash_file(target, {SHA256, BLAKE3}).keys() == {SHA256}  # no factory, no BLAKE3


def test_a_file_that_grows_while_read_has_no_digest(tmp_path: Path) -> None:
    target = tmp_path / "growing.bin"
    target.write_bytes(b"x" * 1000)

    def grow(path: Path, done: int, total: int) -> None:
        if done == 0:
            with open(path, "ab") as handle:
                handle.write(b"more")

    assert hash_file(target, [SHA256], progress=grow) == {}


def test_cancel_stops_the_read(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"x" * 100)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(HashingCancelled):
        hash_file(target, [SHA256], cancel=cancel)
    assert file_digest(target, SHA256, cancel) is None
    assert file_digest(target, SHA256) == hashlib.sha256(b"x" * 100).hexdigest()


def test_localhub_never_remembers_a_digest_of_a_file_that_changed(tmp_path: Path) -> None:
    """Its stat said 10 bytes, the file now holds 14: the blob sha1 header would be wrong."""
    root = tmp_path / "root"
    root.mkdir()
    target = root / "config.json"
    target.write_bytes(b"0123456789abcd")
    cache = HashCache(root, tmp_path / "hashes.json")
    info = os.stat(target)
    with pytest.raises(OSError, match="changed while it was hashed"):
        cache.digest(target, 10, info.st_mtime_ns, BLOB_SHA1, inode=info.st_ino)
    assert cache.lookup(target, 10, info.st_mtime_ns, BLOB_SHA1, inode=info.st_ino) is None


@pytest.mark.parametrize("check", [digests.is_sha256, digests.is_sha1])
def test_a_digest_with_a_trailing_newline_is_not_a_digest(check) -> None:
    size = 64 if check is digests.is_sha256 else 40
    assert check("a" * size)
    assert not check("a" * size + "\n")
    assert not check("A" * size)


def test_carried_metadata_with_a_newline_in_a_sha256_is_refused(tmp_path: Path, localhub) -> None:
    """'^[0-9a-f]{64}$' with match() took 'hex\\n'; a download would then never verify."""
    world = build_world(tmp_path, localhub)
    exported = tmp_path / "carried.json"
    assert world.run("--export-metadata", str(exported)).returncode == 0
    data = json.loads(exported.read_text())
    changed = 0
    for hub in data["hubs"].values():
        for commits in hub["commits"].values():
            for files in commits.values():
                for meta in files.values():
                    if meta["sha256"]:
                        meta["sha256"] += "\n"
                        changed += 1
    assert changed
    exported.write_text(json.dumps(data))
    air_gapped = {"WANDOWN_CACHE_DIR": str(tmp_path / "other-machine-cache")}
    result = world.run("--import-metadata", str(exported), extra_env=air_gapped)
    assert result.returncode != 0
    assert "carried.json" in result.stderr and "bad sha256" in result.stderr
    assert "imported metadata" not in result.stderr


def test_an_ignored_signal_stays_ignored_and_handlers_come_back() -> None:
    """nohup ignores SIGHUP so a program outlives its terminal; wandown must not undo that."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        term_before = signal.getsignal(signal.SIGTERM)
        with interrupts.interrupt_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not term_before
        assert signal.getsignal(signal.SIGTERM) is term_before
    finally:
        signal.signal(signal.SIGHUP, before)


def test_the_cli_runs_in_a_host_programs_thread(tmp_path: Path, monkeypatch) -> None:
    """Only the main thread may set signal handlers; a host app calling main() from a worker
    thread got a ValueError traceback instead of the listing."""
    wan2gp = tmp_path / "Wan2GP"
    (wan2gp / "ckpts").mkdir(parents=True)
    (wan2gp / "defaults").mkdir()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hub_directory": "", "wan2gp_directory": str(wan2gp / "ckpts")}))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    outcome: list[object] = []

    def host_worker() -> None:
        try:
            outcome.append(cli.main(["--list", "--json", "--config-file", str(config)]))
        except BaseException as error:  # the test reports it, the thread must not swallow it
            outcome.append(error)

    worker = threading.Thread(target=host_worker)
    worker.start()
    worker.join(60)
    assert outcome == [0]


def test_localhub_under_nohup_keeps_serving_through_a_hang_up(tmp_path: Path) -> None:
    """A guard: localhub now stops on SIGHUP, except when started ignoring it."""
    root = tmp_path / "models"
    (root / "acme" / "tiny").mkdir(parents=True)
    (root / "acme" / "tiny" / "config.json").write_text("{}\n")
    nohup = (
        "import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(PACKAGE.parent),
        "WANDOWN_CACHE_DIR": str(tmp_path / "cache"),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", nohup, "-m", "wandown.localhub", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("listening on ")
        process.send_signal(signal.SIGHUP)
        answer = fetch(first.split()[-1] + "/acme/tiny/resolve/main/config.json")
        assert (answer.status, answer.body) == (200, b"{}\n")
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.slow
def test_a_download_under_nohup_outlives_its_terminal(tmp_path: Path, localhub) -> None:
    world = build_world(tmp_path, localhub)
    nohup = (
        "import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    wandown = [str(PACKAGE.parent / "wandown.py"), "--download", BIG, "--limit", "3000"]
    process = subprocess.Popen(
        [sys.executable, "-c", nohup, *wandown],
        cwd=world.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=world.env(),
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Downloading"):
            break
    process.send_signal(signal.SIGHUP)  # the ssh session that started it closes
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()
