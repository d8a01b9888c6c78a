"""The --list table and JSON: no I/O, just strings from records and what a load found."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from wandown.catalog import FileRecord
from wandown.loaded import Loaded
from wandown.needs import FEATURE_PREFIX, needed_label
from wandown.remote import RemoteFile
from wandown.safetext import printable
from wandown.status import Status
from wandown.units import human_bytes, size_gb

_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
COLUMNS = ("✓", "Config", "Model File", "Size (GB)", "Status", "Destination")
FROM_COLUMN = "From"  # shown only when some listed file came from a known endpoint


class JsonItem(Protocol):
    def to_json(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class Listed:
    """One file as a listing shows it: the catalog's record and what this load found."""

    record: FileRecord
    status: Status
    remote: RemoteFile | None = None
    endpoint: str | None = None  # where a download of it came from, when one is known

    @property
    def size(self) -> int | None:
        return self.remote.size if self.remote is not None else None

    @property
    def missing(self) -> bool:
        return self.status is Status.MISSING

    def to_json(self) -> dict[str, object]:
        """Return the file in the ``--list --json`` form other tools build on."""
        record, remote = self.record, self.remote
        return {
            "dest": record.dest,
            "url": record.url,
            "repo": record.repo,
            "revision": record.revision,
            "path": record.path,
            "role": record.role,
            "feature": record.feature,
            "needed_by": sorted(record.needed_by),
            "listed_by": sorted(record.listed_by),
            "size": self.size,
            "sha256": remote.sha256 if remote is not None else None,
            "blob_sha1": remote.blob_sha1 if remote is not None else None,
            "status": self.status.value,
            "endpoint": self.endpoint,
        }


def select_records(
    loaded: Loaded,
    missing_only: bool = False,
    all_variants: bool = False,
    origins: Mapping[str, str] | None = None,
) -> list[Listed]:
    """Return the files a listing shows: needed and optional files, or every variant.

    `origins` names the endpoint each downloaded file came from (Session.origins).
    """
    chosen = []
    origins = origins or {}
    for record in loaded.catalog.records:
        if not (all_variants or record.needed_by or record.features or record.role == "on_demand"):
            continue
        listed = Listed(
            record,
            loaded.status(record.dest),
            loaded.remote.get(record.dest),
            origins.get(record.dest),
        )
        if missing_only and not listed.missing:
            continue
        chosen.append(listed)
    return chosen


def config_label(record: FileRecord, model_count: int) -> str:
    """Name the models that need a file: one id, 'id +N', 'all models' or 'optional'."""
    if not record.needed_by and record.feature is not None:
        return FEATURE_PREFIX + record.feature
    return needed_label(record.role, record.needed_by, model_count)


def table_rows(items: Iterable[Listed], model_count: int) -> list[tuple[str, ...]]:
    """Return one row of column texts per file; with a From column when an endpoint is known."""
    items = list(items)
    with_from = any(item.endpoint for item in items)
    rows: list[tuple[str, ...]] = []
    for item in items:
        record = item.record
        selected = "✓" if record.needed_by and item.missing else " "
        row: tuple[str, ...] = (
            selected,
            config_label(record, model_count),
            record.file_name,
            size_gb(item.size),
            item.status.label,
            record.folder + "/",
        )
        if with_from:
            row += (item.endpoint or "",)
        rows.append(row)
    return rows


def format_table(rows: list[tuple[str, ...]], ascii_only: bool = False) -> list[str]:
    """Lay rows out under the column headings, each cell made printable and each column as wide
    as its widest cell."""
    columns = COLUMNS + ((FROM_COLUMN,) if rows and len(rows[0]) > len(COLUMNS) else ())
    header = tuple("x" if ascii_only and h == "✓" else h for h in columns)
    rows = [tuple(printable(cell) for cell in row) for row in rows]
    if ascii_only:
        rows = [("x" if r[0] == "✓" else r[0], *r[1:]) for r in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    right = {3}

    def line(cells: tuple[str, ...]) -> str:
        parts = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(header), *(line(row) for row in rows)]


def summary(items: list[Listed]) -> str:
    """Sum up a listing in one line."""
    present = [i for i in items if not i.missing]
    linked = sum(1 for i in present if i.status is Status.LINKED)
    missing = [i for i in items if i.missing and i.record.needed_by]
    known = [i.size for i in missing if i.size is not None]
    size_text = f", {human_bytes(sum(known))} to fetch" if known else ""
    if known and len(known) < len(missing):
        size_text += f" (size unknown for {len(missing) - len(known)})"
    return (
        f"{len(items)} files: {len(present)} present ({linked} linked), "
        f"{len(missing)} needed and missing{size_text}"
    )


def to_json(items: Sequence[JsonItem], ascii_only: bool = False) -> str:
    """Return the files as JSON; ascii_only escapes every non-ASCII character (for a stdout
    that cannot encode them, where a replaced character would break the JSON).

    json escapes only C0 controls; the other characters printable() escapes are written as
    \\u escapes too, so the JSON decodes the same but never drives a terminal.
    """
    return dump_json([item.to_json() for item in items], ascii_only)


def dump_json(value: object, ascii_only: bool = False) -> str:
    """Return value as indented JSON that never drives a terminal (see to_json)."""
    text = json.dumps(value, indent=2, ensure_ascii=ascii_only)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def settings_line(loaded: Loaded) -> str:
    """Say which Wan2GP settings chose these files: quantization, dtype and the GPU's answer."""
    settings = loaded.catalog.settings
    policy = settings.transformer_dtype_policy or "auto"
    if settings.transformer_dtype_policy == "":
        policy += f" ({'bf16' if settings.bf16_supported else 'fp16'})"
    gpu = loaded.gpu.label if loaded.gpu is not None else "GPU not asked"
    source = settings.source if settings.source is not None else "Wan2GP's defaults"
    return (
        f"Wan2GP settings from {source}: transformer {settings.transformer_quantization or 'bf16'}"
        f", text encoder {settings.text_encoder_quantization or 'bf16'}, dtype {policy}; {gpu}"
    )
