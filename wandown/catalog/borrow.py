"""Whose code-side facts a model uses when they were not learned for it, and saying so.

Wan2GP's handlers compute a model's text encoders, VAEs and repo files from its own keys. Learned
from the user's Wan2GP, every finetune has its own facts. Without learning (the shipped data), a
finetune borrows from a default of its architecture: the one loading the same main files when
there is one (a finetune that is another variant of it), else the architecture's own model. What
its own keys change in the handler's answer (an encoder folder picked by a new file's name,
``ltx2_video_vae_file``, a same-id override of such a key) cannot be known then: a notice says so.
"""

from __future__ import annotations

import posixpath
from typing import Any

from wandown.catalog.codedefaults import CodeData, CodeDefaults
from wandown.catalog.definitions import Definition

MAX_NAMED = 5
FINETUNES = "finetunes"


def _main_names(model: dict[str, Any]) -> frozenset[str]:
    urls = model.get("URLs")
    if not isinstance(urls, list):
        return frozenset()
    return frozenset(posixpath.basename(u.partition("|")[0]) for u in urls if isinstance(u, str))


def code_for(
    model_id: str, definitions: dict[str, Definition], code: CodeData
) -> tuple[CodeDefaults | None, str | None]:
    """Return the code-side facts model_id uses and the id they are of (see the module)."""
    definition = definitions[model_id]
    architecture = definition.architecture
    if model_id in code.models or architecture is None:
        return code.for_model(model_id, architecture)
    urls = definition.model.get("URLs")
    if isinstance(urls, str) and _of(code, urls, architecture):
        return code.models[urls], urls  # URLs naming another model: that model's files
    names = _main_names(definition.model)
    twins = [
        other
        for other in sorted(definitions)
        if names and other != model_id and _of(code, other, architecture)
        and _main_names(definitions[other].model) == names
    ]  # fmt: skip
    if twins:
        return code.models[twins[0]], twins[0]
    return code.for_model(model_id, architecture)


def _of(code: CodeData, model_id: str, architecture: str) -> bool:
    known = code.models.get(model_id)
    return known is not None and known.architecture == architecture


def unlearned_finetunes(
    definitions: dict[str, Definition], sources: dict[str, str | None], origin: str
) -> list[str]:
    """Return one notice naming the finetunes whose code-side facts are not their own.

    origin is CodeData.origin: "" (no Wan2GP code to learn: a copied catalog, the demo) says
    nothing, as the shipped data is all there is; "learned" names only finetunes of families that
    fell back; after a failure ("shipped ...") every finetune is named.
    """
    if not origin:
        return []
    learned = origin == "learned"
    borrowed, overrides = [], []
    for model_id, definition in sorted(definitions.items()):
        if not any(path.parent.name == FINETUNES for path in definition.sources):
            continue
        source = sources.get(model_id)
        if source is not None and source != model_id:
            borrowed.append(f"{model_id} (from {source})")
        elif source == model_id and not learned:
            overrides.append(model_id)
    if not borrowed and not overrides:
        return []
    parts = []
    if borrowed:
        parts.append(f"finetunes {_names(borrowed)} use the files Wan2GP's code adds for a default")
    if overrides:
        parts.append(f"finetunes overriding {_names(overrides)} use the default's")
    return [
        f"{'; '.join(parts)}: Wan2GP's code was not learned for them, so files their own keys "
        "choose (an encoder picked by a file's name, ltx2_video_vae_file) may differ"
    ]


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_NAMED])
    return shown if len(items) <= MAX_NAMED else f"{shown} (+{len(items) - MAX_NAMED} more)"
