"""What can go, decided from a survey and the catalog: pure, no file system access.

Four kinds, each with its own reason: orphans (no model of the current catalog lists them),
variants the current settings do not load, working files of downloads that no wanted file
matches any more, and real copies of hub files (linked, not deleted). A place any model needs
with the current settings is never listed for deletion; nor is anything the survey did not
admit (see survey.py for that rule).
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from wandown.catalog import Catalog, FileRecord
from wandown.catalog.build import presence_places
from wandown.engine.partial import PartialState, working_stem
from wandown.reclaim.survey import Found, Survey, Working
from wandown.remote import RemoteFile

LORA_ORPHAN = "a LoRA no model of this Wan2GP lists (an old one, or one you added?)"


class Kind(str, enum.Enum):
    """Why a file can go; the value is the JSON's `kind`."""

    ORPHAN = "orphan"
    VARIANT = "variant"
    PARTIAL = "partial"
    HUB_COPY = "hub-copy"

    @property
    def label(self) -> str:
        return self.value.replace("-", " ")

    def counted(self, n: int) -> str:
        """Return '1 orphan', '2 orphans', '2 hub copies'."""
        if n == 1:
            return f"1 {self.label}"
        return f"{n} {self.label[:-1]}ies" if self.label.endswith("y") else f"{n} {self.label}s"


@dataclass(frozen=True)
class HubCopy:
    """The hub file a real file is a byte-identical copy of."""

    hub: int  # position of the hub in the user's order
    key: str  # the hub file's key in that hub's index
    target: Path  # what the link will point at


@dataclass(frozen=True)
class Item:
    """One file that can go, and everything the deleting step re-checks before it acts."""

    found: Found
    kind: Kind
    why: str
    dest: str | None = None  # the catalog destination it belongs to, if any
    copy: HubCopy | None = None
    group: tuple[str, str] | None = None  # (folder, stem) of a partial's working files

    @property
    def path(self) -> Path:
        return self.found.path

    @property
    def size(self) -> int:
        """Return the bytes this frees: a link frees nothing, a sparse part what it holds."""
        return 0 if self.found.link is not None else self.found.allocated

    def to_json(self, root: Path) -> dict[str, object]:
        return {
            "path": shown_path(self.path, root),
            "kind": self.kind.value,
            "size": self.size,
            "link": self.found.link is not None,
            "broken_link": self.found.broken,
            "dest": self.dest,
            "hub_file": str(self.copy.target) if self.copy else None,
            "why": self.why,
        }


@dataclass(frozen=True)
class Plan:
    items: tuple[Item, ...]

    @property
    def total(self) -> int:
        return sum(item.size for item in self.items)

    def of_kind(self, kind: Kind) -> list[Item]:
        return [item for item in self.items if item.kind is kind]


@dataclass(frozen=True)
class Places:
    """Where the catalog's files may be found (absolute paths, as text)."""

    needed: frozenset[str]
    variants: Mapping[str, str]  # place -> dest of a variant the settings do not load
    listed: Mapping[str, str]  # place -> dest, for every record (needed, variant, on demand)
    record_folders: frozenset[str]
    working: Mapping[tuple[str, str], FileRecord]  # (folder, working stem) -> record


def places_of(catalog: Catalog) -> Places:
    """Return every place each record counts as present at (one per checkpoint root)."""
    needed: set[str] = set()
    variants: dict[str, str] = {}
    listed: dict[str, str] = {}
    working: dict[tuple[str, str], FileRecord] = {}
    for record in catalog.records:
        for place in presence_places(catalog.root, record):
            text = os.path.normpath(place)
            listed.setdefault(text, record.dest)
            working[(os.path.dirname(text), working_stem(place.name))] = record
            if record.needed_by:
                needed.add(text)
            elif record.role != "on_demand" and not record.features:
                variants.setdefault(text, record.dest)  # a feature's file is kept, never unused
    for text in needed:
        variants.pop(text, None)
    folders = frozenset(os.path.dirname(text) for text in listed)
    return Places(frozenset(needed), variants, listed, folders, working)


def needed_places(catalog: Catalog) -> frozenset[str]:
    """Return the places any model needs with the current settings."""
    return places_of(catalog).needed


