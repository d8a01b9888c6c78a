"""The reclaim list as text and JSON: no I/O, strings from a plan."""

from __future__ import annotations

from pathlib import Path

from wandown.listing import dump_json
from wandown.reclaim.plan import Kind, Plan, shown_path
from wandown.safetext import printable
from wandown.units import human_bytes

COLUMNS = ("Kind", "Size", "File", "Why")


def rows(found: Plan, root: Path) -> list[tuple[str, str, str, str]]:
    """Return one row of column texts per file: kind, size, path, reason."""
    return [
        (
            item.kind.label,
            "link" if item.found.link is not None else human_bytes(item.size),
            shown_path(item.path, root),
            item.why,
        )
        for item in found.items
    ]


def table(found: Plan, root: Path) -> list[str]:
    """Return the list under its headings, each column as wide as its widest cell."""
    if not found.items:
        return []
    lines = [COLUMNS, *(tuple(printable(cell) for cell in row) for row in rows(found, root))]
    widths = [max(len(line[n]) for line in lines) for n in range(len(COLUMNS))]
    right = {1}
    return [
        "  ".join(
            cell.rjust(width) if n in right else cell.ljust(width)
            for n, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    ]


def summary(found: Plan) -> str:
    """Sum up the list in one line: the total, then each kind's count and size."""
    if not found.items:
        return "nothing to reclaim"
    parts = []
    for kind in Kind:
        items = found.of_kind(kind)
        if items:
            size = human_bytes(sum(item.size for item in items))
            parts.append(f"{kind.counted(len(items))} {size}")
    count = len(found.items)
    files = f"{count} file{'' if count == 1 else 's'}"
    return f"{files}, {human_bytes(found.total)} can be reclaimed: {', '.join(parts)}"


def to_json(found: Plan, root: Path, ascii_only: bool = False) -> str:
    """Return the list as one JSON object: items, the total and each kind's total."""
    kinds = {kind.value: sum(i.size for i in found.of_kind(kind)) for kind in Kind}
    value = {
        "wan2gp": str(root),
        "items": [item.to_json(root) for item in found.items],
        "total": found.total,
        "by_kind": kinds,
    }
    return dump_json(value, ascii_only)
