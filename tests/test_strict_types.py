"""What `mypy --strict` found in the leaf and hub layers, and the check that keeps them strict."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from wandown.hub import Wanted, scan_hub

PROJECT = Path(__file__).resolve().parent.parent
STRICT = [
    "wandown/digests.py",
    "wandown/hub",
    "wandown/localhub",
    "wandown/interrupts.py",
    "wandown/config.py",
    "wandown/fsutil.py",
    "wandown/jsonfile.py",
    "wandown/safetext.py",
    "wandown/destination.py",
    "wandown/units.py",
    "wandown/errors.py",
    "wandown/catalog/__init__.py",
    "wandown/catalog/definitions.py",
    "wandown/catalog/variants.py",
    "wandown/catalog/codedefaults.py",
]


@pytest.mark.slow
def test_the_leaf_and_hub_layers_are_mypy_strict_clean() -> None:
    """pyproject.toml's [tool.mypy] (strict, Python 3.10) over the modules made strict so far."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e .[dev])")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", *STRICT],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_damaged_sidecar_digest_is_not_taken_as_known(tmp_path: Path) -> None:
    """A sidecar value that is not a string counted as known: the file was never read again,
    so never proven, and the download it would have spared ran every time."""
    hub = tmp_path / "hub"
    hub.mkdir()
    data = b"vae weights" * 1000
    (hub / "vae.safetensors").write_bytes(data)
    sidecar = tmp_path / "sidecar.json"
    wanted = Wanted(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    assert wanted in scan_hub(hub, sidecar).match([wanted])

    saved = json.loads(sidecar.read_text())
    for entry in saved["files"].values():
        entry["sha256"] = 5
    sidecar.write_text(json.dumps(saved))
    assert wanted in scan_hub(hub, sidecar).match([wanted])
