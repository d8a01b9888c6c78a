"""--demo: the real program on its throw-away sandbox, and the sandbox's own promises."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from wandown import demo
from wandown.catalog import load_catalog
from wandown.localhub import LocalHub

PROJECT = Path(__file__).resolve().parent.parent
NOTICE = re.compile(r"demo: made-up models in (\S+) ")


@pytest.fixture
def user(tmp_path):
    """A user's machine: a working folder, a temp folder, a wandown cache that must stay empty."""
    home = tmp_path / "user"
    for name in ("work", "tmp", "cache"):
        (home / name).mkdir(parents=True)
    return home


def user_env(user: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HF_ENDPOINT"}
    env.update(TMPDIR=str(user / "tmp"), WANDOWN_CACHE_DIR=str(user / "cache"))
    return env


def wandown(user: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(PROJECT / "wandown.py"), *args],
        cwd=user / "work",
        env=user_env(user),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def start_wandown(user: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(PROJECT / "wandown.py"), *args],
        cwd=user / "work",
        env=user_env(user),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_stops_cleanly_on_sigterm(process: subprocess.Popen, user: Path) -> None:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "Traceback" not in out + err
    assert "interrupted" in err
    assert_untouched(user)


def sandbox_of(result: subprocess.CompletedProcess) -> Path:
    found = NOTICE.search(result.stderr)
    assert found, result.stderr
    return Path(found.group(1))


def assert_untouched(user: Path) -> None:
    """Nothing left in the temp folder, the user's cache and working folder as they were."""
    assert list((user / "tmp").iterdir()) == []
    assert list((user / "cache").iterdir()) == []
    assert list((user / "work").iterdir()) == []


def test_list_shows_the_demo_and_leaves_nothing_behind(user):
    result = wandown(user, "--demo", "--list")
    assert result.returncode == 0, result.stderr
    assert "loopback only" in result.stderr
    for name in (demo.T2V, demo.I2V, demo.HIGH, "demo_t2v_causvid_lora.safetensors"):
        assert name in result.stdout
    assert "models_t5_umt5-xxl-enc-quanto_int8.safetensors" in result.stdout
    assert re.search(r"\n44 files: 0 present .* 44 needed and missing", result.stdout)
    assert not sandbox_of(result).exists()
    assert_untouched(user)


def test_list_json_has_every_demo_file_with_hub_metadata(user):
    result = wandown(user, "--demo", "--list", "--json", "--all-variants")
    assert result.returncode == 0, result.stderr
    records = {r["dest"]: r for r in json.loads(result.stdout)}
    assert records[f"ckpts/{demo.T2V}"]["needed_by"] == [
        "demo_t2v",
        "demo_t2v_causvid",
        "demo_vace_14B",
    ]
    assert records[f"ckpts/{demo.LOW}"]["needed_by"] == ["demo_t2v_2_2", "demo_vace_14B_2_2"]
    assert records["ckpts/demo_t2v_14B_mbf16.safetensors"]["needed_by"] == []
    assert records["loras/wan/demo_t2v_causvid_lora.safetensors"]["role"] == "lora"
    assert records["ckpts/demo_vace_14B_module_quanto_mbf16_int8.safetensors"]["role"] == "module"
    assert records["ckpts/demo_clip_vision_h.safetensors"]["role"] == "preload"
    # The local Hub answered for every file, code-side ones on their real repo names included.
    for record in records.values():
        assert record["size"] == demo.demo_size(record["path"]), record["dest"]
        assert record["sha256"] or record["blob_sha1"], record["dest"]
    assert records[f"ckpts/{demo.T2V}"]["repo"] == demo.WAN21
    assert records["ckpts/Wan2.1_VAE.safetensors"]["repo"] == "DeepBeepMeep/Wan2.1"
    assert_untouched(user)


@pytest.mark.slow
def test_download_needed_links_the_copy_and_the_cache_and_refuses_the_decoy(user):
    result = wandown(user, "--demo", "--keep-demo", "--download", "needed", "--no-limit")
    folder = sandbox_of(result)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        hub = folder / "model-hub"
        assert f"Linked      ckpts/{demo.HIGH} -> {hub / demo.PLAIN_COPY}" in result.stdout
        assert f"Linked      ckpts/{demo.LOW} -> {hub / demo.HF_CACHE}/blobs/" in result.stdout
        assert f"Complete    ckpts/{demo.I2V}" in result.stdout
        assert f"Complete    ckpts/{demo.T2V}" in result.stdout
        assert "done: 44 files: 42 complete, 2 linked" in result.stdout
        linked = [line for line in result.stdout.splitlines() if line.startswith("Linked")]
        assert len(linked) == 2 and not [line for line in linked if demo.DECOY in line]
        assert f"Hashing     ckpts/{demo.I2V}: {hub / demo.DECOY}" in result.stdout
        i2v = folder / "Wan2GP" / "ckpts" / demo.I2V
        assert not i2v.is_symlink()
        assert i2v.read_bytes() == (folder / "served" / demo.WAN21 / demo.I2V).read_bytes()
        assert i2v.read_bytes() != (hub / demo.DECOY).read_bytes()
        assert f"demo sandbox kept in {folder}" in result.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert_untouched(user)


def test_keep_demo_keeps_the_folder_and_says_where(user):
    result = wandown(user, "--demo", "--keep-demo", "--list")
    assert result.returncode == 0, result.stderr
    folder = sandbox_of(result)
    assert f"demo sandbox kept in {folder}" in result.stderr
    assert folder.parent == user / "tmp"
    assert (folder / "config.json").is_file() and (folder / "README.txt").is_file()
    assert (folder / "Wan2GP" / "defaults" / "demo_t2v.json").is_file()
    # The sandbox's own cache holds the run's metadata; the user's cache is untouched.
    assert list((folder / "cache").iterdir())
    assert list((user / "cache").iterdir()) == []
    shutil.rmtree(folder)


@pytest.mark.slow
def test_sigterm_during_a_demo_download_removes_the_sandbox(user):
    process = start_wandown(user, "--demo", "--download", "needed")
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Downloading"):
            break
    time.sleep(0.5)
    assert_stops_cleanly_on_sigterm(process, user)


def test_sigterm_while_the_sandbox_is_built_removes_it(user):
    process = start_wandown(user, "--demo", "--list")
    # tempfile's own probe file may show up first; the sandbox folder is what counts.
    deadline = time.monotonic() + 30
    while not list((user / "tmp").glob("wandown-demo-*")) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert_stops_cleanly_on_sigterm(process, user)


def test_demo_flag_misuse_is_a_usage_error(user):
    result = wandown(user, "--keep-demo", "--list")
    assert result.returncode == 2
    assert "--keep-demo goes with --demo" in result.stderr


# -- the sandbox in-process -------------------------------------------------------------------


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Make tempfile create sandboxes under tmp_path/tmp."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_sandbox_is_a_clean_catalog_served_in_full(in_tmp, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_users_real_token")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = dict(os.environ)
    notices: list[str] = []
    with demo.demo_sandbox(keep=False, notice=notices.append) as sandbox:
        assert sandbox.folder.parent == in_tmp
        assert os.environ["WANDOWN_CACHE_DIR"] == str(sandbox.cache_dir)
        assert os.environ["HF_ENDPOINT"] == sandbox.endpoint
        assert sandbox.endpoint.startswith("http://127.0.0.1:")
        assert "HF_TOKEN" not in os.environ and "HF_HUB_OFFLINE" not in os.environ
        assert not Path(os.environ["HF_TOKEN_PATH"]).exists()

        catalog = load_catalog(sandbox.wan2gp_root)
        assert catalog.notices == []
        assert not [m for m in catalog.models.values() if m.problems or m.json_only]
        assert set(catalog.models) == {
            "demo_t2v",
            "demo_i2v",
            "demo_t2v_2_2",
            "demo_vace_14B",
            "demo_vace_14B_2_2",
            "demo_t2v_causvid",
        }
        for record in catalog.records:
            served = sandbox.served_dir / record.repo / record.path
            assert served.stat().st_size == demo.demo_size(record.path), record.dest
        needed = sum(demo.demo_size(r.path) for r in catalog.needed_records())
        assert 250 * demo.MB < needed < 400 * demo.MB

        config = json.loads(sandbox.config_file.read_text())
        assert config["bandwidth_limit_kb"] == demo.BANDWIDTH_LIMIT_KB
        assert (sandbox.config_file.parent / config["hub_directory"]) == sandbox.hub_dir
    assert not sandbox.folder.exists()
    assert dict(os.environ) == before
    assert notices == [notices[0]] and str(sandbox.folder) in notices[0]


