"""Which files a run picks: the command line's selectors, and what is ticked at start.

Selectors are model ids, file names, destinations, 'needed', 'missing' and ``feature:NAME`` for a
run-time feature's files (NAME or any group under ``NAME/``). At start the interface ticks only the
missing files of the models the user chose: Wan2GP's own model list (``transformer_types`` in
wgp_config.json) and ``--models``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
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
        except ValueError:  # a checkpoint root outside the Wan2GP folder: absolute destinations
            return [r.dest for r in records if r.dest == os.path.normpath(selector)]
    selector = selector.strip("/")
    return [r.dest for r in records if r.dest == selector or r.file_name == selector]


def parse_model_ids(loaded: Loaded, values: Sequence[str]) -> list[str]:
    """Split --models values (ID[,ID...], repeatable) and check every id names a model."""
    ids = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if values and not ids:
        raise UsageError("--models needs at least one model id (try --list)")
    models = loaded.catalog.models
    for model_id in ids:
        if model_id not in models:
            raise UsageError(f"--models: no model '{model_id}'; {_close_matches(model_id, models)}")
    return list(dict.fromkeys(ids))


def _close_matches(model_id: str, models: Iterable[str]) -> str:
    close = difflib.get_close_matches(model_id, list(models), n=5, cutoff=0.6)
    if not close:
        lowered = model_id.lower()
        close = sorted(m for m in models if lowered in m.lower())[:5]
    if close:
        return f"did you mean {', '.join(close)}? (--list shows every model)"
    return "--list shows every model id"


def chosen_models(loaded: Loaded, flag_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Return the models chosen for the start (Wan2GP's list, then --models) and notices.

    An id in transformer_types that no definition has is skipped with a notice, as Wan2GP does.
    """
    models = loaded.catalog.models
    chosen: dict[str, None] = {}
    notices = []
    for model_id in loaded.catalog.settings.transformer_types:
        if model_id in models:
            chosen[model_id] = None
        else:
            notices.append(
                f"wgp_config.json's transformer_types names '{model_id}', which no definition "
                "has; it is not chosen"
            )
    chosen.update(dict.fromkeys(flag_ids))
    return list(chosen), notices


def start_selection(loaded: Loaded, model_ids: Iterable[str]) -> list[str]:
    """Return the files ticked at start: the missing files the chosen models need."""
    wanted = set(model_ids)
    if not wanted:
        return []
    return [r.dest for r in loaded.catalog.records if r.needed_by & wanted and loaded.is_missing(r)]


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
