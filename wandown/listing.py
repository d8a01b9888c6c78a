"""The plain-text and JSON views of the catalog: no I/O, just strings from records."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from wandown.catalog import Catalog, FileRecord
from wandown.safetext import printable
from wandown.units import human_bytes, size_gb

_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
COLUMNS = ("✓", "Config", "Model File", "Size (GB)", "Status", "Destination")


def select_records(
    catalog: Catalog, missing_only: bool = False, all_variants: bool = False
) -> list[FileRecord]:
    """Return the records a listing shows: needed and optional files, or every variant."""
    chosen = []
    for record in catalog.records:
        if not (all_variants or record.needed_by or record.role == "on_demand"):
            continue
        if missing_only and record.status != "missing":
            continue
        chosen.append(record)
    return chosen


def config_label(record: FileRecord, model_count: int) -> str:
    """Name the models that need a file: one id, 'id +N', 'all models' or 'optional'."""
    needed = sorted(record.needed_by)
    if not needed:
        return "optional" if record.role == "on_demand" else "(variant)"
    if model_count > 1 and len(needed) == model_count:
        return "all models"
    return needed[0] if len(needed) == 1 else f"{needed[0]} +{len(needed) - 1}"


def table_rows(records: Iterable[FileRecord], model_count: int) -> list[tuple[str, ...]]:
    """Return one row of column texts per record."""
    rows = []
    for record in records:
        selected = "✓" if record.needed_by and record.status == "missing" else " "
        rows.append(
            (
                selected,
                config_label(record, model_count),
                record.file_name,
                size_gb(record.size),
                record.status.title(),
                record.folder + "/",
            )
        )
    return rows


def format_table(rows: list[tuple[str, ...]], ascii_only: bool = False) -> list[str]:
    """Lay rows out under the column headings, each cell made printable and each column as wide
    as its widest cell."""
    header = tuple("x" if ascii_only and h == "✓" else h for h in COLUMNS)
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


def summary(records: list[FileRecord]) -> str:
    """Sum up a listing in one line."""
    present = [r for r in records if r.status != "missing"]
    linked = sum(1 for r in present if r.status == "linked")
    missing = [r for r in records if r.status == "missing" and r.needed_by]
    known = [r.size for r in missing if r.size is not None]
    size_text = f", {human_bytes(sum(known))} to fetch" if known else ""
    if known and len(known) < len(missing):
        size_text += f" (size unknown for {len(missing) - len(known)})"
    return (
        f"{len(records)} files: {len(present)} present ({linked} linked), "
        f"{len(missing)} needed and missing{size_text}"
    )


def to_json(records: list[FileRecord], ascii_only: bool = False) -> str:
    """Return the records as JSON; ascii_only escapes every non-ASCII character (for a stdout
    that cannot encode them, where a replaced character would break the JSON).

    json escapes only C0 controls; the other characters printable() escapes are written as
    \\u escapes too, so the JSON decodes the same but never drives a terminal.
    """
    text = json.dumps([record.to_json() for record in records], indent=2, ensure_ascii=ascii_only)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
