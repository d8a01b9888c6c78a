"""The command line's file selectors: model ids, file names, destinations, 'needed', 'missing',
and ``feature:NAME`` for a run-time feature's files (NAME or any group under ``NAME/``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from wandown.errors import UsageError
from wandown.loaded import Loaded
from wandown.needs import FEATURE_PREFIX
from wandown.status import Status

NEEDED = "needed"
MISSING = Status.MISSING.value  # selects the needed files of that status


def select(loaded: Loaded, selectors: Iterable[str]) -> list[str]:
    """Turn selectors into destinations, in the order given, each once."""
    chosen: dict[str, None] = {}
    for selector in selectors:
        if selector.startswith(FEATURE_PREFIX):
            chosen.update(dict.fromkeys(_select_feature(loaded, selector[len(FEATURE_PREFIX) :])))
            continue
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
        except ValueError:
            return []
    selector = selector.strip("/")
    return [r.dest for r in records if r.dest == selector or r.file_name == selector]


def feature_names(loaded: Loaded) -> list[str]:
    """Return every feature group of the catalog, sorted."""
    return sorted({name for record in loaded.catalog.records for name in record.features})


def _select_feature(loaded: Loaded, name: str) -> list[str]:
    """Return the files of feature name, or of every group under name/."""
    name = name.strip("/")
    chosen = [
        record.dest
        for record in loaded.catalog.records
        if any(f == name or f.startswith(f"{name}/") for f in record.features)
    ]
    if not chosen:
        names = feature_names(loaded)
        tops = sorted({n.split("/", 1)[0] for n in names if not n.startswith("config/")})
        with_configs = any(n.startswith("config/") for n in names)
        configs = "config/<model id>/<choice>" if with_configs else ""
        known = ", ".join([*tops, configs] if configs else tops) or "none"
        raise UsageError(
            f"'{FEATURE_PREFIX}{name}' names no feature (known: {known}; see --list --json)"
        )
    return chosen
