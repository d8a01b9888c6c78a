"""Learn the code-side facts from the user's own Wan2GP, falling back to the shipped copy.

Wan2GP's family handlers compute each model's text encoders, VAEs, repo files and LoRA folder in
Python, and its run-time features list their own assets; a frozen copy of those facts goes stale
with every Wan2GP release. So wandown asks the installed code itself, in a child process
(``runner``), caches the answer keyed on the files it read (``cache``), and uses the shipped data
(``wandown/data/``, made by the same code) for whatever could not be learned, saying so once.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wandown.catalog.codedefaults import CodeData, parse, shipped, shipped_for
from wandown.learn import cache
from wandown.learn.runner import LearnError, run_child

__all__ = ["LearnError", "Learned", "learn", "learned_code", "to_data"]


@dataclass(frozen=True)
class Learned:
    """The code-side facts one start uses, and what the user should be told about them."""

    code: CodeData
    notices: tuple[str, ...]
    learned: bool  # False: the shipped data stands in for the whole of Wan2GP's code
    from_cache: bool = False


def install_root_of(source_root: Path) -> Path:
    """Return the folder holding defaults/: the source root, or the parent of a bare source."""
    if (source_root / "defaults").is_dir() or not (source_root.parent / "defaults").is_dir():
        return source_root
    return source_root.parent


def to_data(answer: dict[str, Any], commit: str = "") -> dict[str, Any]:
    """Return a child's answer in the data file's form (``wandown/data/code_defaults.json``)."""
    return {
        "wan2gp_commit": commit,
        "core": answer.get("core") or [],
        "models": answer.get("models") or {},
        "features": answer.get("features") or {},
        "model_features": answer.get("model_features") or {},
    }


def learn(source_root: Path, install_root: Path | None = None) -> tuple[dict[str, Any], bool]:
    """Return the child's answer for a Wan2GP tree and whether it came from the cache."""
    install = install_root or install_root_of(source_root)
    cached = cache.lookup(source_root, install)
    if cached is not None:
        return cached, True
    failed = cache.lookup_failure(source_root, install)
    if failed is not None:
        raise LearnError(f"{failed}; remembered from an earlier start, as nothing changed since")
    try:
        answer = run_child(source_root, install)
    except LearnError as exc:
        cache.store_failure(source_root, install, str(exc))
        raise
    cache.store(source_root, install, answer)
    return answer, False


def _shipped_note(code: CodeData) -> str:
    return f"wandown's shipped data (Wan2GP {code.commit[:7] or 'unknown'})"


def combine(answer: dict[str, Any], fallback: CodeData) -> tuple[CodeData, list[str]]:
    """Return the learned facts, with the fallback's for families that failed, and notices."""
    learned = parse(to_data(answer, "learned"))
    notices = [f"Wan2GP's code: {note}" for note in answer.get("notices", ())]
    architectures = set(answer.get("architectures") or ())
    models = dict(learned.models)
    for model_id, defaults in fallback.models.items():
        if model_id not in models and defaults.architecture not in architectures:
            models[model_id] = defaults
    notices += _family_notices(answer.get("failed_families") or {}, fallback)
    for call in answer.get("recorded") or ():
        if call.get("call") == "write":
            notices.append(
                f"Wan2GP's code tried to {call.get('url')} while wandown learned it; refused "
                "(wandown never writes into your Wan2GP)"
            )
        elif call.get("call") == "program":
            notices.append(
                f"Wan2GP's code tried to run '{call.get('url')}' while wandown learned it; refused"
            )
        elif call.get("call") in ("url", "connect", "snapshot_download"):
            what = call.get("url") or call.get("repo")
            notices.append(
                f"Wan2GP's code tried to fetch {what} while wandown learned it; refused, and "
                "that file is not listed"
            )
    notices += _whole_folders(answer)
    for plugin in answer.get("community_plugins") or ():
        notices.append(
            f"plugin {plugin} is enabled: files it fetches itself are unknown to wandown"
        )
    features, model_features = dict(learned.features), dict(learned.model_features)
    if any(note.startswith("feature ") for note in answer.get("notices", ())):
        features = {**fallback.features, **features}
        model_features = {**fallback.model_features, **model_features}
    code = dataclasses.replace(
        learned,
        commit=fallback.commit,
        models=models,
        core=learned.core or fallback.core,
        features=features,
        model_features=model_features,
        plugin_definitions=tuple(answer.get("plugin_definitions") or ()),
        origin="learned",
    )
    return code, notices


