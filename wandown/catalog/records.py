"""The catalog's data: one record per destination file, and what is known of each model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wandown.catalog.definitions import WanSettings
from wandown.status import Status

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
    "feature",
)


@dataclass(frozen=True)
class FileRecord:
    """One file Wan2GP may need, unique by its destination; never changed once built.

    ``dest`` is relative to the Wan2GP root and ``/``-separated. ``needed_by`` holds the model ids
    that load this file with the current settings; ``listed_by`` the ids whose definitions mention
    it at all (unpicked variants and on-demand files are listed but not needed). What the Hub says
    of the file and whether it is on disk are facts of one load, kept beside the record
    (``wandown.loaded.Loaded``), never written into it.
    """

    dest: str
    url: str
    repo: str | None
    revision: str | None
    path: str | None
    role: str
    needed_by: frozenset[str] = frozenset()
    listed_by: frozenset[str] = frozenset()
    mirrors: tuple[str, ...] = ()
    seen_at: tuple[str, ...] = ()  # other places Wan2GP finds it: relative to the root, or absolute
    features: frozenset[str] = frozenset()  # the run-time feature groups this file belongs to

    def __post_init__(self) -> None:
        # Builders and tests may hand in sets and lists: keep frozen copies.
        object.__setattr__(self, "needed_by", frozenset(self.needed_by))
        object.__setattr__(self, "listed_by", frozenset(self.listed_by))
        object.__setattr__(self, "mirrors", tuple(self.mirrors))
        object.__setattr__(self, "seen_at", tuple(self.seen_at))
        object.__setattr__(self, "features", frozenset(self.features))

    @property
    def feature(self) -> str | None:
        """Return the feature group this file is shown under (the first by name), if any."""
        return min(self.features) if self.features else None

    @property
    def file_name(self) -> str:
        return self.dest.rsplit("/", 1)[-1]

    @property
    def folder(self) -> str:
        return self.dest.rsplit("/", 1)[0] if "/" in self.dest else ""


@dataclass(frozen=True)
class Presence:
    """Whether a destination is on disk, and where: one stat's answer, never a read."""

    status: Status = Status.MISSING
    found_at: Path | None = None


@dataclass(frozen=True)
class ModelInfo:
    """One model id as the catalog understood it."""

    model_id: str
    name: str
    architecture: str | None
    code_defaults_from: str | None
    problems: tuple[str, ...] = ()

    @property
    def json_only(self) -> bool:
        """True when no code-side defaults were found: only the JSON's own files are known."""
        return self.code_defaults_from is None


@dataclass(frozen=True)
class Catalog:
    """Everything Wan2GP at one install may need, and what went wrong reading it."""

    root: Path
    settings: WanSettings
    models: dict[str, ModelInfo]
    records: tuple[FileRecord, ...]
    notices: list[str]
    checkpoint_folder: str = "ckpts"  # where new checkpoint files go, relative to root
    code_origin: str = ""  # where the code-side facts came from (CodeData.origin)
    _by_dest: dict[str, FileRecord] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", tuple(self.records))
        object.__setattr__(self, "_by_dest", {record.dest: record for record in self.records})

    def record(self, dest: str) -> FileRecord | None:
        return self._by_dest.get(dest)

    def needed_records(self) -> list[FileRecord]:
        return [record for record in self.records if record.needed_by]
