"""Read Wan2GP's model definitions from an install, reporting what is broken."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandown.catalog.wgpconfig import WanSettings, read_settings
from wandown.jsonfile import read_or_problem

__all__ = ["Definition", "WanSettings", "read_definitions", "read_settings"]


@dataclass
class Definition:
    """One model id's merged ``model`` object and where it came from."""

    model_id: str
    model: dict[str, Any]
    sources: list[Path] = field(default_factory=list)

    @property
    def name(self) -> str:
        name = self.model.get("name")
        return name if isinstance(name, str) else self.model_id

    @property
    def architecture(self) -> str | None:
        arch = self.model.get("architecture")
        return arch if isinstance(arch, str) else None


def _definition_files(root: Path, plugin_folders: Sequence[str]) -> list[Path]:
    """Return every definition file in Wan2GP's order: the enabled plugins' (by absolute path,
    so first), then defaults/, then finetunes/ (wgp.py sorts them all together)."""
    plugin_files = sorted(str(p) for folder in plugin_folders for p in Path(folder).glob("*.json"))
    files = [Path(p) for p in plugin_files]
    for folder in ("defaults", "finetunes"):
        directory = root / folder
        if directory.is_dir():
            files += sorted(directory.glob("*.json"))
    return files


def read_definitions(
    root: Path, plugin_folders: Sequence[str] = ()
) -> tuple[dict[str, Definition], list[str]]:
    """Read plugins' definitions, defaults/ then finetunes/; a later file replaces keys."""
    definitions: dict[str, Definition] = {}
    notices: list[str] = []
    for path in _definition_files(root, plugin_folders):
        data, problem = read_or_problem(path)
        if problem is None and not (isinstance(data, dict) and isinstance(data.get("model"), dict)):
            problem = 'it has no "model" object'
        if problem is not None:
            notices.append(f"skipped definition {path}: {problem}")
            continue
        model_id = path.stem
        existing = definitions.get(model_id)
        if existing is None:
            definitions[model_id] = Definition(model_id, dict(data["model"]), [path])
        else:
            existing.model.update(data["model"])
            existing.sources.append(path)
    return definitions, notices
