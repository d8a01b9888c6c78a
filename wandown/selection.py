"""The command line's file selectors: model ids, file names, destinations, 'needed', 'missing'."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from wandown.errors import UsageError
from wandown.loaded import Loaded
from wandown.status import Status

NEEDED = "needed"
MISSING = Status.MISSING.value  # selects the needed files of that status


def select(loaded: Loaded, selectors: Iterable[str]) -> list[str]:
    """Turn selectors into destinations, in the order given, each once."""
    chosen: dict[str, None] = {}
    for selector in selectors:
        matches = _select_one(loaded, selector)
        if not matches and selector not in (NEEDED, MISSING):
            raise UsageError(
                f"'{selector}' matches no model id, file name or destination "
                f"(try --list, or '{NEEDED}' / '{MISSING}')"
            )
        chosen.update(dict.fromkeys(matches))
    return list(chosen)


def _select_one(loaded: Loaded, selector: str) -> list[str]:
    catalog = loaded.catalog
    records = catalog.records
    if selector == NEEDED:
        return [r.dest for r in records if r.needed_by]
    if selector == MISSING:
        return [r.dest for r in records if r.needed_by and loaded.is_missing(r)]
    if selector in catalog.models:
        return [r.dest for r in records if selector in r.needed_by]
    path = Path(selector)
    if path.is_absolute():
        try:
            selector = path.resolve(strict=False).relative_to(catalog.root.resolve()).as_posix()
        except ValueError:  # a checkpoint root outside the Wan2GP folder: absolute destinations
            return [r.dest for r in records if r.dest == os.path.normpath(selector)]
    selector = selector.strip("/")
    return [r.dest for r in records if r.dest == selector or r.file_name == selector]
