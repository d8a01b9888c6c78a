"""installd.sh: what it says where it cannot set up, and that a second run changes nothing."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


def fake_python(folder: Path, script: str) -> Path:
    path = folder / "python-fake"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def run_installd(folder: Path, python: Path, *args: str) -> subprocess.CompletedProcess:
    shutil.copy(PROJECT / "installd.sh", folder / "installd.sh")
    return subprocess.run(
        ["bash", str(folder / "installd.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHON": str(python)},
    )


def test_too_old_a_python_is_named(tmp_path):
    # the version check exits 1 (too old); "-V" prints the version the message quotes
    python = fake_python(tmp_path, 'case "$1" in -V) echo "Python 3.8.10";; *) exit 1;; esac\n')
    result = run_installd(tmp_path, python)
    assert result.returncode == 1
    assert "Python 3.10 or newer" in result.stderr and "3.8.10" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_a_missing_venv_module_says_what_to_install(tmp_path):
    # passes the version check (exit 0), fails "import venv, ensurepip"
    python = fake_python(tmp_path, 'case "$2" in *ensurepip*) exit 1;; *) exit 0;; esac\n')
    result = run_installd(tmp_path, python)
    assert result.returncode == 1
    assert "python3-venv" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_unknown_option_is_refused(tmp_path):
    result = run_installd(tmp_path, Path("/bin/false"), "--bogus")
    assert result.returncode == 2 and "--bogus" in result.stderr


def test_a_second_run_installs_nothing():
    venv = PROJECT / ".venv" / "bin" / "python"
    if not venv.exists():
        pytest.skip("only where the quick start already made .venv")
    result = subprocess.run(
        ["bash", str(PROJECT / "installd.sh"), "--dev"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT,
    )
    assert result.returncode == 0, result.stderr
    assert ".venv already exists" in result.stdout
    assert "nothing to install" in result.stdout
