"""The plain-text view for logs and cron: a line per change, progress every few seconds.

It reads snapshots of the status store and returns lines, names made printable; printing is
the caller's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wandown.safetext import printable
from wandown.state import FileView, Snapshot
from wandown.status import Status, tally
from wandown.units import human_bytes, human_duration, human_speed

PROGRESS_EVERY = 5.0


def progress_line(view: FileView) -> str:
    """Describe a running download, or the hashing of a hub candidate, in one line."""
    dest = printable(view.dest)
    if not view.size:
        return f"    ?%  {dest}  {human_bytes(view.done)}  {human_speed(view.speed)}"
    percent = f"{100 * view.done / view.size:5.1f}%"
    amount = f"{human_bytes(view.done)} of {human_bytes(view.size)}"
    if view.status is Status.HASHING:
        return f"{percent}  {dest}  hashing {printable(view.message)}  {amount}"
    eta = human_duration((view.size - view.done) / view.speed) if view.speed else "-"
    return f"{percent}  {dest}  {amount}  {human_speed(view.speed)}  ETA {eta}"


def change_line(view: FileView) -> str:
    """Describe a file that reached a new status."""
    text = f"{view.status.label:<11} {printable(view.dest)}"
    if view.status is Status.DOWNLOADING and view.size:
        text += f" ({human_bytes(view.size)})"
    if view.link_source and view.status is Status.LINKED:
        text += f" -> {printable(view.link_source)}"
    if view.message:
        text += f": {printable(view.message)}"
    return text


def failover_line(view: FileView) -> str:
    """Say that a file moved to another endpoint: from where, to where, and why."""
    return f"{'failed over':<11} {printable(view.dest)} {printable(view.failover)}"


@dataclass
class PlainReporter:
    """Turns successive snapshots into log lines, remembering what it already said."""

    every: float = PROGRESS_EVERY
    _status: dict[str, Status] = field(default_factory=dict)
    _last_progress: dict[str, float] = field(default_factory=dict)
    _failover: dict[str, str] = field(default_factory=dict)

    def lines(self, snapshot: Snapshot, now: float, watched: set[str]) -> list[str]:
        out = []
        for dest in sorted(watched):
            view = snapshot.files.get(dest)
            if view is None:
                continue
            if view.failover and self._failover.get(dest) != view.failover:
                self._failover[dest] = view.failover
                out.append(failover_line(view))
            if self._status.get(dest) != view.status:
                self._status[dest] = view.status
                self._last_progress[dest] = now
                if view.status is not Status.PENDING:  # a line per queued file would bury the log
                    out.append(change_line(view))
            elif (
                view.status in (Status.DOWNLOADING, Status.HASHING)
                and now - self._last_progress[dest] >= self.every
            ):
                self._last_progress[dest] = now
                out.append(progress_line(view))
        return out


def summary_lines(snapshot: Snapshot, watched: set[str]) -> list[str]:
    """Sum up a run: counts per final status, and every failure with its reason."""
    views = [snapshot.files[d] for d in sorted(watched) if d in snapshot.files]
    lines = [f"done: {tally([v.status for v in views])}" if views else "done: nothing to do"]
    failed = [v for v in views if v.status is Status.FAILED]
    lines += [f"  failed: {printable(v.dest)}: {printable(v.message)}" for v in failed]
    unfinished = [v for v in views if v.status.active]
    lines += [f"  unfinished: {printable(v.dest)} ({v.status.value})" for v in unfinished]
    return lines


def all_present(snapshot: Snapshot, watched: set[str]) -> bool:
    return all(snapshot.files[d].status.present for d in watched if d in snapshot.files)
