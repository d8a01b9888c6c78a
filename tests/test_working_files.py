"""Working folders, partial names, locks and races: the real program on loopback.

The stress tests run many rounds of real downloads into one folder, in one process and in
several at once; a file may never end Failed because two of them raced on the hidden folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.test_engine_support import job_for, put_file, small_engine
from tests.test_engine_support import payload as random_bytes
from tests.world import BIG, REPO, World, build_world, payload
from wandown import cli
from wandown.engine.fetch import Resolver
from wandown.engine.partial import (
    NAME_MAX,
    FileLock,
    PartialPaths,
    PartialState,
    load_state,
    save_state,
    working_stem,
)
from wandown.engine.ranges import RangeSet

TOKENIZER_FILES = [f"tokenizer_part_{i:02d}.json" for i in range(12)]


def add_model(world: World, model: str, files: dict[str, int]) -> None:
    """Serve files from the test repo and define a model that preloads them into ckpts/."""
    base = f"https://huggingface.co/{REPO}/resolve/main/"
    for name, size in files.items():
        target = world.served_file(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload(name, size))
    definition = {
        "model": {
            "name": model,
            "architecture": "test_arch",
            "URLs": [],
            "preload_URLs": [base + name for name in files],
        }
    }
    (world.root / "defaults" / f"{model}.json").write_text(json.dumps(definition))


def forget_tokenizer(world: World) -> None:
    """Remove the tokenizer files, so the next run fetches just those twelve into one folder."""
    for name in TOKENIZER_FILES:
        world.path(f"ckpts/{name}").unlink(missing_ok=True)


def served_matches(world: World, dest: str, name: str) -> bool:
    path = world.path(dest)
    return path.is_file() and path.read_bytes() == world.served_file(name).read_bytes()


def leftovers(world: World) -> list[Path]:
    return [p for p in world.root.rglob("*") if ".wandown" in p.parts]


# -- finding 8: the hidden folder's life cycle --------------------------------------------


@pytest.mark.slow
def test_a_folder_of_many_small_files_downloads_whole_every_time(
    tmp_path, localhub, monkeypatch, capsys
):
    world = build_world(tmp_path, localhub, big_size=2000)
    add_model(world, "tok", {name: 300 for name in TOKENIZER_FILES})
    monkeypatch.chdir(world.workdir)
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
    for round_number in range(20):
        forget_tokenizer(world)
        status = cli.main(["--download", "tok"])
        out = capsys.readouterr()
        assert status == 0, f"round {round_number}: {out.out}{out.err}"
        assert "Failed" not in out.out
        for name in TOKENIZER_FILES:
            assert served_matches(world, f"ckpts/{name}", name), (round_number, name)
        assert leftovers(world) == []


@pytest.mark.slow
def test_three_concurrent_runs_on_one_install_never_fail_a_file(tmp_path, localhub):
    world = build_world(tmp_path, localhub, big_size=200_000)
    add_model(world, "tok", {name: 300 for name in TOKENIZER_FILES})
    for round_number in range(20):
        forget_tokenizer(world)
        runs = [world.popen("--download", "missing") for _ in range(3)]
        for process in runs:
            out, err = process.communicate(timeout=60)
            assert "Traceback" not in out + err
            assert process.returncode == 0, f"round {round_number}: {out}{err}"
            assert "Failed" not in out, f"round {round_number}: {out}"
        for name in TOKENIZER_FILES:
            assert served_matches(world, f"ckpts/{name}", name), (round_number, name)
        assert leftovers(world) == []


def test_a_neighbour_finishing_between_mkdir_and_open_removes_nothing(
    localhub, tmp_path, monkeypatch
):
    first_data, second_data = random_bytes(5000, seed=1), random_bytes(5000, seed=2)
    put_file(localhub, "first.json", first_data)
    put_file(localhub, "second.json", second_data)
    first = job_for(localhub, "first.json", tmp_path, first_data)
    second = job_for(localhub, "second.json", tmp_path, second_data)
    second_lock = PartialPaths.for_dest(second.dest).lock
    real_open = os.open
    held_up = []

    def open_late(path, flags, *args, **kwargs):
        # The first file's lock is opened only once the second file has finished and tidied.
        if str(path).endswith("first.json.lock") and not held_up:
            held_up.append(path)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (
                second.dest.exists() and not second_lock.exists()
            ):
                time.sleep(0.01)
            time.sleep(0.2)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_late)
    with small_engine() as engine:
        engine.submit(first)
        engine.submit(second)
        results = engine.wait(timeout=30)
    assert held_up
    assert results[second.key].state == "complete", results[second.key].message
    assert results[first.key].state == "complete", results[first.key].message
    assert first.dest.read_bytes() == first_data
    assert not PartialPaths.for_dest(first.dest).folder.exists()


# -- finding 15: names near NAME_MAX ------------------------------------------------------


@pytest.mark.slow
def test_a_file_with_a_252_byte_name_downloads(tmp_path, localhub):
    world = build_world(tmp_path, localhub, big_size=2000)
    long_name = "é" * 120 + ".safetensors"  # 120 characters of 2 bytes each
    assert len(long_name.encode()) == 252
    add_model(world, "longname", {long_name: 5000})
    result = world.run("--download", "longname")
    assert result.returncode == 0, result.stdout + result.stderr
    assert served_matches(world, f"ckpts/{long_name}", long_name)
    assert leftovers(world) == []


def test_working_names_fit_name_max_and_stay_readable():
    assert working_stem("model.safetensors") == "model.safetensors"
    for name in ("a" * 255, "é" * 127, "日本" * 42 + "a" * 3, "a" * 249):
        paths = PartialPaths.for_dest(Path("/m") / name)
        for path in (paths.part, paths.state, paths.lock, paths.state.with_suffix(".stmp")):
            assert len(os.fsencode(path.name)) <= NAME_MAX, name
        assert paths.part.name.startswith(name[:50])
    first, second = "a" * 250 + "1", "a" * 250 + "2"
    assert working_stem(first) != working_stem(second)


# -- finding 14: a disk that fills up before the first state save ---------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs at tmp_path/disk, made bigger with grow(); skips where mount is refused."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")

    def grow() -> None:
        remount = ["mount", "-o", "remount,size=16m", str(disk)]
        subprocess.run(remount, check=True)

    try:
        yield disk, grow
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.slow
def test_a_disk_full_before_the_first_save_really_resumes(tmp_path, localhub, small_disk):
    disk, grow = small_disk
    world = build_world(tmp_path, localhub, big_size=3_000_000)
    ckpts = world.path("ckpts")
    ckpts.parent.mkdir(parents=True, exist_ok=True)
    ckpts.symlink_to(disk)
    size = world.served_file(BIG).stat().st_size
    config = world.workdir / "config.json"
    # The disk plan would refuse to start on a 2 MiB disk: no reserve, and --force past the plan.
    config.write_text(json.dumps({**json.loads(config.read_text()), "min_free_gb": 0}))

    full = world.run("--download", BIG, "--connections", "2", "--force")
    assert full.returncode != 0
    assert "the disk is full" in full.stdout and "will resume" in full.stdout, full.stdout
    saved = load_state(PartialPaths.for_dest(ckpts / BIG).state)
    assert saved is not None and saved.done.total() > size // 3

    grow()
    localhub.clear_requests()
    again = world.run("--download", BIG)
    assert again.returncode == 0, again.stdout + again.stderr
    assert served_matches(world, f"ckpts/{BIG}", BIG)
    fetched = 0
    for request in localhub.requests:
        if request.method == "GET" and BIG in request.path and request.server == "cdn":
            first, last = request.headers["range"].split("=")[1].split("-")
            fetched += int(last) - int(first) + 1
    assert 0 < fetched < size * 0.7


def test_state_is_rewritten_in_place_when_the_disk_is_full(tmp_path, monkeypatch):
    path = tmp_path / "x.state"
    save_state(path, PartialState("u", 10_000_000, None, None))
    room = path.stat().st_size

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("wandown.engine.partial._replace_state", no_space)
    done = RangeSet([(i * 1000, i * 1000 + 500) for i in range(20)])
    save_state(path, PartialState("u", 10_000_000, None, None, done=done))
    loaded = load_state(path)
    assert loaded is not None and loaded.done == done
    assert path.stat().st_size == room


# -- design risk: a holder stopped with SIGSTOP ---------------------------------------------


def wait_for_holder(lock_path: Path, pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = FileLock(lock_path).holder()
        if holder is not None and holder.pid == pid:
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} never locked {lock_path}")


@pytest.mark.slow
def test_a_stopped_holder_is_named_and_waited_for_only_so_long(tmp_path, localhub):
    world = build_world(tmp_path, localhub)
    holder = world.popen("--download", BIG, "--limit", "300")
    try:
        wait_for_holder(PartialPaths.for_dest(world.path(f"ckpts/{BIG}")).lock, holder.pid)
        holder.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        waiter = world.run("--download", BIG, extra_env={"WANDOWN_BUSY_TIMEOUT": "2"}, timeout=30)
        assert time.monotonic() - started < 15
        assert waiter.returncode != 0
        assert f"pid {holder.pid} holds its lock but has shown no progress" in waiter.stdout
        assert not world.path(f"ckpts/{BIG}").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()


@pytest.mark.slow
def test_a_live_holder_is_waited_for_past_the_timeout(tmp_path, localhub):
    world = build_world(tmp_path, localhub, big_size=3_000_000)
    holder = world.popen("--download", BIG, "--limit", "600")
    try:
        wait_for_holder(PartialPaths.for_dest(world.path(f"ckpts/{BIG}")).lock, holder.pid)
        waiter = world.run("--download", BIG, extra_env={"WANDOWN_BUSY_TIMEOUT": "2"}, timeout=60)
        assert waiter.returncode == 0, waiter.stdout + waiter.stderr
        assert f"Busy        ckpts/{BIG}: pid {holder.pid} is fetching this file" in waiter.stdout
        assert "fetched by another wandown process" in waiter.stdout
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGKILL)
        holder.communicate()
    assert served_matches(world, f"ckpts/{BIG}", BIG)


def test_a_held_lock_names_its_holder_and_keeps_beating(tmp_path):
    path = tmp_path / "f.lock"
    lock = FileLock(path, heartbeat=0.05)
    assert lock.try_acquire()
    try:
        os.utime(path, (0, 0))  # long silent, until the next beat
        time.sleep(0.3)
        holder = FileLock(path).holder()
        assert holder is not None and holder.pid == os.getpid()
        assert holder.idle < 5
        assert holder.describe() == f"pid {os.getpid()}"
    finally:
        lock.release(remove=True)
    assert FileLock(path).holder() is None


def full_disk_for_parts(monkeypatch) -> None:
    """Make every write into a .part file fail as on a full disk; other files still write."""
    real_pwrite = os.pwrite

    def pwrite(fd, data, offset):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".part"):
            raise OSError(28, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)


@pytest.mark.parametrize("sized", [True, False], ids=["size-known", "size-unknown"])
def test_a_full_disk_says_truly_whether_the_download_resumes(
    localhub, tmp_path, monkeypatch, sized
):
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to tell the part file's writes apart")
    data = random_bytes(300 * 1024, seed=5)
    put_file(localhub, "model.safetensors", data)
    job = job_for(localhub, "model.safetensors", tmp_path, data, known=sized)
    if not sized:
        real_resolve = Resolver.resolve

        def resolve(self):
            return self._remember(dataclasses.replace(real_resolve(self), size=None))

        monkeypatch.setattr(Resolver, "resolve", resolve)
    full_disk_for_parts(monkeypatch)
    with small_engine() as engine:
        engine.submit(job)
        result = engine.wait(timeout=30)[job.key]
    assert result.state == "failed"
    assert "the disk is full" in result.message
    saved = load_state(PartialPaths.for_dest(job.dest).state)
    if sized:
        assert "will resume" in result.message and saved is not None
    else:
        assert "the next run starts over" in result.message, result.message


def test_a_lock_file_removed_as_it_is_opened_is_not_called_a_hard_link(tmp_path):
    path = tmp_path / "f.lock"
    stop = threading.Event()
    problems = []

    def finish_over_and_over():
        holder = FileLock(path)
        while not stop.is_set():
            if holder.try_acquire():
                holder.release(remove=True)  # what a finished download does

    def wait_over_and_over():
        waiter = FileLock(path)
        while not stop.is_set():
            try:
                if waiter.try_acquire():
                    waiter.release(remove=True)
            except Exception as error:
                problems.append(error)
                return

    threads = [threading.Thread(target=finish_over_and_over)] + [
        threading.Thread(target=wait_over_and_over) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert problems == []
