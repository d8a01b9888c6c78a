"""The configuration file: defaults, validation and messages that point at the problem.

A broken file is reported and never overwritten; a missing one is created with the defaults.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandown.endpoints import Endpoint, from_config
from wandown.errors import ConfigError
from wandown.fsutil import atomic_write_json, is_inside
from wandown.jsonfile import JSONFileError, read_json
from wandown.units import bandwidth_limit_kb

DEFAULTS: dict[str, Any] = {
    "hub_directory": "/mnt/llm/hub/models",
    "bandwidth_limit_kb": 90000,
    "wan2gp_directory": "../Wan2GP/ckpts",
    "jobs": 2,
    "connections": 16,
    "min_free_gb": 10,
    "gpu_bf16": "auto",
    "_comment": (
        "Edit this file to customize downloader settings. "
        "Set hub_directory to empty string to disable hub features."
    ),
}

# key -> (accepted types, description used in messages, may be null)
_SCHEMA: dict[str, tuple[tuple[type, ...], str, bool]] = {
    "hub_directory": (
        (str, list),
        'a folder path, a list of folder paths, or "" to disable the hub',
        True,
    ),
    "bandwidth_limit_kb": ((int, float), "a number of KB/s (0 or null for no limit)", True),
    "wan2gp_directory": ((str,), "a string (the path of Wan2GP's ckpts folder)", False),
    "jobs": ((int,), "a whole number of files downloaded at once (1 or more)", False),
    "connections": ((int,), "a whole number: the most connections per file (1 or more)", False),
    "serve_token": ((str,), "a string (the token --serve asks for), or null for none", True),
    "endpoints": (
        (list,),
        'a list of URLs, e.g. ["http://proxy:8080", "https://huggingface.co"]',
        True,
    ),
    "min_free_gb": ((int, float), "a number of GB to keep free on every disk (0 or more)", False),
    "wan2gp_config_dir": ((str,), "a string (the folder given to Wan2GP as --config)", True),
    "gpu_bf16": ((bool, str), 'true, false or "auto" (ask nvidia-smi)', True),
    "_comment": ((str, list), "a string", True),
}
MAX_FREE_GB = 1_000_000  # a petabyte: anything above is a typo
GPU_BF16_WORDS = {"auto": None, "yes": True, "no": False, "true": True, "false": False}


@dataclass
class Config:
    """The settings in force: the file's values, resolved against the file's folder."""

    hub_directories: tuple[Path, ...]
    bandwidth_limit_kb: float | None
    wan2gp_directory: Path
    jobs: int
    connections: int
    min_free_gb: float = 10.0
    notices: list[str] = field(default_factory=list)
    serve_token: str | None = None
    endpoints: tuple[Endpoint, ...] = ()
    wan2gp_config_dir: Path | None = None  # Wan2GP's --config folder, when it is started so
    gpu_bf16: bool | None = None  # None: ask nvidia-smi

    @property
    def hub_directory(self) -> Path | None:
        """Return the first hub folder (the one messages about "the hub" mean), or None."""
        return self.hub_directories[0] if self.hub_directories else None

    @property
    def wan2gp_root(self) -> Path:
        """Return the Wan2GP install folder: the parent of the ckpts folder."""
        return self.wan2gp_directory.parent


def current_folder() -> Path:
    """Return the current folder, the base of every relative path given at start-up.

    Asked once, before anything resolves a path: a folder deleted (or unmounted) under the
    shell is then one clear message instead of a failure deep inside whatever asked first.
    """
    try:
        return Path(os.getcwd())
    except OSError as exc:
        raise ConfigError(
            f"the current folder cannot be used ({exc.strerror or exc}; was it deleted?); "
            "cd into a folder that exists and run wandown again"
        ) from None


def _resolve(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path)


def _check_types(raw: dict[str, Any], path: Path) -> list[str]:
    notices = []
    for key, value in raw.items():
        if key not in _SCHEMA:
            notices.append(f"{path}: unknown key '{key}' is ignored")
            continue
        types, expected, nullable = _SCHEMA[key]
        if value is None and nullable:
            continue
        if key == "gpu_bf16" and (isinstance(value, bool) or value == "auto"):
            continue
        if isinstance(value, bool) or not isinstance(value, types) or key == "gpu_bf16":
            shown = json.dumps(value)
            raise ConfigError(f"{path}: '{key}' must be {expected}, not {shown}")
    hubs = raw.get("hub_directory")
    if isinstance(hubs, list):
        for position, value in enumerate(hubs, 1):
            if not isinstance(value, str) or not value:
                raise ConfigError(
                    f"{path}: 'hub_directory' item {position} must be a folder path, not "
                    f"{json.dumps(value)} (a list holds one path per hub; [] turns hubs off)"
                )
    for key in ("jobs", "connections"):
        if key in raw and raw[key] < 1:
            raise ConfigError(f"{path}: '{key}' must be 1 or more, not {raw[key]}")
    reserve = raw.get("min_free_gb", 0)
    if not 0 <= reserve <= MAX_FREE_GB:  # NaN fails both
        raise ConfigError(
            f"{path}: 'min_free_gb' must be from 0 to {MAX_FREE_GB:,} (GB kept free on every "
            f"disk), not {json.dumps(reserve)}"
        )
    try:
        bandwidth_limit_kb(raw.get("bandwidth_limit_kb"), "'bandwidth_limit_kb'")
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if raw.get("endpoints") is not None:
        from_config(raw["endpoints"], str(path))
    if raw.get("endpoints") == []:
        notices.append(
            f"{path}: 'endpoints' is an empty list, so files come from HF_ENDPOINT (or "
            "https://huggingface.co) alone; list URLs there, or remove the key to say so"
        )
    return notices


def read_config_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """Return the raw settings in path, creating the file with the defaults when it is missing.

    Only in a folder that exists: a mistyped path must not grow a folder chain and a config that
    the user would then wonder about.
    """
    path = Path(path)
    notices: list[str] = []
    if not os.path.lexists(path):
        folder = path.parent
        if not folder.is_dir():
            raise ConfigError(
                f"config file {path} does not exist and neither does its folder {folder}; "
                "check the --config-file path, or create the folder first"
            )
        try:
            atomic_write_json(path, DEFAULTS)
        except OSError as exc:
            notices.append(f"could not create {path} ({exc.strerror}); using the defaults")
        else:
            notices.append(f"created {path} with the default settings")
        return dict(DEFAULTS), notices
    try:
        raw = read_json(path)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except JSONFileError as exc:
        raise ConfigError(f"{exc}; fix the file or delete it to get the defaults back") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the config must be a JSON object {{...}}, not a {type(raw).__name__}"
        )
    notices.extend(_check_types(raw, path))
    return raw, notices


def load_config(path: Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read path (creating it if missing), apply flag overrides and resolve folders.

    Relative paths in the file are taken from the file's folder; relative paths given as flags
    (overrides) are taken from the current folder, as a user typing them would expect.
    """
    cwd = current_folder()
    path = Path(path)
    raw, notices = read_config_file(path)
    settings = {**DEFAULTS, **{k: v for k, v in raw.items() if k in _SCHEMA}}
    base = (cwd / path).resolve().parent  # an absolute path stays as it is
    overrides = overrides or {}
    flag_paths = {
        k for k in ("hub_directory", "wan2gp_directory", "wan2gp_config_dir") if k in overrides
    }
    settings.update(overrides)

    wan2gp_value = settings["wan2gp_directory"]
    wan2gp = _resolve(cwd if "wan2gp_directory" in flag_paths else base, wan2gp_value)

    hub_base = cwd if "hub_directory" in flag_paths else base
    hubs = _hub_folders(settings["hub_directory"], hub_base, notices)

    config_dir_value = settings.get("wan2gp_config_dir")
    config_dir = None
    if config_dir_value:
        from_flag = "wan2gp_config_dir" in flag_paths
        config_dir = Path(os.path.normpath(_resolve(cwd if from_flag else base, config_dir_value)))
    gpu = settings.get("gpu_bf16")
    limit = settings["bandwidth_limit_kb"]  # checked where it entered: the file or --limit
    return Config(
        hub_directories=hubs,
        bandwidth_limit_kb=float(limit) if limit else None,
        wan2gp_directory=Path(os.path.normpath(wan2gp)),
        jobs=settings["jobs"],
        connections=settings["connections"],
        min_free_gb=float(settings["min_free_gb"]),
        notices=notices,
        serve_token=settings.get("serve_token") or None,
        endpoints=from_config(settings.get("endpoints") or [], str(path)),
        wan2gp_config_dir=config_dir,
        gpu_bf16=GPU_BF16_WORDS[gpu] if isinstance(gpu, str) else gpu,
    )


