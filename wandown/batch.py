"""One start()'s files on the linker thread: refuse, link from the hub, or download.

A batch works with the one Loaded value it was given and reports through its Bench, so it never
reaches into the session nor changes what another thread holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from wandown import plan
from wandown.hub import HubSet, ModelHubError, Wanted, link_into_place
from wandown.loaded import Loaded
from wandown.remote import RemoteFile
from wandown.state import StatusStore
from wandown.status import Status

if TYPE_CHECKING:
    from wandown.engine import DownloadJob


class Finish(Protocol):
    def __call__(
        self,
        dest: str,
        status: Status,
        message: str,
        done: int | None = None,
        link_source: str | None = None,
    ) -> None: ...


@dataclass(frozen=True)
class Bench:
    """What a batch may use of the session: the store, the stop flag, and its outcomes."""

    store: StatusStore
    stop: threading.Event
    finish: Finish  # a file's last word: its status store entry, and it is no longer active
    was_cancelled: Callable[[str], bool]
    download_url: Callable[[RemoteFile], str]
    submit: Callable[[DownloadJob], None]


class Batch:
    """One start()'s files, worked through on the linker thread with one Loaded."""

    def __init__(self, bench: Bench, loaded: Loaded, dests: list[str]) -> None:
        self.bench = bench
        self.loaded = loaded
        self.store = bench.store
        wanted = set(dests)
        self.records = {r.dest: r for r in loaded.catalog.records if r.dest in wanted}
        self.dests = dests

    def run(self) -> None:
        records = {dest: r for dest, r in self.records.items() if not self._refused(dest)}
        linked = self._link_from_hub(list(records))
        for dest in self.dests:
            if dest not in records or dest in linked or self.bench.stop.is_set():
                continue
            if self.bench.was_cancelled(dest):
                self.bench.finish(dest, Status.CANCELLED, "cancelled before it started")
                continue
            self._download(dest)

    def _refused(self, dest: str) -> bool:
        """Fail a file whose destination is unsafe to write (checked again before each write)."""
        refusal = self.loaded.refusal(self.records[dest])
        if refusal is not None:
            self.bench.finish(dest, Status.FAILED, refusal)
        return refusal is not None

    def _link_from_hub(self, dests: list[str]) -> set[str]:
        hub = self.loaded.hub
        if hub is None:
            return set()
        matches = self._hub_matches(hub, dests)
        done = set()
        for dest, hub_file in matches.items():
            if self.bench.was_cancelled(dest):
                continue
            if self._refused(dest) or self._link(dest, hub_file):  # hashing took a while
                done.add(dest)
        return done

    def _hub_matches(self, hub: HubSet, dests: list[str]) -> dict[str, Path]:
        wanted: dict[Wanted, list[str]] = {}
        for dest in dests:
            item = self.loaded.wanted(dest)
            if item is not None and hub.has_size(item.size):
                wanted.setdefault(item, []).append(dest)
        matches: dict[str, Path] = {}
        if wanted:
            proven = self.loaded.linkable(self.records[d] for d in dests)
            sizes = {
                dest: item.size for item, ds in wanted.items() for dest in ds if dest not in proven
            }

            def progress(path: Path, done: int, total: int) -> None:
                for dest, size in sizes.items():
                    if size == total:
                        self.store.update(dest, status=Status.HASHING, done=done, message=str(path))

            found = hub.match(wanted, progress=progress, cancel=self.bench.stop)
            matches = {dest: path for item, path in found.items() for dest in wanted[item]}
        if self.loaded.offline:
            for dest in dests:
                record = self.records[dest]
                if dest in matches or dest in self.loaded.remote or record.repo is None:
                    continue
                revision = record.revision or "main"
                hit = hub.find_in_hf_cache(record.repo, record.path or "", revision)
                if hit is not None:
                    matches[dest] = hit[0]
            hub.save()
        return matches

    def _link(self, dest: str, hub_file: Path) -> bool:
        """Link dest to hub_file; return whether dest is done with (linked, or failed)."""
        self.store.update(dest, status=Status.LINKING, message="")
        try:
            link_into_place(hub_file, self.loaded.place(dest))
        except FileExistsError:
            # Someone (Wan2GP, the user) put a file there meanwhile: it is theirs to keep.
            self.bench.finish(dest, Status.FAILED, _appeared_while_linking(dest))
            return True
        except (OSError, ModelHubError) as exc:
            self.store.update(dest, message=f"could not link from the hub: {exc}")
            return False
        self.bench.finish(dest, Status.LINKED, "", link_source=str(hub_file), done=0)
        return True

    def _download(self, dest: str) -> None:
        bench = self.bench
        step = self.loaded.decide(self.records[dest], None)
        if step.action is plan.Action.NOTHING:
            bench.finish(dest, self.loaded.status(dest), "")
            return
        if step.action is not plan.Action.DOWNLOAD or step.remote is None:
            unknown = step.action is plan.Action.UNKNOWN
            bench.finish(dest, Status.UNKNOWN if unknown else Status.FAILED, step.reason)
            return
        from wandown.engine import DownloadJob  # the downloader, loaded by the first download

        remote = step.remote
        job = DownloadJob(
            key=dest,
            url=bench.download_url(remote),
            dest=self.loaded.place(dest),
            size=remote.size,
            sha256=remote.sha256,
            blob_sha1=remote.blob_sha1,
            commit=remote.commit,
            hub_folders=tuple(self.loaded.hub_folders()),
            hub_folder_ids=self.loaded.hub_folder_ids(),
        )
        try:
            bench.submit(job)
        except (RuntimeError, ValueError) as exc:
            bench.finish(dest, Status.FAILED, str(exc))


def _appeared_while_linking(dest: str) -> str:
    return (
        f"{dest} appeared while linking it from the hub; left it as it is (if it is incomplete, "
        "remove it and run again)"
    )
