"""The real program from the command line: config handling and --list, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.wan2gp_fixtures import SHARED, make_install, url

PROJECT = Path(__file__).resolve().parent.parent
R = "owner/repo"


def run(args, cwd, env=None):
    """Run wandown offline: these tests need no Hub, and must never reach the real one."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    result = subprocess.run(
        [sys.executable, str(PROJECT / "wandown.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def install(tmp_path):
    return make_install(
        tmp_path / "Wan2GP",
        {
            "t2v": {
                "architecture": "t2v",
                "URLs": [
                    url(R, "t2v_bf16.safetensors"),
                    url(R, "t2v_quanto_bf16_int8.safetensors"),
                ],
            }
        },
    )


@pytest.fixture
def workdir(tmp_path, install):
    work = tmp_path / "wandown"
    work.mkdir()
    return work


def test_first_run_creates_the_config_and_lists(workdir):
    result = run(["--list", "--hub-dir", ""], workdir)
    assert result.returncode == 0, result.stderr
    config = json.loads((workdir / "config.json").read_text())
    assert config["hub_directory"] == "/mnt/llm/hub/models"
    assert config["bandwidth_limit_kb"] == 90000
    assert config["wan2gp_directory"] == "../Wan2GP/ckpts"
    assert "created" in result.stderr and "config.json" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "✓",
        "Config",
        "Model",
        "File",
        "Size",
        "(GB)",
        "Status",
        "Destination",
    ]
    assert any("t2v_quanto_bf16_int8.safetensors" in line and "Missing" in line for line in lines)
    assert not any("t2v_bf16.safetensors" in line for line in lines)
    # the umt5 text encoder comes from the code-side defaults of t2v
    assert any("models_t5_umt5-xxl-enc-quanto_int8.safetensors" in line for line in lines)


def test_relative_paths_are_resolved_from_the_config_folder(tmp_path, install):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "my.json").write_text(
        json.dumps({"wan2gp_directory": "../Wan2GP/ckpts", "hub_directory": ""})
    )
    result = run(["--config-file", str(conf / "my.json"), "--list", "--json"], elsewhere)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)


def test_json_listing_and_filters(workdir, install):
    (install / "ckpts" / "t2v_quanto_bf16_int8.safetensors").write_bytes(b"x")
    result = run(["--list", "--json", "--hub-dir", ""], workdir)
    records = {r["dest"]: r for r in json.loads(result.stdout)}
    main = records["ckpts/t2v_quanto_bf16_int8.safetensors"]
    assert main["status"] == "exists"
    assert main["needed_by"] == ["t2v"]
    assert main["repo"] == R and main["revision"] == "main"
    assert main["path"] == "t2v_quanto_bf16_int8.safetensors"
    assert "ckpts/t2v_bf16.safetensors" not in records

    missing = json.loads(run(["--list", "--json", "--missing", "--hub-dir", ""], workdir).stdout)
    assert all(r["status"] == "missing" for r in missing)
    assert "ckpts/t2v_quanto_bf16_int8.safetensors" not in {r["dest"] for r in missing}

    every = json.loads(run(["--list", "--json", "--all-variants", "--hub-dir", ""], workdir).stdout)
    variant = {r["dest"]: r for r in every}["ckpts/t2v_bf16.safetensors"]
    assert variant["needed_by"] == [] and variant["listed_by"] == ["t2v"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"hub_directory": "x",\n  "bandwidth_limit_kb": 5,,}', ":2:"),
        ('{"bandwidth_limit_kb": "fast"}', "'bandwidth_limit_kb' must be a number"),
        ('{"wan2gp_directory": 3}', "'wan2gp_directory' must be a string"),
        ("[1, 2]", "JSON object"),
        ('{"jobs": 0}', "'jobs' must be 1 or more"),
    ],
)
def test_broken_config_is_reported_and_kept(workdir, text, expected):
    (workdir / "config.json").write_text(text)
    result = run(["--list"], workdir)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "config.json" in result.stderr
    assert (workdir / "config.json").read_text() == text