def test_model_hub_holds_a_copy_a_cache_entry_and_a_decoy(in_tmp):
    with demo.demo_sandbox(keep=False, notice=lambda message: None) as sandbox:
        served = sandbox.served_dir
        hub = sandbox.hub_dir
        copy = (hub / demo.PLAIN_COPY).read_bytes()
        assert copy == (served / demo.WAN22 / demo.HIGH).read_bytes()

        cache = hub / demo.HF_CACHE
        commit = (cache / "refs" / "main").read_text()
        link = cache / "snapshots" / commit / demo.LOW
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))
        blob = Path(os.path.realpath(link))
        assert blob.parent == (cache / "blobs").resolve()
        assert blob.read_bytes() == (served / demo.WAN22 / demo.LOW).read_bytes()
        assert LocalHub(served).commit_of(demo.WAN22) == commit

        decoy = hub / demo.DECOY
        wanted = served / demo.WAN21 / demo.I2V
        assert decoy.name == wanted.name
        assert decoy.stat().st_size == wanted.stat().st_size
        assert decoy.read_bytes() != wanted.read_bytes()


def test_errors_and_interrupts_inside_remove_the_sandbox_and_restore_the_env(in_tmp, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    before = dict(os.environ)
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)), demo.demo_sandbox(False, lambda m: None) as sandbox:
            raise error
        assert not sandbox.folder.exists()
        assert dict(os.environ) == before
    assert list(in_tmp.iterdir()) == []


