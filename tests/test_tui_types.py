"""The interface's modules stay mypy --strict clean (curses is typed by typeshed's stubs)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_every_tui_module_is_mypy_strict_clean(tmp_path: Path) -> None:
    # Imported modules outside wandown/tui/ are read for their types, not judged here.
    command = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent"]
    command += ["--python-version", "3.10", "--cache-dir", str(tmp_path / "cache"), "wandown/tui"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
