"""The code-side defaults: files Wan2GP's model-family code adds under each JSON definition.

Wan2GP's Python code, not its JSON, names the text encoders, VAEs, tokenizers, LoRA folders, the
core files every model needs and the files of its run-time features. ``wandown.learn`` reads those
facts off the user's own Wan2GP; the same code made the copy shipped in ``wandown/data/`` from one
Wan2GP commit (``python -m wandown.learn --write-data SRC``), used when learning is not possible.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from wandown import jsonfile

DATA_NAME = "code_defaults.json"


@dataclass(frozen=True)
class RepoFolder:
    """Files of one repo folder that land in ``ckpts/[target_folder/]source_folder/``."""

    repo: str
    source_folder: str
    target_folder: str | None
    files: tuple[str, ...]


@dataclass(frozen=True)
class CodeDefaults:
    """What Wan2GP's code adds for one model id."""

    architecture: str | None
    lora_dir: str | None
    text_encoder_urls: tuple[str, ...] = ()
    text_encoder_folder: str | None = None
    vae_urls: tuple[str, ...] = ()
    repo_folders: tuple[RepoFolder, ...] = ()
    injected: dict[str, Any] = field(default_factory=dict)  # other keys the handler adds
    rewritten: dict[str, Any] = field(default_factory=dict)  # JSON values the handler changes
    config_choices: dict[str, ConfigChoice] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigChoice:
    """What one model-config choice (``system_configs*``) adds: repo files and URL lists."""

    repo_folders: tuple[RepoFolder, ...] = ()
    urls: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelFeature:
    """A feature that loads a whole model plus some of its on-demand LoRAs (the LTX-2 upsampler)."""

    model_id: str
    lora_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class CodeData:
    """All code-side facts: per model id, the core files, and each run-time feature's files."""

    commit: str
    models: dict[str, CodeDefaults]
    core: tuple[RepoFolder, ...] = field(default=())
    features: dict[str, tuple[RepoFolder, ...]] = field(default_factory=dict)
    model_features: dict[str, ModelFeature] = field(default_factory=dict)
    plugin_definitions: tuple[str, ...] = ()  # enabled plugins' defaults/ folders (learned only)
    origin: str = ""  # for the header: "learned", "shipped <commit>" after a failure, "" else

    def for_model(
        self, model_id: str, architecture: str | None
    ) -> tuple[CodeDefaults | None, str | None]:
        """Return the defaults for model_id and the id they were taken from.

        A model unknown to the data borrows from a model of the same architecture: the one named
        like the architecture when there is one, else the first by name.
        """
        if model_id in self.models:
            return self.models[model_id], model_id
        if architecture:
            if (
                architecture in self.models
                and self.models[architecture].architecture == architecture
            ):
                return self.models[architecture], architecture
            for other in sorted(self.models):
                if self.models[other].architecture == architecture:
                    return self.models[other], other
        return None, None


def _folders(groups: list[dict[str, Any]]) -> tuple[RepoFolder, ...]:
    return tuple(
        RepoFolder(group["repo"], source, target, tuple(files))
        for group in groups
        for source, target, files in group["folders"]
    )


def _choice(entry: dict[str, Any]) -> ConfigChoice:
    urls = {key: tuple(value) for key, value in (entry.get("urls") or {}).items()}
    return ConfigChoice(_folders(entry.get("repo_files") or []), urls)


def parse(data: dict[str, Any]) -> CodeData:
    """Turn the data file's JSON form (``wandown.learn`` writes it) into CodeData."""
    models = {}
    for model_id, entry in data["models"].items():
        models[model_id] = CodeDefaults(
            architecture=entry.get("architecture"),
            lora_dir=entry.get("lora_dir"),
            text_encoder_urls=tuple(entry.get("text_encoder_URLs") or ()),
            text_encoder_folder=entry.get("text_encoder_folder"),
            vae_urls=tuple(entry.get("VAE_URLs") or ()),
            repo_folders=_folders(entry["repo_files"]),
            injected=dict(entry.get("injected") or {}),
            rewritten=dict(entry.get("rewritten") or {}),
            config_choices={
                name: _choice(facts) for name, facts in (entry.get("config_choices") or {}).items()
            },
        )
    features = {name: _folders(groups) for name, groups in (data.get("features") or {}).items()}
    model_features = {
        name: ModelFeature(entry["model"], tuple(entry.get("lora_keys") or ()))
        for name, entry in (data.get("model_features") or {}).items()
    }
    return CodeData(
        commit=data.get("wan2gp_commit", ""),
        models=models,
        core=_folders(data["core"]),
        features=features,
        model_features=model_features,
    )


def shipped_for(root: Path) -> CodeData:
    """Return the shipped facts for an install: without run-time features when it holds no
    Wan2GP code (``wgp.py``), as a copied catalog or the demo does not run them."""
    if (root / "wgp.py").is_file():
        return shipped()
    return _without_features()


@cache
def _without_features() -> CodeData:
    return dataclasses.replace(shipped(), features={}, model_features={})


@cache
def shipped() -> CodeData:
    """Return the code-side facts shipped inside the package."""
    text = resources.files("wandown.data").joinpath(DATA_NAME).read_text(encoding="utf-8")
    return parse(jsonfile.loads(text, DATA_NAME))
