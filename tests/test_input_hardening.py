"""Every input wandown reads or prints, made hostile: the real program must say what is wrong
with which file and go on with the rest, never crash, never let a name drive the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.wan2gp_fixtures import make_install, url, write_definition
from tests.world import BIG, build_world
from wandown.engine.partial import PartialPaths
from wandown.hub.sidecar import sidecar_path_for

PROJECT = Path(__file__).resolve().parent.parent
R = "owner/repo"
GOOD = "good_model.safetensors"
DEEP = "[" * 100_000
HUGE_INT = '{"model": {"size": 1' + "0" * 5000 + "}}"


def run(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run wandown offline (no Hub needed); bytes out, so any encoding can be checked."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    result = subprocess.run(
        [sys.executable, str(PROJECT / "wandown.py"), *args],
        cwd=cwd,
        capture_output=True,
        timeout=60,
        env=env,
    )
    assert b"Traceback" not in result.stderr + result.stdout, result.stderr.decode()
    assert result.returncode != 70, result.stderr.decode()
    return result


def text(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    root = tmp_path / "Wan2GP"
    make_install(root, {"goodmodel": {"architecture": "t2v", "URLs": [url(R, GOOD)]}})
    config = {"wan2gp_directory": str(root / "ckpts"), "hub_directory": ""}
    (work / "config.json").write_text(json.dumps(config))
    return work


def install_of(workdir: Path) -> Path:
    return Path(json.loads((workdir / "config.json").read_text())["wan2gp_directory"]).parent


def listed_dests(workdir: Path) -> list[str]:
    result = run(["--list", "--json", "--all-variants"], workdir)
    assert result.returncode == 0, text(result.stderr)
    return [record["dest"] for record in json.loads(result.stdout)]


# -- finding 9 and 16: a name that cannot be a file name makes one entry invalid ---------------

BAD_NAMES = {
    "nul": "bad%00name.safetensors",
    "newline": "forged%0aComplete.safetensors",
    "escape": "evil%1b%5b2J.safetensors",
    "c1": "c1%c2%9bname.safetensors",
    "slash": "sub%2Fname.safetensors",
    "dotdot": "%2E%2E",
    "dot": "sub/.",
    "empty": "sub/",
    "too_long": "x" * 300 + ".safetensors",
}


@pytest.mark.parametrize("bad", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_a_url_that_cannot_name_a_file_makes_only_that_entry_invalid(workdir, bad):
    definition = install_of(workdir) / "defaults" / "badmodel.json"
    write_definition(
        definition, {"architecture": "t2v", "URLs": [url(R, "other.safetensors"), url(R, bad)]}
    )
    for args in (["--list"], ["--list", "--json"], ["--download", "goodmodel", "--dry-run"]):
        result = run(args, workdir)
        assert result.returncode == 0, (args, text(result.stderr))
        stderr = text(result.stderr)
        notice = next(line for line in stderr.splitlines() if "refused" in line)
        assert str(definition) in notice and "'URLs'" in notice, notice
        assert GOOD in text(result.stdout)
    dests = listed_dests(workdir)
    assert "ckpts/other.safetensors" in dests
    assert not any(dest in ("ckpts", "ckpts/sub") or "\x00" in dest for dest in dests), dests
    assert all(len(dest.rsplit("/", 1)[-1]) <= 255 for dest in dests)


def test_a_checkpoint_path_with_a_nul_falls_back_to_the_default(workdir):
    config = {"checkpoints_paths": ["ckpts", "bad\u0000path"]}
    (install_of(workdir) / "wgp_config.json").write_text(json.dumps(config))
    result = run(["--list"], workdir)
    assert result.returncode == 0, text(result.stderr)
    assert "'checkpoints_paths' has an unexpected value" in text(result.stderr)
    assert GOOD in text(result.stdout)


# -- finding 10: hostile JSON in every file wandown reads --------------------------------------


@pytest.mark.parametrize("content", [DEEP, HUGE_INT, '{"model": {"x": NaN}}'])
def test_a_hostile_definition_is_skipped_and_the_rest_loads(workdir, content):
    bad = install_of(workdir) / "finetunes" / "hostile.json"
    bad.parent.mkdir(exist_ok=True)
    bad.write_text(content)
    result = run(["--list"], workdir)
    assert result.returncode == 0, text(result.stderr)
    assert f"skipped definition {bad}: line 1 column" in text(result.stderr)
    assert GOOD in text(result.stdout)


@pytest.mark.parametrize("content", [DEEP, HUGE_INT])
def test_a_hostile_wgp_config_is_ignored_with_a_notice(workdir, content):
    (install_of(workdir) / "wgp_config.json").write_text(content)
    result = run(["--list"], workdir)
    assert result.returncode == 0, text(result.stderr)
    assert "wgp_config.json: line 1 column" in text(result.stderr)
    assert GOOD in text(result.stdout)


@pytest.mark.parametrize(
    ("content", "where"),
    [(DEEP, "config.json:1:201: nested deeper"), ('{"jobs": 1' + "0" * 5000 + "}", "1:10")],
)
def test_a_hostile_config_json_is_exit_2_with_line_and_column(workdir, content, where):
    (workdir / "config.json").write_text(content)
    result = run(["--list"], workdir)
    assert result.returncode == 2
    assert where in text(result.stderr)
    assert len(text(result.stderr).splitlines()) == 1


def test_a_hostile_metadata_cache_is_moved_aside_and_the_listing_goes_on(workdir, tmp_path):
    cache = tmp_path / "wandown-cache"
    cache.mkdir(exist_ok=True)
    (cache / "metadata.json").write_text(DEEP)
    result = run(["--list"], workdir, env={"WANDOWN_CACHE_DIR": str(cache)})
    assert result.returncode == 0, text(result.stderr)
    assert GOOD in text(result.stdout)
    assert "was unreadable" in text(result.stderr) and "nested deeper" in text(result.stderr)
    assert not (cache / "metadata.json").exists() or (cache / "metadata.json").read_text() != DEEP


@pytest.fixture
def world(tmp_path, localhub):
    return build_world(tmp_path, localhub, big_size=200_000)


def test_a_hostile_hash_sidecar_is_moved_aside_and_the_hub_still_links(world):
    good = world.hub_dir / "renamed.bin"
    good.write_bytes(world.served_file(BIG).read_bytes())
    sidecar = sidecar_path_for(world.hub_dir)
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    sidecar.write_text(DEEP)
    result = world.run("--download", BIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert world.path(f"ckpts/{BIG}").is_symlink()
    assert "hash sidecar is not valid JSON" in result.stderr
    assert sidecar.with_name(sidecar.name + ".broken").read_text() == DEEP


@pytest.mark.parametrize("content", [DEEP, '{"version": 1, "size": 1' + "0" * 5000 + "}"])
def test_a_hostile_state_file_is_dropped_and_the_download_completes(world, content):
    paths = PartialPaths.for_dest(world.path(f"ckpts/{BIG}"))
    paths.folder.mkdir(parents=True)
    paths.state.write_text(content)
    paths.part.write_bytes(b"junk")
    for _ in range(2):  # before the fix it failed on this run and every later one
        result = world.run("--download", BIG)
        assert result.returncode == 0, result.stdout + result.stderr
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()


# -- finding 11: names never reach the terminal raw --------------------------------------------

RAW_CONTROLS = [bytes([c]) for c in (*range(0x20), 0x7F) if c != 0x0A] + ["\x9b".encode()]


def test_hostile_names_are_shown_escaped_in_list_and_notices(workdir):
    install = install_of(workdir)
    write_definition(install / "defaults" / "evil\x1b[31m.json", {"URLs": [url(R, GOOD)]})
    write_definition(
        install / "defaults" / "forger.json",
        {"URLs": [url(R, "x%0aComplete%20ckpts%2Fok.safetensors"), url(R, "y%1b%5b2J.bin")]},
    )
    result = run(["--list", "--all-variants"], workdir)
    assert result.returncode == 0, text(result.stderr)
    out, err = result.stdout, result.stderr
    for raw in RAW_CONTROLS:
        assert raw not in out and raw not in err, raw
    assert b"evil\\x1b[31m" in out  # the model id in the Config column
    assert b"x\\nComplete" in err and b"y\\x1b[2J.bin" in err
    assert not any(line.startswith(b"Complete") for line in err.splitlines())
    as_json = run(["--list", "--json"], workdir)
    assert "evil\x1b[31m" in {m for r in json.loads(as_json.stdout) for m in r["needed_by"]}


def test_a_hub_file_with_an_escape_in_its_name_is_shown_escaped_when_linked(world):
    evil = world.hub_dir / "evil\x1b]0;owned\x07.bin"
    evil.write_bytes(world.served_file(BIG).read_bytes())
    result = world.run("--download", BIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.readlink(world.path(f"ckpts/{BIG}")) == str(evil)
    assert "\x1b" not in result.stdout + result.stderr
    assert "evil\\x1b]0;owned\\x07.bin" in result.stdout


# -- finding 12: any stdout encoding -----------------------------------------------------------

UNICODE_NAME = "vidéo_日本語_模型.safetensors"


@pytest.mark.parametrize(
    "env",
    [
        {"PYTHONIOENCODING": "ascii", "PYTHONUTF8": "0"},
        {"PYTHONIOENCODING": "latin-1", "PYTHONUTF8": "0"},
        {"LC_ALL": "C", "PYTHONIOENCODING": ""},
    ],
    ids=["ascii", "latin-1", "C-locale"],
)
def test_list_works_on_any_stdout_encoding(workdir, env):
    definition = install_of(workdir) / "defaults" / "unicode.json"
    write_definition(definition, {"architecture": "t2v", "URLs": [url(R, UNICODE_NAME)]})
    table = run(["--list"], workdir, env=env)
    assert table.returncode == 0, text(table.stderr)
    assert b"\\u65e5" in table.stdout or UNICODE_NAME.encode() in table.stdout
    as_json = run(["--list", "--json"], workdir, env=env)
    assert as_json.returncode == 0, text(as_json.stderr)
    dests = [r["dest"] for r in json.loads(as_json.stdout)]
    assert f"ckpts/{UNICODE_NAME}" in dests


def test_a_name_the_file_system_encoding_cannot_hold_is_refused_not_a_crash(workdir):
    definition = install_of(workdir) / "defaults" / "unicode.json"
    write_definition(definition, {"architecture": "t2v", "URLs": [url(R, UNICODE_NAME)]})
    result = run(["--list"], workdir, env={"LC_ALL": "C", "PYTHONUTF8": "0"})
    assert result.returncode == 0, text(result.stderr)
    assert b"file name encoding cannot hold it" in result.stderr
    assert GOOD.encode() in result.stdout


# -- finding 13: a mistyped --config-file creates nothing --------------------------------------


def test_a_config_file_in_a_missing_folder_is_an_error_and_creates_nothing(workdir):
    target = workdir / "no" / "such" / "folder" / "config.json"
    result = run(["--list", "--config-file", str(target)], workdir)
    assert result.returncode == 2
    message = text(result.stderr)
    assert str(target) in message and "does not exist" in message
    assert len(message.splitlines()) == 1
    assert not (workdir / "no").exists()


def test_a_config_file_in_an_existing_folder_is_created(workdir):
    target = workdir / "other.json"
    result = run(["--list", "--config-file", str(target), "--hub-dir", ""], workdir)
    assert f"created {target}" in text(result.stderr)
    assert json.loads(target.read_text())["jobs"] == 2


def test_a_folder_suffix_with_a_control_character_makes_only_that_entry_invalid(workdir):
    definition = install_of(workdir) / "defaults" / "badmodel.json"
    entries = [url(R, "other.safetensors"), url(R, "x.safetensors") + "|bad\u0000dir"]
    write_definition(definition, {"architecture": "t2v", "URLs": entries, "loras": entries[1:]})
    result = run(["--list"], workdir)
    assert result.returncode == 0, text(result.stderr)
    refusals = [line for line in text(result.stderr).splitlines() if "refused" in line]
    assert {"'URLs'" in line or "'loras'" in line for line in refusals} == {True}
    assert len(refusals) == 2 and all("bad\\x00dir" in line for line in refusals)
    assert "ckpts/other.safetensors" in listed_dests(workdir)


def localhub(root: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "WANDOWN_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "wandown.localhub", str(root), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


@pytest.mark.parametrize("content", [DEEP, '{"gated": [1' + "0" * 5000 + "]}"])
def test_localhub_refuses_a_hostile_config_with_its_position(tmp_path, content):
    root = tmp_path / "models"
    root.mkdir()
    (root / ".localhub.json").write_text(content)
    result = localhub(root, tmp_path / "cache")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert ".localhub.json is not valid JSON" in result.stderr
    assert "nested deeper" in result.stderr or "number longer" in result.stderr


def test_localhub_starts_over_a_hostile_hash_cache(tmp_path):
    from wandown.localhub import LocalHub

    root = tmp_path / "models"
    (root / "acme" / "tiny").mkdir(parents=True)
    (root / "acme" / "tiny" / "a.bin").write_bytes(b"abc")
    cache = tmp_path / "hashes.json"
    cache.write_text(DEEP)
    with LocalHub(root, hash_cache=cache) as hub:
        assert hub.url.startswith("http://127.0.0.1:")
