"""What to do with one file, decided from its presence, the Hub's metadata and the local hub.

Pure: the session gathers the facts (and does the hashing that proves a hub file); this module
only decides, so the dry run and the real run can never disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wandown.remote import RemoteFile
from wandown.status import Status
from wandown.units import human_bytes

if TYPE_CHECKING:
    from wandown.loaded import Loaded


class Action(str, enum.Enum):
    """What a run does with one file (an action, not a status: see wandown.status)."""

    NOTHING = "nothing"  # already in place
    LINK = "link"  # the hub proves it holds the file
    DOWNLOAD = "download"
    UNKNOWN = "unknown"  # offline, or nothing proves what the file is
    FAILED = "failed"  # the Hub told us why it cannot be had
    REFUSED = "refused"  # the destination is unsafe to write: inside a hub, or a broken link

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Step:
    """One file's fate: an action, and the hub file or the reason that goes with it."""

    action: Action
    reason: str = ""
    link_source: Path | None = None
    remote: RemoteFile | None = None


def decide(
    presence: Status,
    remote: RemoteFile | None,
    proven_in_hub: Path | None,
    offline: bool,
    problem: str | None = None,
    refusal: str | None = None,
) -> Step:
    """Decide for one file once the hub has said what it proves (before or after hashing).

    presence is what the catalog found on disk; refusal is why its destination must not be
    written (wandown.destination.problem).
    """
    if presence is not Status.MISSING:
        return Step(Action.NOTHING, f"{presence.value}: nothing to do")
    if refusal is not None:
        return Step(Action.REFUSED, refusal)
    if proven_in_hub is not None:
        return Step(Action.LINK, link_source=proven_in_hub)
    if remote is None:
        if offline:
            return Step(
                Action.UNKNOWN, "offline and no cached metadata; nothing in the hub proves it"
            )
        return Step(Action.FAILED, problem or "no Hub metadata for this file")
    if offline:
        return Step(Action.UNKNOWN, "offline: the hub does not hold it, so it needs the network")
    return Step(Action.DOWNLOAD, remote=remote)


def fetch_bytes(step: Step, partial: int = 0) -> int:
    """Return the bytes a step still writes: a download's size less its partial, else 0."""
    if step.action is Action.DOWNLOAD and step.remote is not None:
        return max(0, step.remote.size - partial)
    return 0


def describe(dest: str, step: Step, hub_may_hold: bool = False) -> str:
    """Say in one line what a download would do with dest (the --dry-run view)."""
    if step.action is Action.LINK:
        return f"{dest}: link from {step.link_source}"
    if step.action is Action.DOWNLOAD and step.remote is not None:
        text = f"{dest}: download {human_bytes(step.remote.size)}"
        if hub_may_hold:
            text += " unless a same-size hub file proves identical"
        return text
    if step.action is Action.NOTHING:
        return f"{dest}: {step.reason}"
    return f"{dest}: {step.action.value}: {step.reason}"


def describe_plan(loaded: Loaded, dests: Sequence[str]) -> list[str]:
    """Say what a download of dests would do, one line a file, without doing it."""
    records = [r for r in map(loaded.catalog.record, dests) if r is not None]
    linkable = loaded.linkable(records)
    return [
        describe(
            record.dest,
            loaded.decide(record, linkable.get(record.dest)),
            hub_may_hold=loaded.hub_may_hold(record.dest),
        )
        for record in records
    ]
