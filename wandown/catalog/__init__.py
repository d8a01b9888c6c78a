"""What Wan2GP needs: every file of every model, where it goes, and whether it is there.

Pure apart from reading the install's definitions and stat-ing destinations; never the network.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from wandown.catalog.build import build_records, parse_hub_url, presence_places
from wandown.catalog.codedefaults import CodeData, shipped_for
from wandown.catalog.definitions import WanSettings, read_definitions, read_settings
from wandown.catalog.presence import locate
from wandown.catalog.records import ROLES, Catalog, FileRecord, ModelInfo, Presence
from wandown.errors import CatalogError

__all__ = [
    "ROLES",
    "Catalog",
    "FileRecord",
    "ModelInfo",
    "Presence",
    "WanSettings",
    "load_catalog",
    "parse_hub_url",
    "presence_of",
]


def load_catalog(
    root: Path,
    code: CodeData | None = None,
    config_dir: Path | None = None,
    bf16_supported: bool = True,
) -> Catalog:
    """Read the Wan2GP install at root and return its catalog (presence_of says what is there).

    config_dir is Wan2GP's ``--config`` folder; bf16_supported the GPU's answer (see wandown.gpu).
    """
    root = Path(root)
    if not (root / "defaults").is_dir():
        raise CatalogError(
            f"no Wan2GP install found: {root / 'defaults'} does not exist. Set "
            "wan2gp_directory in config.json (or --wan2gp-dir) to Wan2GP's ckpts folder"
        )
    code = code or shipped_for(root)
    definitions, notices = read_definitions(root, code.plugin_definitions)
    settings, setting_notices = read_settings(root, config_dir, bf16_supported)
    notices += setting_notices
    records, models, build_notices, ckpts = build_records(definitions, code, settings, root)
    return Catalog(
        root, settings, models, tuple(records), notices + build_notices, ckpts, code.origin
    )


def presence_of(
    catalog: Catalog, records: Iterable[FileRecord] | None = None
) -> dict[str, Presence]:
    """Stat the possible places of every record (or of records): {dest: presence}."""
    return {
        record.dest: locate(presence_places(catalog.root, record))
        for record in (catalog.records if records is None else records)
    }
