"""The catalog's data: one record per destination file, and what is known of each model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wandown.catalog.definitions import WanSettings

# Most specific first: a file that is both a model's main file and another's preload is "main".
ROLES = (
    "main",
    "module",
    "text_encoder",
    "vae",
    "preload",
    "lora",
    "repo_file",
    "core",
    "on_demand",
)


@dataclass
class FileRecord:
    """One file Wan2GP may need, unique by its destination.

    ``dest`` is relative to the Wan2GP root and ``/``-separated. ``needed_by`` holds the model ids
    that load this file with the current settings; ``listed_by`` the ids whose definitions mention
    it at all (unpicked variants and on-demand files are listed but not needed).
    """

    dest: str
    url: str
    repo: str | None
    revision: str | None
    path: str | None
    role: str
    needed_by: set[str] = field(default_factory=set)
    listed_by: set[str] = field(default_factory=set)
    size: int | None = None
    sha256: str | None = None
    blob_sha1: str | None = None
    status: str = "missing"
    found_at: Path | None = None
    mirrors: list[str] = field(default_factory=list)

    @property
    def file_name(self) -> str:
        return self.dest.rsplit("/", 1)[-1]

    @property
    def folder(self) -> str:
        return self.dest.rsplit("/", 1)[0] if "/" in self.dest else ""

    def to_json(self) -> dict:
        """Return the record in the ``--list --json`` form other tools build on."""
        return {
            "dest": self.dest,
            "url": self.url,
            "repo": self.repo,
            "revision": self.revision,
            "path": self.path,
            "role": self.role,
            "needed_by": sorted(self.needed_by),
            "listed_by": sorted(self.listed_by),
            "size": self.size,
            "sha256": self.sha256,
            "blob_sha1": self.blob_sha1,
            "status": self.status,
        }


@dataclass
class ModelInfo:
    """One model id as the catalog understood it."""

    model_id: str
    name: str
    architecture: str | None
    code_defaults_from: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def json_only(self) -> bool:
        """True when no code-side defaults were found: only the JSON's own files are known."""
        return self.code_defaults_from is None


@dataclass
class Catalog:
    """Everything Wan2GP at one install may need, and what went wrong reading it."""

    root: Path
    settings: WanSettings
    models: dict[str, ModelInfo]
    records: list[FileRecord]
    notices: list[str]
    checkpoint_folder: str = "ckpts"  # where new checkpoint files go, relative to root
    _by_dest: dict[str, FileRecord] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_dest = {record.dest: record for record in self.records}

    def record(self, dest: str) -> FileRecord | None:
        return self._by_dest.get(dest)

    def needed_records(self) -> list[FileRecord]:
        return [record for record in self.records if record.needed_by]