def test_keep_leaves_the_folder_and_names_it(in_tmp):
    notices: list[str] = []
    with demo.demo_sandbox(keep=True, notice=notices.append) as sandbox:
        pass
    assert sandbox.folder.is_dir()
    assert notices[-1] == f"demo sandbox kept in {sandbox.folder}"
    assert "kept on exit" in notices[0]


def test_a_full_disk_is_a_clear_error(in_tmp, monkeypatch):
    usage = shutil.disk_usage(in_tmp)
    monkeypatch.setattr(demo.shutil, "disk_usage", lambda path: usage._replace(free=10 * demo.MB))
    sandbox = demo.demo_sandbox(False, lambda m: None)
    with pytest.raises(demo.DemoError, match="needs about 1500 MB free"), sandbox:
        pass
    assert list(in_tmp.iterdir()) == []


def test_demo_files_are_deterministic_and_decoys_differ(tmp_path):
    first, again, other = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "c.pt"
    size = demo.BLOCK_SIZE * 2 + 123
    demo.write_demo_file(first, size, "seed")
    demo.write_demo_file(again, size, "seed")
    demo.write_demo_file(other, size, "decoy seed")
    assert first.stat().st_size == size
    assert first.read_bytes() == again.read_bytes() != other.read_bytes()
    text = tmp_path / "config.json"
    demo.write_demo_file(text, 5000, "owner/repo/config.json")
    assert text.stat().st_size == 5000 and text.read_text().startswith('{"wandown_demo"')
