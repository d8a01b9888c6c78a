"""Read Wan2GP's model definitions and settings from an install, reporting what is broken."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandown.jsonfile import JSONFileError, read_json

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # no path holds these; NUL crashes stat()
DEFAULT_SETTINGS = {
    "transformer_quantization": "int8",
    "transformer_dtype_policy": "",
    "text_encoder_quantization": "int8",
    "checkpoints_paths": ["ckpts", "."],
}


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


@dataclass(frozen=True)
class WanSettings:
    """The Wan2GP settings that decide which variant of each file is loaded."""

    transformer_quantization: str = "int8"
    transformer_dtype_policy: str = ""
    text_encoder_quantization: str = "int8"
    checkpoints_paths: tuple[str, ...] = ("ckpts", ".")

    @property
    def dtype(self) -> str:
        """Return the transformer dtype: fp16 when asked for, else bf16 (current GPUs)."""
        return "fp16" if "fp16" in self.transformer_dtype_policy.lower() else "bf16"


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        return read_json(path), None
    except OSError as exc:
        return None, f"cannot read it ({exc.strerror})"
    except JSONFileError as exc:
        where = f"line {exc.line} column {exc.column}: " if exc.line is not None else ""
        return None, f"{where}{exc.reason}"


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
        data, problem = _read_json(path)
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


def read_settings(root: Path) -> tuple[WanSettings, list[str]]:
    """Read the variant settings from root/wgp_config.json, with Wan2GP's defaults when absent."""
    path = root / "wgp_config.json"
    if not path.exists():
        return WanSettings(), []
    data, problem = _read_json(path)
    if problem is None and not isinstance(data, dict):
        problem = "it is not a JSON object"
    if problem is not None:
        return WanSettings(), [f"ignored {path}: {problem}; using Wan2GP's default settings"]
    notices = []
    values: dict[str, Any] = {}
    for key, default in DEFAULT_SETTINGS.items():
        value = data.get(key, default)
        if key == "checkpoints_paths":
            ok = (
                isinstance(value, list)
                and value
                and all(isinstance(v, str) and not _CONTROL.search(v) for v in value)
            )
            value = tuple(value) if ok else tuple(default)
        else:
            ok = isinstance(value, str)
            value = value if ok else default
        if not ok:
            notices.append(f"{path}: '{key}' has an unexpected value; using {default!r}")
        values[key] = value
    return WanSettings(**values), notices
