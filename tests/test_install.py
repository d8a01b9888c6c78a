"""Installing and starting wandown the ways the README promises."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10: the same parser, as a package
    tomllib = pytest.importorskip("tomli")

from tests.wan2gp_fixtures import make_install, url
from wandown import __version__

PROJECT = Path(__file__).resolve().parent.parent


def test_version_matches_the_package_metadata():
    meta = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    assert meta["project"]["version"] == __version__
    assert meta["project"]["dependencies"] == ["urllib3>=1.26", "blake3>=0.3"]
    assert meta["project"]["scripts"]["wandown"] == "wandown.cli:main"


@pytest.mark.skipif(
    importlib.util.find_spec("setuptools") is None or importlib.util.find_spec("wheel") is None,
    reason="building a wheel offline needs setuptools and wheel",
)
def test_the_wheel_carries_the_code_side_data_and_the_command(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(tmp_path),
            str(PROJECT),
        ],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )
    [wheel] = tmp_path.glob("wandown-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "wandown/data/code_defaults.json" in names
    assert "wandown/localhub/__main__.py" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )
    assert "wandown = wandown.cli:main" in entry_points


def test_runs_without_blake3_with_a_notice(tmp_path):
    """A server with only the distribution's urllib3: no blake3 package at all."""
    root = make_install(
        tmp_path / "Wan2GP",
        {"m": {"architecture": "x", "URLs": [url("o/r", "m.safetensors")]}},
    )
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "some.bin").write_bytes(b"x" * 10)
    script = str(PROJECT / "wandown.py")
    launcher = (
        "import runpy, sys; sys.modules['blake3'] = None; "
        f"sys.argv = ['wandown.py'] + sys.argv[1:]; runpy.run_path({script!r}, run_name='__main__')"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            launcher,
            "--download",
            "missing",
            "--hub-dir",
            str(hub),
            "--wan2gp-dir",
            str(root / "ckpts"),
            "--offline",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 1), result.stderr
    assert "blake3" in result.stderr.lower()