def test_unknown_config_key_is_a_warning(workdir):
    (workdir / "config.json").write_text(json.dumps({"hub_directory": "", "colour": "blue"}))
    result = run(["--list"], workdir)
    assert result.returncode == 0
    assert "unknown key 'colour'" in result.stderr


def test_missing_wan2gp_folder_names_the_path(tmp_path):
    result = run(
        ["--list", "--wan2gp-dir", str(tmp_path / "nope" / "ckpts"), "--hub-dir", ""], tmp_path
    )
    assert result.returncode == 2
    assert str(tmp_path / "nope") in result.stderr
    assert "--wan2gp-dir" in result.stderr


def test_version_and_help(tmp_path):
    version = run(["--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("wandown ")
    helptext = run(["--help"], tmp_path)
    for flag in ("--limit", "--no-limit", "--hub-dir", "--config-file", "--wan2gp-dir", "--list"):
        assert flag in helptext.stdout


def test_python_dash_m_works(workdir):
    result = subprocess.run(
        [sys.executable, "-m", "wandown", "--list", "--hub-dir", ""],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(PROJECT), "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/wan2gp is not here")
def test_full_catalog_list_from_the_command_line(tmp_path):
    root = tmp_path / "Wan2GP"
    root.mkdir()
    (root / "defaults").symlink_to(SHARED / "8681e9f" / "defaults")
    result = run(
        ["--list", "--json", "--wan2gp-dir", str(root / "ckpts"), "--hub-dir", ""], tmp_path
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert len(records) > 600
    assert len({r["dest"] for r in records}) == len(records)


def test_demo_refuses_flags_that_would_touch_real_folders(tmp_path):
    for flags in (["--wan2gp-dir", "x"], ["--hub-dir", "y"], ["--dedupe", "--yes"]):
        result = run(
            ["--demo", "--list", *flags] if "--dedupe" not in flags else ["--demo", *flags],
            tmp_path,
        )
        assert result.returncode == 2
        assert "--demo runs on its own sandbox" in result.stderr
    assert not (tmp_path / "config.json").exists()


@pytest.mark.parametrize("limit", ["nan", "inf", "-5", "0.0001", "1e300"])
def test_a_limit_that_is_not_a_number_of_kb_is_refused(workdir, limit):
    result = run(["--list", "--limit", limit], workdir)
    assert result.returncode == 2
    assert "--limit must be a number of KB/s" in result.stderr


@pytest.mark.parametrize("limit", ["-5", "0.000001", "1e300"])
def test_a_limit_in_the_config_that_no_download_could_keep_is_refused(workdir, limit):
    """The file's value goes through the same one check as --limit, with the file named."""
    (workdir / "config.json").write_text(f'{{"bandwidth_limit_kb": {limit}}}')
    result = run(["--list", "--hub-dir", ""], workdir)
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert "config.json: 'bandwidth_limit_kb' must be a number of KB/s from 1 to" in line
    assert "or 0 for no limit" in line


@pytest.mark.parametrize("limit", ["0", "null", "1", "90000"])
def test_a_limit_in_the_config_within_range_is_used(workdir, limit):
    (workdir / "config.json").write_text(f'{{"bandwidth_limit_kb": {limit}}}')
    result = run(["--list", "--hub-dir", ""], workdir)
    assert result.returncode == 0, result.stderr


def test_nan_in_the_config_is_refused(workdir):
    (workdir / "config.json").write_text('{"bandwidth_limit_kb": NaN}')
    result = run(["--list"], workdir)
    assert result.returncode == 2
    assert "config.json:1:24: NaN is not a JSON number" in result.stderr


def test_reset_cache_alone_in_a_script_clears_and_exits(workdir, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "metadata.json").write_text("{}")
    result = run(["--reset-cache", "--hub-dir", ""], workdir, env={"WANDOWN_CACHE_DIR": str(cache)})
    assert result.returncode == 0, result.stderr
    assert "cleared the Hub metadata cache" in result.stderr
    assert not (cache / "metadata.json").exists()
