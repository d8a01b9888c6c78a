"""What to do with one file, decided from the catalog, the Hub's metadata and the local hub.

Pure: the session gathers the facts (and does the hashing that proves a hub file); this module
only decides, so the dry run and the real run can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wandown.catalog import FileRecord
from wandown.remote import RemoteFile
from wandown.units import human_bytes

NOTHING = "nothing"  # already in place
LINK = "link"  # the hub proves it holds the file
DOWNLOAD = "download"
UNKNOWN = "unknown"  # offline, or nothing proves what the file is
FAILED = "failed"  # the Hub told us why it cannot be had
REFUSED = "refused"  # the destination is unsafe to write: inside a hub, or a broken link


@dataclass(frozen=True)
class Step:
    """One file's fate: an action, and the hub file or the reason that goes with it."""

    action: str
    reason: str = ""
    link_source: Path | None = None
    remote: RemoteFile | None = None


def decide(
    record: FileRecord,
    remote: RemoteFile | None,
    proven_in_hub: Path | None,
    offline: bool,
    problem: str | None = None,
    refusal: str | None = None,
) -> Step:
    """Decide for one file once the hub has said what it proves (before or after hashing).

    refusal is why its destination must not be written (wandown.destination.problem).
    """
    if record.status != "missing":
        return Step(NOTHING, f"{record.status}: nothing to do")
    if refusal is not None:
        return Step(REFUSED, refusal)
    if proven_in_hub is not None:
        return Step(LINK, link_source=proven_in_hub)
    if remote is None:
        if offline:
            return Step(UNKNOWN, "offline and no cached metadata; nothing in the hub proves it")
        return Step(FAILED, problem or "no Hub metadata for this file")
    if offline:
        return Step(UNKNOWN, "offline: the hub does not hold it, so it needs the network")
    return Step(DOWNLOAD, remote=remote)


def describe(dest: str, step: Step, hub_may_hold: bool = False) -> str:
    """Say in one line what a download would do with dest (the --dry-run view)."""
    if step.action == LINK:
        return f"{dest}: link from {step.link_source}"
    if step.action == DOWNLOAD and step.remote is not None:
        text = f"{dest}: download {human_bytes(step.remote.size)}"
        if hub_may_hold:
            text += " unless a same-size hub file proves identical"
        return text
    if step.action == NOTHING:
        return f"{dest}: {step.reason}"
    return f"{dest}: {step.action}: {step.reason}"
