"""Reclaim disk space in a Wan2GP install: list what can go, then delete it (or link it).

Typical use::

    found = find(loaded, notice)               # survey (stat) + hub copies (hashing) + plan
    for item in found.items: ...               # show it
    outcome = delete(found, loaded, print)     # re-checks each file right before acting

survey.py holds the rule of what may ever be listed, plan.py decides (pure), apply.py acts.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from wandown.catalog import Catalog, load_catalog
from wandown.hub import HubSet
from wandown.hub.link import identical_hub_file
from wandown.loaded import Loaded
from wandown.reclaim.apply import Outcome, apply
from wandown.reclaim.plan import (
    HubCopy,
    Item,
    Kind,
    Plan,
    copy_candidates,
    places_of,
    plan,
    shown_path,
)
from wandown.reclaim.show import summary, table, to_json
from wandown.reclaim.survey import Found, Root, survey
from wandown.units import human_bytes

__all__ = [
    "Item",
    "Kind",
    "Outcome",
    "Plan",
    "delete",
    "find",
    "roots_of",
    "shown_path",
    "summary",
    "table",
    "to_json",
]

LORA_FOLDER = "loras"


def roots_of(catalog: Catalog) -> list[Root]:
    """Return the checkpoint roots, then every LoRA folder (current and older installs')."""
    root = catalog.root
    roots = [Root(root / place) for place in catalog.settings.checkpoints_paths]
    names = {r.dest.split("/")[0] for r in catalog.records if r.role == "lora" and "/" in r.dest}
    with contextlib.suppress(OSError):
        names |= {
            name
            for name in os.listdir(root)
            if name == LORA_FOLDER or name.startswith(LORA_FOLDER + "_")
        }
    roots += [Root(root / name, configs=False) for name in sorted(names)]
    return roots


def guarded_folders(catalog: Catalog) -> list[str]:
    """Return the folders whose files are the copies, never the hub's (as --dedupe does)."""
    places = [catalog.root, *(catalog.root / p for p in catalog.settings.checkpoints_paths)]
    return [os.path.realpath(place) for place in places]


def find(loaded: Loaded, notice: Callable[[str], None]) -> Plan:
    """Survey the install, prove hub copies by their bytes, and return what can go."""
    catalog = loaded.catalog
    places = places_of(catalog)
    roots = roots_of(catalog)
    found = survey(
        roots,
        catalog.root,
        loaded.hub_folders(),
        loaded.hub_folder_ids(),
        notice,
        known=places.listed,
    )
    candidates = copy_candidates(found.files)
    hubs = loaded.hub
    if hubs is not None:
        candidates = [entry for entry in candidates if hubs.has_size(entry.stat.size)]
        if candidates:
            size = human_bytes(sum(entry.stat.size for entry in candidates))
            notice(f"reclaim: reading {len(candidates)} files ({size}) to compare with the hub")
    copies = _hub_copies(candidates, hubs, guarded_folders(catalog))
    present = {dest for dest in loaded.presence if loaded.status(dest).present}
    loras = {os.path.normpath(os.path.abspath(r.path)) for r in roots if not r.configs}
    return plan(found, places, present, loaded.remote, copies, catalog.root, lora_roots=loras)


def _hub_copies(
    candidates: list[Found], hubs: HubSet | None, guarded: list[str]
) -> dict[Path, HubCopy]:
    copies: dict[Path, HubCopy] = {}
    if hubs is None:
        return copies
    for entry in candidates:
        try:
            now = os.lstat(entry.path)
        except OSError:
            continue
        for position, index in enumerate(hubs):
            if not index.has_size(entry.stat.size):
                continue
            key = identical_hub_file(str(entry.path), now, index, guarded, None, None)
            if key is not None:
                copies[entry.path] = HubCopy(position, key, index.link_target(key))
                break
    hubs.save()
    return copies


def delete(found: Plan, loaded: Loaded, say: Callable[[str], None]) -> Outcome:
    """Delete (or link) what find listed, reading the catalog again so nothing needed goes."""
    catalog = loaded.catalog
    fresh = load_catalog(catalog.root)
    needed_now = places_of(fresh).needed
    roots = frozenset(
        os.path.normpath(os.path.abspath(r.path)) for r in [*roots_of(catalog), Root(catalog.root)]
    )
    guarded = guarded_folders(catalog)
    return apply(found, catalog.root, loaded.hub, needed_now, guarded, say, roots=roots)