def plan(
    found: Survey,
    places: Places,
    present: Collection[str],
    remote: Mapping[str, RemoteFile],
    copies: Mapping[Path, HubCopy],
    root: Path,
    lora_roots: Collection[str] = (),
) -> Plan:
    """Return what can go: hub copies first (they are kept, as links), then the rest.

    lora_roots are the LoRA folders (normalised paths): an orphan there may be a LoRA the user
    added, and its reason says so.
    """
    items: list[Item] = []
    for entry in found.files:
        text = os.path.normpath(entry.path)
        item = _file_item(entry, text, places, copies.get(entry.path))
        in_lora = any(text.startswith(folder + os.sep) for folder in lora_roots)
        if item is not None and item.kind is Kind.ORPHAN and entry.link is None and in_lora:
            item = dataclasses.replace(item, why=LORA_ORPHAN)
        if item is not None:
            items.append(item)
    for work in found.working:
        items += _working_items(work, places, present, remote)
    order = {kind: n for n, kind in enumerate(Kind)}
    items.sort(key=lambda item: (order[item.kind], shown_path(item.path, root)))
    return Plan(tuple(items))


def _file_item(entry: Found, text: str, places: Places, copy: HubCopy | None) -> Item | None:
    if copy is not None and entry.link is None:
        why = f"identical to {copy.target}; becomes a link"
        return Item(entry, Kind.HUB_COPY, why, dest=places.listed.get(text), copy=copy)
    if text in places.needed:
        return None
    if entry.link is not None:
        if entry.broken and text not in places.listed:
            return Item(entry, Kind.ORPHAN, f"a broken link to {entry.link}; no model lists it")
        if entry.broken and text in places.variants:
            return Item(
                entry,
                Kind.VARIANT,
                "a broken link; a variant the settings do not load",
                dest=places.variants[text],
            )
        if text not in places.listed:
            return Item(entry, Kind.ORPHAN, f"a link to {entry.link}; no model lists it")
        return None
    if text in places.variants:
        return Item(
            entry,
            Kind.VARIANT,
            "a variant the current settings do not load",
            dest=places.variants[text],
        )
    if text in places.listed:
        return None  # on demand: a model loads it when asked
    if not entry.is_weight and os.path.dirname(text) in places.record_folders:
        return None  # a config beside files the catalog knows: it may belong to them
    return Item(entry, Kind.ORPHAN, "no model of this Wan2GP lists it")


def _working_items(
    work: Working,
    places: Places,
    present: Collection[str],
    remote: Mapping[str, RemoteFile],
) -> list[Item]:
    if work.held:
        return []  # a download is using them right now
    record = places.working.get((os.path.normpath(work.folder), work.stem))
    why = _stale(work, record, present, remote)
    if why is None:
        return []
    dest = record.dest if record is not None else None
    group = (str(work.folder), work.stem)
    return [Item(f, Kind.PARTIAL, why, dest=dest, group=group) for f in work.files]


def _stale(
    work: Working,
    record: FileRecord | None,
    present: Collection[str],
    remote: Mapping[str, RemoteFile],
) -> str | None:
    """Say why working files no longer serve a wanted download, or None to keep them."""
    if record is None:
        return "working files of a download no model lists"
    if record.dest in present:
        return f"working files of {record.dest}, which is in place"
    if not record.needed_by and not record.features:  # a feature's download is wanted
        return f"working files of {record.dest}, which the current settings do not load"
    has_part = any(f.path.suffix == ".part" for f in work.files)
    if not has_part:
        return f"leftovers of a download of {record.dest} with no partial data"
    if work.state is None:
        return f"partial of {record.dest} without a usable resume state (it would start over)"
    now = remote.get(record.dest)
    if now is not None and not _same_file(work.state, now):
        return f"partial of {record.dest} from an older version of the file on the Hub"
    return None


def _same_file(state: PartialState, now: RemoteFile) -> bool:
    return (state.size, state.sha256, state.blob_sha1) == (now.size, now.sha256, now.blob_sha1)


def shown_path(path: Path, root: Path) -> str:
    """Return path relative to the Wan2GP root when it is inside, else absolute."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def copy_candidates(found: Iterable[Found]) -> list[Found]:
    """Return the real, non-empty files worth comparing with the hub."""
    return [entry for entry in found if entry.link is None and entry.stat.size > 0]
