"""Small Wan2GP installs for tests, and the path of the real definitions in ../shared."""

from __future__ import annotations

import json
import os
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "wan2gp"
HUB = "https://huggingface.co"


def url(repo: str, path: str) -> str:
    return f"{HUB}/{repo}/resolve/main/{path}"


def make_install(
    root: Path, defaults: dict, finetunes: dict | None = None, wgp_config: dict | None = None
) -> Path:
    """Write a Wan2GP-shaped folder: defaults/, finetunes/, ckpts/, maybe wgp_config.json."""
    (root / "defaults").mkdir(parents=True, exist_ok=True)
    (root / "ckpts").mkdir(exist_ok=True)
    for model_id, model in defaults.items():
        write_definition(root / "defaults" / f"{model_id}.json", model)
    for model_id, model in (finetunes or {}).items():
        (root / "finetunes").mkdir(exist_ok=True)
        write_definition(root / "finetunes" / f"{model_id}.json", model)
    if wgp_config is not None:
        (root / "wgp_config.json").write_text(json.dumps(wgp_config))
    return root


def write_definition(path: Path, model: dict | str) -> None:
    text = model if isinstance(model, str) else json.dumps({"model": model}, indent=1)
    path.write_text(text)


def real_install(tmp_path: Path, commit: str) -> Path:
    """Return a Wan2GP root whose defaults/ is the real catalog at commit (linked, not copied)."""
    root = tmp_path / f"Wan2GP-{commit}"
    root.mkdir()
    os.symlink(SHARED / commit / "defaults", root / "defaults")
    (root / "ckpts").mkdir()
    return root
