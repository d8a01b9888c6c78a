"""The table's rows as a pure function of a snapshot, and the scroll clamp.

A row is a (model, file) pair and holds only the destination: its status, size and progress are
read from the snapshot when the row is drawn, so every row that shows a shared file changes
together and a progress tick never rebuilds the list.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from wandown.needs import (
    ALL_MODELS,
    FEATURE_PREFIX,
    OPTIONAL,
    VARIANT,
    shared_by_all,
    unneeded_label,
)
from wandown.state import FileView, Snapshot

# Rows sort in these groups: shared base files first, then per model, then what is not needed.
_GROUP = {ALL_MODELS: 0, OPTIONAL: 2, VARIANT: 3}


@dataclass(frozen=True)
class Row:
    """One line of the table: the file at ``dest``, shown for ``config``."""

    config: str
    dest: str
    model_id: str | None = None
    search: str = field(default="", compare=False, repr=False)  # lower-cased, for the filter

    @property
    def key(self) -> tuple[str, str]:
        return (self.config, self.dest)


def is_shared_by_all(view: FileView, model_count: int) -> bool:
    """Tell whether a file is core: needed by every model, so shown once as 'all models'."""
    return shared_by_all(view.role, view.needed_by, model_count)


def configs_for(view: FileView, model_count: int, show_all: bool) -> list[tuple[str, str | None]]:
    """Return the (config label, model id) pairs a file gets a row for."""
    if view.needed_by:
        if is_shared_by_all(view, model_count):
            return [(ALL_MODELS, None)]
        return [(model_id, model_id) for model_id in dict.fromkeys(view.needed_by)]
    if view.feature is not None:
        return [(FEATURE_PREFIX + view.feature, None)]
    label = unneeded_label(view.role)
    return [(label, None)] if show_all or label == OPTIONAL else []


def build_rows(
    snapshot: Snapshot,
    show_all: bool,
    filter_text: str = "",
    keep: Collection[str] = (),
) -> list[Row]:
    """Return the table's rows, sorted by group, model id, then destination.

    In Missing Only mode (``show_all`` False) files already present are hidden, except those in
    ``keep``: the ones this session started, so a finished download stays in view as Complete.
    See filter_rows for ``filter_text``.
    """
    return filter_rows(all_rows(snapshot, show_all, keep), filter_text)


def all_rows(snapshot: Snapshot, show_all: bool, keep: Collection[str] = ()) -> list[Row]:
    """Return the rows of a mode before any filter (see build_rows)."""
    model_count = len(snapshot.models) or snapshot.header.model_count
    models = snapshot.models
    rows: list[tuple[tuple[int, str, str], Row]] = []
    for dest, view in snapshot.files.items():
        if not show_all and view.status.present and dest not in keep:
            continue
        for config, model_id in configs_for(view, model_count, show_all):
            name = models.get(model_id, "") if model_id else ""
            search = f"{config}\n{name}\n{dest}".lower()
            group = 1 if model_id else _GROUP.get(config, 4)
            rows.append(((group, config, dest), Row(config, dest, model_id, search)))
    rows.sort(key=lambda pair: pair[0])
    return [row for _, row in rows]


def filter_rows(rows: Sequence[Row], filter_text: str) -> list[Row]:
    """Keep rows matching every word of filter_text, case-insensitively.

    A word matches the model id, the model's name, the config label, the file name or its
    folder.
    """
    terms = filter_text.lower().split()
    if not terms:
        return list(rows)
    return [row for row in rows if all(term in row.search for term in terms)]


def rows_stale(old: Snapshot | None, new: Snapshot) -> bool:
    """Tell whether a new snapshot changes which rows exist (not just what they show).

    Progress ticks replace FileView objects but keep needed_by, role and presence, so most
    snapshots need no rebuild; the identity check keeps this cheap for thousands of files.
    """
    if old is None or old.models != new.models or old.files.keys() != new.files.keys():
        return True
    if old.header.model_count != new.header.model_count:
        return True
    for dest, view in new.files.items():
        before = old.files[dest]
        if before is view:
            continue
        if (
            before.needed_by != view.needed_by
            or before.role != view.role
            or before.status.present != view.status.present
        ):
            return True
    return False


def clamp_view(cursor: int, top: int, n_rows: int, height: int) -> tuple[int, int]:
    """Return (cursor, top) moved so the cursor is a real row and on screen.

    ``top`` is the first visible row and ``height`` the number of visible rows; the view never
    scrolls past the last row, so a shrinking terminal or list keeps the table full.
    """
    if n_rows <= 0 or height <= 0:
        return 0, 0
    cursor = max(0, min(cursor, n_rows - 1))
    top = max(0, min(top, n_rows - height))
    if cursor < top:
        top = cursor
    elif cursor >= top + height:
        top = cursor - height + 1
    return cursor, top


def sort_by_size(rows: Sequence[Row], snapshot: Snapshot) -> list[Row]:
    """Return rows largest file first (unknown sizes last); ties keep their order."""
    files = snapshot.files

    def size(row: Row) -> int:
        file = files.get(row.dest)
        return file.size if file is not None and file.size is not None else -1

    return sorted(rows, key=lambda row: -size(row))