MAX_FAMILY_NOTICES = 3


def _family_notices(failed: dict[str, str], fallback: CodeData) -> list[str]:
    """Name each family that failed; many at once (a moved module) become one line."""
    if len(failed) > MAX_FAMILY_NOTICES:
        names = sorted(failed)
        first = failed[names[0]]
        return [
            f"could not learn {len(names)} of Wan2GP's model families ({', '.join(names[:3])}, "
            f"...; the first: {first}); their models use {_shipped_note(fallback)} or only "
            "their JSON"
        ]
    return [
        f"could not learn Wan2GP's model family {family} ({why}); its models use "
        f"{_shipped_note(fallback)} or only their JSON"
        for family, why in sorted(failed.items())
    ]


def _whole_folders(answer: dict[str, Any]) -> list[str]:
    """Name repo folders Wan2GP fetches whole (an empty file list): their files are unknown."""
    models = answer.get("models") or {}
    owners = [(f"model {m}", facts.get("repo_files") or []) for m, facts in models.items()]
    owners += [(f"feature {n}", groups) for n, groups in (answer.get("features") or {}).items()]
    notes = []
    for owner, groups in owners:
        for group in groups:
            for source, _, files in group.get("folders") or ():
                if not files:
                    notes.append(
                        f"{owner}: Wan2GP fetches the whole folder '{source}' of {group['repo']}; "
                        "its files are not listed"
                    )
    return sorted(set(notes))


Fallback = Callable[[], CodeData]


@dataclass(frozen=True)
class _Memo:
    """What one root's learning gave, and the cached answer it came from (None: it failed)."""

    learned: Learned
    answer: dict[str, Any] | None
    has_code: bool  # wgp.py was there


_remembered: dict[Path, _Memo] = {}
_lock = threading.Lock()


def learned_code(wan2gp_root: Path, fallback: Fallback = shipped) -> Learned:
    """Return the code-side facts for an install: learned from its own Wan2GP when it has one.

    An install without ``wgp.py`` (definitions only: the demo, a copied catalog) uses the shipped
    model data silently, without the run-time features of a Wan2GP it does not have. Within one
    process the answer is remembered while the files it came from are unchanged, so a reload
    neither learns nor warns twice, yet a Wan2GP updated under a running wandown is learned anew.
    """
    root = Path(wan2gp_root).absolute()
    with _lock:
        known = _remembered.get(root)
        if known is not None and _still_holds(root, known):
            return dataclasses.replace(known.learned, notices=())
        memo = _learn_or_fall_back(root, fallback)
        _remembered[root] = memo
        return memo.learned


def forget() -> None:
    """Drop what this process remembered (tests start each case afresh)."""
    with _lock:
        _remembered.clear()


def _still_holds(root: Path, known: _Memo) -> bool:
    """Tell whether nothing the remembered answer came from changed (the cache's own check).

    Where the cache could not be written (a read-only or full disk) nothing tells a change:
    the answer then holds for the process, rather than the child running at every reload.
    """
    has_code = (root / "wgp.py").is_file()
    if has_code != known.has_code:
        return False
    if not has_code:
        return True
    install = install_root_of(root)
    failed = known.answer is None
    if not cache.recorded(root, failure=failed):
        return True
    if failed:
        return cache.lookup_failure(root, install) is not None
    return cache.lookup(root, install) == known.answer


def _learn_or_fall_back(root: Path, fallback: Fallback) -> _Memo:
    if not (root / "wgp.py").is_file():
        return _Memo(Learned(shipped_for(root), (), learned=False), None, has_code=False)
    try:
        answer, from_cache = learn(root)
    except LearnError as exc:
        code = fallback()
        notice = (
            f"could not learn Wan2GP's code at {root} ({exc}); using {_shipped_note(code)}: "
            "files a newer Wan2GP needs may be missing"
        )
        origin = f"shipped {code.commit[:7] or 'data'}"
        learned = Learned(dataclasses.replace(code, origin=origin), (notice,), learned=False)
        return _Memo(learned, None, has_code=True)
    code, notices = combine(answer, fallback())
    learned = Learned(code, tuple(notices), learned=True, from_cache=from_cache)
    return _Memo(learned, answer, has_code=True)
