"""Who needs a file, in the words the interface's Config column and --list's show.

One rule for both: a core file, or one every model of several needs, is "all models"; a file no
model loads is "optional" (on demand) or a "(variant)" Wan2GP would not pick.
"""

from __future__ import annotations

from collections.abc import Collection

ALL_MODELS = "all models"
OPTIONAL = "optional"
VARIANT = "(variant)"
FEATURE_PREFIX = "feature:"  # the Config label of a feature's file, and its --download selector


def shared_by_all(role: str, needed_by: Collection[str], model_count: int) -> bool:
    """Tell whether a file is core: needed by every model, so shown once as 'all models'."""
    if role == "core" and needed_by:
        return True
    return model_count > 1 and len(needed_by) >= model_count


def unneeded_label(role: str) -> str:
    """Name a file no model loads with the current settings."""
    return OPTIONAL if role == "on_demand" else VARIANT


def needed_label(role: str, needed_by: Collection[str], model_count: int) -> str:
    """Name the models that need a file in one cell: 'all models', one id, or 'id +N'."""
    needed = sorted(needed_by)
    if not needed:
        return unneeded_label(role)
    if shared_by_all(role, needed, model_count):
        return ALL_MODELS
    return needed[0] if len(needed) == 1 else f"{needed[0]} +{len(needed) - 1}"
