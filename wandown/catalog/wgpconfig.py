"""Read the Wan2GP settings that change which files a model needs, as wgp.py reads them.

wgp.py ~2537-2566 (8681e9f): with ``--config DIR`` Wan2GP reads ``DIR/wgp_config.json``, or the
one in its own folder while DIR has none; a relative DIR is taken from the Wan2GP folder (its
working folder). Settings it does not find take the defaults it writes for a new install.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wandown.jsonfile import read_or_problem

WGP_CONFIG = "wgp_config.json"
DEFAULT_CHECKPOINTS_PATHS = ("ckpts", ".")
DEFAULT_LORA_ROOT = "loras"
DEPTH_VARIANTS = ("vitl", "vitb", "da3_metric_large")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # no path holds these; NUL crashes stat()


@dataclass(frozen=True)
class WanSettings:
    """The Wan2GP settings that decide which files each model loads and where they go.

    ``bf16_supported`` is the GPU's answer (compute capability 8 or more), not a wgp_config key.
    """

    transformer_quantization: str = "int8"
    transformer_dtype_policy: str = ""
    text_encoder_quantization: str = "int8"
    checkpoints_paths: tuple[str, ...] = DEFAULT_CHECKPOINTS_PATHS
    loras_root: str = DEFAULT_LORA_ROOT
    depth_anything_v2_variant: str = "vitl"
    matanyone_version: str = "v1"
    transformer_types: tuple[str, ...] = ()  # the models the user keeps in Wan2GP's list
    bf16_supported: bool = True
    source: Path | None = None  # the wgp_config.json read, None when there was none


def config_path(root: Path, config_dir: Path | None = None) -> Path:
    """Return the wgp_config.json Wan2GP reads: config_dir's when it has one, else root's."""
    if config_dir is not None:
        candidate = (root / config_dir) / WGP_CONFIG  # an absolute config_dir stays as it is
        if candidate.is_file():
            return candidate
    return root / WGP_CONFIG


def normalize_matanyone(value: Any) -> str:
    """Return the MatAnyone choice (model_assets.py ``normalize_matanyone_version``)."""
    text = str(value).strip().lower()
    if text in ("sam3", "sam", "sam3.1"):
        return "sam3"
    if text in ("2", "v2", "matanyone2"):
        return "v2"
    return "v1"


def _checkpoints(value: Any) -> tuple[str, ...] | None:
    """Return the roots as files_locator.set_checkpoints_paths keeps them, None if unusable."""
    if value is None or value == []:
        return DEFAULT_CHECKPOINTS_PATHS
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    roots = tuple(v.strip() for v in value if v.strip())
    if not roots or any(_CONTROL.search(v) for v in roots):
        return None
    return roots


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _lora_root(value: Any) -> str | None:
    if value is None or value == "":
        return DEFAULT_LORA_ROOT  # wgp.py get_lora_root: an empty root means the default
    if not isinstance(value, str) or _CONTROL.search(value):
        return None
    return value  # taken as it is, spaces included, as wgp.py get_lora_root does


def _model_ids(value: Any) -> tuple[str, ...] | None:
    """Return the model ids of Wan2GP's model list (empty: every model), None if not a list."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(dict.fromkeys(v for v in value if v and not _CONTROL.search(v)))


def _depth(value: Any) -> str | None:
    return value if value in DEPTH_VARIANTS else None


_READERS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "transformer_quantization": (_text, "a string such as int8, fp8 or bf16"),
    "transformer_dtype_policy": (_text, 'a string: "" (auto), "bf16" or "fp16"'),
    "text_encoder_quantization": (_text, "a string such as int8 or bf16"),
    "checkpoints_paths": (_checkpoints, "a list of folder names"),
    "loras_root": (_lora_root, "a folder name"),
    "depth_anything_v2_variant": (_depth, f"one of {', '.join(DEPTH_VARIANTS)}"),
    "matanyone_version": (lambda v: normalize_matanyone(v), "v1, v2 or sam3"),
    "transformer_types": (_model_ids, "a list of model ids"),
}


def printable_value(value: Any) -> str:
    """Return a JSON value as the notice quotes it: short, one line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_settings(
    root: Path, config_dir: Path | None = None, bf16_supported: bool = True
) -> tuple[WanSettings, list[str]]:
    """Read the settings from Wan2GP's wgp_config.json, with Wan2GP's defaults where absent.

    A file that cannot be read is named and left as it is; every setting then takes its default.
    """
    notices: list[str] = []
    if config_dir is not None and not (root / config_dir).is_dir():
        notices.append(
            f"Wan2GP config folder {root / config_dir} does not exist; reading "
            f"{root / WGP_CONFIG} as Wan2GP would"
        )
    path = config_path(root, config_dir)
    defaults = WanSettings(bf16_supported=bf16_supported)
    if not os.path.lexists(path):
        return defaults, notices
    data, problem = read_or_problem(path)
    if problem is None and not isinstance(data, dict):
        problem = "it is not a JSON object"
    if problem is not None:
        notices.append(
            f"ignored {path}: {problem}; using Wan2GP's default settings (the file is left as "
            "it is; fix it so that wandown and Wan2GP read the same settings)"
        )
        return defaults, notices
    values: dict[str, Any] = {}
    for key, (reader, expected) in _READERS.items():
        if key not in data:
            continue
        value = reader(data[key])
        if value is None:
            default = getattr(defaults, key)
            notices.append(
                f"{path}: '{key}' has an unexpected value {printable_value(data[key])} (it must "
                f"be {expected}); using {default!r}"
            )
            continue
        values[key] = value
    return WanSettings(bf16_supported=bf16_supported, source=path, **values), notices
