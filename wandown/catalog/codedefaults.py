"""The code-side defaults: files Wan2GP's model-family code adds under each JSON definition.

Wan2GP's Python code, not its JSON, names the text encoders, VAEs, tokenizers, LoRA folders and
the core files every model needs. wandown ships those facts as data (``wandown/data/``) derived from
``handler-files.json``, read off Wan2GP's code at one commit. Run this module to derive it again:
``python -m wandown.catalog.codedefaults PATH/handler-files.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from wandown import jsonfile

DATA_NAME = "code_defaults.json"
_MODEL_KEYS = (
    "architecture",
    "lora_dir",
    "text_encoder_URLs",
    "text_encoder_folder",
    "VAE_URLs",
    "dtype",
)


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
    dtype: str | None = None  # the handler's own dtype key, which beats the dtype policy


@dataclass(frozen=True)
class CodeData:
    """All code-side facts: per model id, plus the core files every model needs."""

    commit: str
    models: dict[str, CodeDefaults]
    core: tuple[RepoFolder, ...] = field(default=())

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


def derive(handler_files: dict[str, Any]) -> dict[str, Any]:
    """Reduce handler-files.json to the compact form wandown ships."""
    models = {}
    for model_id, facts in sorted(handler_files["models"].items()):
        entry = {key: facts.get(key) for key in _MODEL_KEYS}
        entry["repo_files"] = [
            {
                "repo": group["repo"],
                "folders": [
                    [f["source_folder"], f["target_folder"], list(f["files"])]
                    for f in group["folders"]
                ],
            }
            for group in facts.get("repo_files", [])
        ]
        models[model_id] = entry
    core = handler_files["core"]
    return {
        "wan2gp_commit": handler_files.get("wan2gp_commit", ""),
        "core": {"repo": core["repo"], "folders": core["folders"]},
        "models": models,
    }


def _parse(data: dict[str, Any]) -> CodeData:
    models = {}
    for model_id, entry in data["models"].items():
        folders = tuple(
            RepoFolder(group["repo"], source, target, tuple(files))
            for group in entry["repo_files"]
            for source, target, files in group["folders"]
        )
        models[model_id] = CodeDefaults(
            architecture=entry.get("architecture"),
            lora_dir=entry.get("lora_dir"),
            text_encoder_urls=tuple(entry.get("text_encoder_URLs") or ()),
            text_encoder_folder=entry.get("text_encoder_folder"),
            vae_urls=tuple(entry.get("VAE_URLs") or ()),
            repo_folders=folders,
            dtype=entry.get("dtype"),
        )
    core = data["core"]
    core_folders = tuple(
        RepoFolder(core["repo"], folder, None, tuple(files))
        for folder, files in core["folders"].items()
    )
    return CodeData(commit=data.get("wan2gp_commit", ""), models=models, core=core_folders)


@cache
def shipped() -> CodeData:
    """Return the code-side facts shipped inside the package."""
    text = resources.files("wandown.data").joinpath(DATA_NAME).read_text(encoding="utf-8")
    return _parse(jsonfile.loads(text, DATA_NAME))


def main(argv: list[str] | None = None) -> int:
    """Derive the shipped data file from a handler-files.json."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(
            "usage: python -m wandown.catalog.codedefaults PATH/handler-files.json", file=sys.stderr
        )
        return 2
    try:
        source = jsonfile.read_json(args[0])
    except (OSError, jsonfile.JSONFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    target = Path(__file__).resolve().parent.parent / "data" / DATA_NAME
    target.write_text(json.dumps(derive(source), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
