"""The disk plan: what a run would fetch against each disk's free space minus min_free_gb."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.world import BIG, build_world
from wandown import cli, diskspace
from wandown.config import load_config
from wandown.diskplan import GB, Space, plan
from wandown.engine.partial import PartialPaths, PartialState, save_state
from wandown.engine.ranges import RangeSet
from wandown.errors import ConfigError

MB = 1_000_000


# -- pure: sums per file system ------------------------------------------------------------------


def test_needs_are_summed_per_file_system_against_free_minus_reserve():
    spaces = {1: Space(1, "/mnt/models", 380 * GB), 2: Space(2, "/", 50 * GB)}
    disk = plan([(1, 300 * GB), (1, 112 * GB), (2, 1 * GB), (3, 5 * GB)], spaces, 10 * GB)
    assert not disk.fits
    short = disk.volumes[0]
    assert (short.space.mount, short.to_fetch, short.files) == ("/mnt/models", 412 * GB, 2)
    assert short.shortfall == 42 * GB
    assert (
        disk.summary()
        == "412.0 GB to fetch · 380.0 GB free on /mnt/models (42.0 GB short) (+1 more disk)"
    )
    assert disk.problem() == (
        "412.0 GB to fetch onto /mnt/models, which has 380.0 GB free and keeps 10.0 GB "
        "(min_free_gb): 42.0 GB short"
    )
    assert disk.volumes[1].fits and disk.to_fetch == 413 * GB  # device 3: never probed


def test_an_empty_plan_fits():
    assert plan([], {}, 10 * GB).fits
    assert plan([], {}, 10 * GB).summary() == "nothing to fetch"


def test_a_reserve_larger_than_the_free_space_leaves_no_room():
    disk = plan([(1, 1)], {1: Space(1, "/x", 5 * GB)}, 10 * GB)
    assert disk.volumes[0].room == 0 and disk.volumes[0].shortfall == 1


def test_the_probe_names_the_mount_point_of_a_folder_not_made_yet(tmp_path):
    space = diskspace.space_of(tmp_path / "not" / "yet" / "there.safetensors")
    assert space is not None and space.free > 0
    assert space.device == tmp_path.stat().st_dev
    assert Path(space.mount) in (Path(tmp_path).resolve(), *Path(tmp_path).resolve().parents)


@pytest.mark.parametrize("value", ["-1", "true", '"10"', "1e99"])
def test_min_free_gb_is_validated(tmp_path, value):
    config = tmp_path / "config.json"
    config.write_text(f'{{"min_free_gb": {value}}}')
    with pytest.raises(ConfigError, match="'min_free_gb' must be"):
        load_config(config)


def test_min_free_gb_defaults_to_10(tmp_path):
    assert load_config(tmp_path / "config.json").min_free_gb == 10
    assert json.loads((tmp_path / "config.json").read_text())["min_free_gb"] == 10


# -- a real small file system --------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(target: Path, size: str = "300000000") -> Iterator[Path]:
    """Mount a tmpfs of size at target for the block, or skip where mounting is not allowed."""
    target.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def small_world(tmp_path, localhub, monkeypatch):
    """A world whose Wan2GP folder is on a 300 MB tmpfs that keeps 280 MB free (20 MB room)."""
    with tmpfs(tmp_path / "small") as disk:
        world = build_world(disk, localhub, big_size=40 * MB)
        config = json.loads((world.workdir / "config.json").read_text())
        (world.workdir / "config.json").write_text(json.dumps({**config, "min_free_gb": 0.28}))
        monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
        monkeypatch.chdir(world.workdir)
        yield world


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_download_that_does_not_fit_exits_3_writes_nothing_and_names_the_shortfall(
    small_world, localhub
):
    before = tree(small_world.root)
    result = small_world.run("--download", f"ckpts/{BIG}")
    assert result.returncode == 3, result.stdout + result.stderr
    mount = str(small_world.root.parent)
    assert f"40.0 MB to fetch onto {mount}, which has " in result.stderr
    assert "keeps 280.0 MB (min_free_gb): 20.0 MB short" in result.stderr
    assert "nothing started" in result.stderr and "--force" in result.stderr
    assert tree(small_world.root) == before
    assert not [r for r in localhub.requests if r.server == "cdn"]


def test_the_dry_run_shows_the_plan_and_exits_3(small_world, capsys):
    assert cli.main(["--download", f"ckpts/{BIG}", "--dry-run"]) == 3
    out = capsys.readouterr().out
    assert "disk: 40.0 MB to fetch · " in out and "does not fit: " in out
    assert cli.main(["--download", f"ckpts/{BIG}", "--dry-run", "--force"]) == 0


def test_force_proceeds(small_world, capsys):
    assert cli.main(["--download", f"ckpts/{BIG}", "--force"]) == 0
    captured = capsys.readouterr()
    assert "--force: starting although 40.0 MB to fetch onto" in captured.err
    assert small_world.path(f"ckpts/{BIG}").stat().st_size == 40 * MB


def test_a_partial_on_disk_counts_only_what_remains(small_world, capsys):
    place = small_world.path(f"ckpts/{BIG}")
    paths = PartialPaths.for_dest(place)
    paths.folder.mkdir(parents=True)
    sha256 = hashlib.sha256(small_world.served_file(BIG).read_bytes()).hexdigest()
    state = PartialState("u", 40 * MB, sha256, None, done=RangeSet([(0, 25 * MB)]))
    save_state(paths.state, state)
    assert cli.main(["--download", f"ckpts/{BIG}", "--dry-run"]) == 0
    assert "disk: 15.0 MB to fetch" in capsys.readouterr().out
    save_state(paths.state, PartialState("u", 40 * MB, "0" * 64, None, done=state.done))
    assert cli.main(["--download", f"ckpts/{BIG}", "--dry-run"]) == 3  # another version


# -- a disk that is under the reserve while files wait to start ---------------------------------


@pytest.fixture
def full_world(tmp_path, localhub, monkeypatch):
    """A world on a 300 MB tmpfs keeping 100 MB free, with 250 MB already taken by a filler."""
    with tmpfs(tmp_path / "full") as disk:
        world = build_world(disk, localhub)
        config = json.loads((world.workdir / "config.json").read_text())
        (world.workdir / "config.json").write_text(json.dumps({**config, "min_free_gb": 0.1}))
        filler = disk / "filler.bin"
        with filler.open("wb") as out:
            for _ in range(250):
                out.write(b"\1" * MB)
        yield world, filler


def test_new_files_wait_while_the_disk_is_under_the_reserve_and_go_on_when_space_returns(
    full_world,
):
    world, filler = full_world
    env = {"WANDOWN_DISK_POLL": "0.2"}
    process = world.popen("--download", f"ckpts/{BIG}", "--force", extra_env=env)
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.startswith("Waiting for disk space"):
                break
        waiting = seen[-1]
        assert (
            f"ckpts/{BIG}: " in waiting and "under the 100.0 MB kept free (min_free_gb)" in waiting
        )
        assert not world.path(f"ckpts/{BIG}").exists()
        filler.unlink()
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, "".join(seen) + out + err
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()


def test_a_file_that_waits_in_vain_ends_not_done_with_a_clear_message(full_world):
    world, _ = full_world
    env = {"WANDOWN_DISK_POLL": "0.1", "WANDOWN_DISK_WAIT": "0.5"}
    result = world.run("--download", f"ckpts/{BIG}", "--force", extra_env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Waiting for disk space" in result.stdout
    assert "not started: " in result.stdout and "free space and run again" in result.stdout
    assert not world.path(f"ckpts/{BIG}").exists()