def _hub_folders(value: str | list[str] | None, base: Path, notices: list[str]) -> tuple[Path, ...]:
    """Resolve the hub folders in their order; a missing one is a notice, not an error.

    A folder named twice, or inside another hub, is scanned once: as part of the outer hub.
    """
    values = [value] if isinstance(value, str) else list(value or [])
    values = [v for v in values if v]
    if not values:
        notices.append("no hub folder set; hub features are off")
        return ()
    kept: list[Path] = []
    for raw in values:
        hub = Path(os.path.normpath(_resolve(base, raw)))
        if not hub.is_dir():
            why = "is not a folder" if hub.exists() else "does not exist"
            lost = "hub features are off" if len(values) == 1 else "that hub is left out"
            notices.append(f"hub folder {hub} {why}; {lost}")
            continue
        outer = next((k for k in kept if is_inside(hub, k) or is_inside(k, hub)), None)
        if outer is not None and is_inside(hub, outer) and is_inside(outer, hub):
            notices.append(f"hub folder {hub} is named twice; scanning it once")
            continue
        if outer is not None:
            notices.append(
                f"hub folder {hub} overlaps the hub {outer}; scanning the outer one once"
            )
            if is_inside(outer, hub):
                kept[kept.index(outer)] = hub
            continue
        kept.append(hub)
    return tuple(kept)
