"""The Models view's rows as a pure function of a snapshot: one row per model, its sums.

A model's sums are over the files it needs, each once; a file shared by several models shows in
each of their rows, while every total of what a start would do (the footer, the disk plan) is
taken over destinations, so a shared file counts once there.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from wandown.state import Snapshot
from wandown.status import ModelState
from wandown.units import human_bytes


@dataclass(frozen=True)
class ModelRow:
    """One model: what it needs, what is in place, what the hub holds, what is left to fetch."""

    model_id: str
    name: str
    family: str
    files: tuple[str, ...]  # every destination it needs
    missing: tuple[str, ...]  # those not in place: what Enter ticks
    total: int  # bytes of every file it needs (unknown sizes count 0)
    present: int
    linkable: int
    to_fetch: int
    unknown_sizes: int
    state: ModelState
    search: str = field(default="", compare=False, repr=False)

    @property
    def key(self) -> str:
        return self.model_id


def model_rows(
    snapshot: Snapshot,
    show_all: bool,
    keep: Collection[str] = (),
    by_size: bool = False,
) -> list[ModelRow]:
    """Return one row per model, by id (or largest first when by_size).

    In Missing Only mode (show_all False) a Ready model is hidden, unless one of its files is in
    ``keep`` (started this session), so a model that just became ready stays in view.
    """
    needs: dict[str, list[str]] = {model_id: [] for model_id in snapshot.models}
    for dest, file in snapshot.files.items():
        for model_id in file.needed_by:
            if model_id in needs:
                needs[model_id].append(dest)
    rows = []
    for model_id, dests in needs.items():
        row = summarize(snapshot, model_id, dests)
        if show_all or row.state is not ModelState.READY or any(d in keep for d in dests):
            rows.append(row)
    if by_size:
        rows.sort(key=lambda row: (-row.total, row.model_id))
    else:
        rows.sort(key=lambda row: row.model_id)
    return rows


def summarize(snapshot: Snapshot, model_id: str, dests: Iterable[str]) -> ModelRow:
    """Sum one model's files."""
    files = snapshot.files
    views = [files[dest] for dest in dict.fromkeys(dests) if dest in files]
    present = [v for v in views if v.status.present]
    missing = [v for v in views if not v.status.present]
    name = snapshot.models.get(model_id, model_id)
    family = snapshot.families.get(model_id, "")
    return ModelRow(
        model_id=model_id,
        name=name,
        family=family,
        files=tuple(v.dest for v in views),
        missing=tuple(v.dest for v in missing),
        total=sum(v.size or 0 for v in views),
        present=sum(v.size or 0 for v in present),
        linkable=sum(v.size or 0 for v in missing if v.linkable),
        to_fetch=sum(v.to_fetch for v in missing),
        unknown_sizes=sum(v.size is None for v in views),
        state=ModelState.of(len(present), len(views)),
        search=f"{model_id}\n{name}\n{family}".lower(),
    )


def filter_model_rows(rows: Sequence[ModelRow], filter_text: str) -> list[ModelRow]:
    """Keep rows matching every word of filter_text in the id, the name or the family."""
    terms = filter_text.lower().split()
    return [row for row in rows if all(term in row.search for term in terms)]


def largest_models(
    snapshot: Snapshot, dests: Collection[str], count: int = 3
) -> list[tuple[str, int]]:
    """Return the models that most of dests' bytes to fetch belong to, largest first."""
    files = snapshot.files
    sums: dict[str, int] = {}
    for dest in dests:
        file = files.get(dest)
        if file is None or not file.to_fetch:
            continue
        for model_id in file.needed_by:
            sums[model_id] = sums.get(model_id, 0) + file.to_fetch
    ranked = sorted(sums.items(), key=lambda item: (-item[1], item[0]))[:count]
    return [(snapshot.models.get(model_id, model_id), size) for model_id, size in ranked]


def describe_largest(models: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{name} {human_bytes(size)}" for name, size in models)
