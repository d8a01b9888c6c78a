"""One run of wandown: catalog, then Hub metadata and the local hub, then links and downloads.

The session owns the worker threads (a linker that hashes hub candidates, the engine's pool, an
event pump) and the status store the views read. The interface calls it through the controller
methods (start, cancel, set_limit, reload, busy, shutdown); plain mode calls the same methods.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wandown import destination, plan, state
from wandown.catalog import Catalog, FileRecord, load_catalog, refresh_status
from wandown.config import Config
from wandown.engine import DownloadJob, Engine, Event
from wandown.errors import UsageError, WandownError
from wandown.fsutil import is_inside
from wandown.hub import HubIndex, ModelHubError, Wanted, link_into_place, scan_hub
from wandown.remote import FileRef, HubSettings, MetadataClient, RemoteFile

Notice = Callable[[str], None]

_CATALOG_STATUS = {"exists": state.EXISTS, "linked": state.LINKED, "missing": state.MISSING}


@dataclass(frozen=True)
class RunOptions:
    """How hard this run may use the network and the machine (offline lives in HubSettings)."""

    jobs: int = 2
    connections: int = 8
    limit_kb: float | None = None
    cache_path: Path | None = None


def ref_of(record: FileRecord) -> FileRef | None:
    if record.repo is None or record.revision is None or record.path is None:
        return None
    return FileRef(record.repo, record.revision, record.path)


def wanted_of(record: FileRecord, remote: RemoteFile | None) -> Wanted | None:
    """Describe a record for the hub matcher: only Hub identities prove a match."""
    if remote is None:
        return None
    return Wanted(
        size=remote.size,
        sha256=remote.sha256,
        blob_sha1=remote.blob_sha1,
        repo=remote.repo,
        path=remote.path,
    )


def file_view(
    record: FileRecord, remote: RemoteFile | None, problem: str | None, offline: bool = False
) -> state.FileView:
    status = _CATALOG_STATUS.get(record.status, state.MISSING)
    message = ""
    if status == state.MISSING and problem:
        message = problem
    elif status == state.MISSING and remote is None and record.repo is not None:
        message = "offline, and no cached Hub metadata" if offline else "no Hub metadata yet"
    return state.FileView(
        dest=record.dest,
        file_name=record.file_name,
        folder=record.folder,
        role=record.role,
        needed_by=tuple(sorted(record.needed_by)),
        listed_by=tuple(sorted(record.listed_by)),
        url=record.url,
        size=record.size,
        status=status,
        message=message,
        link_source=str(record.found_at) if record.status == "linked" and record.found_at else None,
    )


class Session:
    """Everything one run knows and does; the controller behind every view."""

    def __init__(
        self,
        config: Config,
        hub_settings: HubSettings,
        options: RunOptions,
        notice: Notice,
    ) -> None:
        self.config = config
        self.notice = notice
        self.hub_settings = hub_settings
        self.client = MetadataClient(hub_settings, cache_path=options.cache_path)
        self.catalog: Catalog | None = None
        self.remote: dict[str, RemoteFile] = {}
        self.problems: dict[str, str] = {}
        self.hub: HubIndex | None = None
        self.store = state.StatusStore({}, state.Header(), {})
        self._stop = threading.Event()
        self._links: queue.Queue[list[str] | None] = queue.Queue()
        self._active: set[str] = set()
        self._cancelled: set[str] = set()  # asked to stop before the engine had them
        self._active_lock = threading.Lock()
        self.engine = Engine(
            jobs=options.jobs,
            connections=options.connections,
            limit_kb=options.limit_kb,
            headers_for=self.client.auth_headers,
        )
        self._threads: list[threading.Thread] = []

    # -- loading ------------------------------------------------------------------------------

    def load(
        self,
        reset_cache: bool = False,
        progress: Callable[[int, int], None] | None = None,
        with_hub: bool = True,
    ) -> None:
        """Read the catalog, fetch (or recall) Hub metadata, scan the hub; fill the store."""
        catalog = load_catalog(self.config.wan2gp_root)
        for message in catalog.notices:
            self.notice(message)
        if reset_cache:
            self.reset_cache()
        remote, problems = self._fetch_metadata(catalog, progress)
        hub = self._scan_hub() if with_hub else None
        # Workers read these; swap them together, after the slow part.
        self.remote, self.problems, self.hub, self.catalog = remote, problems, hub, catalog
        self.store.replace_all(self._views(catalog), self._header(catalog), self._models(catalog))

    def _fetch_metadata(
        self, catalog: Catalog, progress: Callable[[int, int], None] | None
    ) -> tuple[dict[str, RemoteFile], dict[str, str]]:
        by_ref: dict[FileRef, list[FileRecord]] = {}
        for record in catalog.records:
            ref = ref_of(record)
            if ref is not None:
                by_ref.setdefault(ref, []).append(record)
        result = self.client.fetch(by_ref, progress=progress, cancel=self._stop)
        for warning in result.warnings:
            self.notice(warning)
        remote: dict[str, RemoteFile] = {}
        problems: dict[str, str] = {}
        for ref, records in by_ref.items():
            for record in records:
                found = result.files.get(ref)
                if found is not None:
                    remote[record.dest] = found
                    record.size, record.sha256, record.blob_sha1 = (
                        found.size,
                        found.sha256,
                        found.blob_sha1,
                    )
                elif ref in result.errors:
                    problems[record.dest] = result.errors[ref]
        self._report_problems(result.errors)
        if result.unknown and self.hub_settings.offline:
            self.notice(
                f"offline: no cached metadata for {len(result.unknown)} files; they show as "
                "unknown (import metadata from a connected machine with --import-metadata)"
            )
        return remote, problems

    def _report_problems(self, errors: dict[FileRef, str]) -> None:
        """Say each distinct metadata problem once, with how many files it touches."""
        counts: dict[str, int] = {}
        for message in errors.values():
            counts[message] = counts.get(message, 0) + 1
        ranked = sorted(counts.items(), key=lambda item: -item[1])
        for message, count in ranked[:5]:
            files = "1 file" if count == 1 else f"{count} files"
            self.notice(f"no Hub metadata for {files}: {message}")
        if len(ranked) > 5:
            self.notice(f"... and {len(ranked) - 5} other problems (see the Status column)")

    def _scan_hub(self) -> HubIndex | None:
        hub_dir = self.config.hub_directory
        if hub_dir is None:
            return None
        if is_inside(self.config.wan2gp_root, hub_dir) or is_inside(
            hub_dir, self.config.wan2gp_root
        ):
            self.notice(
                f"the hub {hub_dir} and the Wan2GP folder {self.config.wan2gp_root} overlap; "
                "hub features are off, since wandown never writes into a hub"
            )
            return None
        try:
            index = scan_hub(
                self.config.hub_directory,
                notices=lambda text: self.notice(text),
                exclude=[self.config.wan2gp_root],
            )
        except ModelHubError as exc:
            self.notice(f"{exc}; hub features are off")
            return None
        if not index.blake3_available:
            self.notice(
                "the blake3 package is missing: hub files are matched by sha256 only, InvokeAI "
                "records cannot confirm them and --dedupe is slower (./installd.sh installs it)"
            )
        return index

    def _views(self, catalog: Catalog) -> dict[str, state.FileView]:
        return {
            record.dest: file_view(
                record,
                self.remote.get(record.dest),
                self.problems.get(record.dest),
                self.hub_settings.offline,
            )
            for record in catalog.records
        }

    def _header(self, catalog: Catalog) -> state.Header:
        return state.Header(
            catalog_source=str(catalog.root),
            model_count=len(catalog.models),
            hub=str(self.config.hub_directory) if self.hub else None,
            hub_files=self.hub.file_count if self.hub else 0,
            hub_links=len(self.linkable()) if self.hub else 0,
            online=not self.hub_settings.offline,
            limit_kb=self.engine.limit_kb,
        )

    @staticmethod
    def _models(catalog: Catalog) -> dict[str, str]:
        return {model_id: info.name for model_id, info in catalog.models.items()}

    def linkable(self, records: Iterable[FileRecord] | None = None) -> dict[str, Path]:
        """Return missing files (of records, else all) the hub proves without reading anything."""
        if self.hub is None or self.catalog is None:
            return {}
        found = {}
        for record in self.catalog.records if records is None else records:
            wanted = wanted_of(record, self.remote.get(record.dest))
            if record.status != "missing" or wanted is None:
                continue
            for key in self.hub.candidates(wanted.size):
                if wanted.proven_by(self.hub.known_digests(key)):
                    found[record.dest] = self.hub.link_target(key)
                    break
        return found

    # -- selection ----------------------------------------------------------------------------

    def select(self, selectors: Iterable[str]) -> list[str]:
        """Turn model ids, file names, destinations, 'needed' or 'missing' into destinations."""
        catalog = self._require_catalog()
        chosen: dict[str, None] = {}
        for selector in selectors:
            matches = self._select_one(catalog, selector)
            if not matches and selector not in ("needed", "missing"):
                raise UsageError(
                    f"'{selector}' matches no model id, file name or destination "
                    "(try --list, or 'needed' / 'missing')"
                )
            chosen.update(dict.fromkeys(matches))
        return list(chosen)

    def _select_one(self, catalog: Catalog, selector: str) -> list[str]:
        records = catalog.records
        if selector == "needed":
            return [r.dest for r in records if r.needed_by]
        if selector == "missing":
            return [r.dest for r in records if r.needed_by and r.status == "missing"]
        if selector in catalog.models:
            return [r.dest for r in records if selector in r.needed_by]
        path = Path(selector)
        if path.is_absolute():
            try:
                selector = path.resolve(strict=False).relative_to(catalog.root.resolve()).as_posix()
            except ValueError:
                return []
        selector = selector.strip("/")
        return [r.dest for r in records if r.dest == selector or r.file_name == selector]

    def describe_plan(self, dests: Sequence[str]) -> list[str]:
        """Say what a download of dests would do, one line a file, without doing it."""
        catalog = self._require_catalog()
        records = [r for r in map(catalog.record, dests) if r is not None]
        linkable = self.linkable(records)
        lines = []
        for dest in dests:
            record = catalog.record(dest)
            if record is None:
                continue
            step = self._decide(record, linkable.get(dest))
            wanted = wanted_of(record, self.remote.get(dest))
            may_hold = self.hub is not None and wanted is not None
            may_hold = may_hold and self.hub.has_size(wanted.size)
            lines.append(plan.describe(dest, step, hub_may_hold=may_hold))
        return lines

    def _decide(self, record: FileRecord, proven_in_hub: Path | None) -> plan.Step:
        return plan.decide(
            record,
            self.remote.get(record.dest),
            proven_in_hub,
            self.hub_settings.offline,
            self.problems.get(record.dest),
            refusal=self._refusal(record),
        )

    def _refusal(self, record: FileRecord) -> str | None:
        """Say why a missing file's destination must not be written, looking at it now."""
        if record.status != "missing":
            return None
        place = catalog_path(self._require_catalog(), record.dest)
        return destination.problem(place, record.dest, self.hub_folders())

    def hub_folders(self) -> list[Path]:
        """Return the folders wandown never writes into: the hub and the HF caches it holds."""
        if self.config.hub_directory is None:
            return []
        folders = [Path(self.config.hub_directory)]
        if self.hub is not None:
            folders += [Path(repo.folder) for repo in self.hub.hf_repos]
            folders += [Path(root) for root in self.hub.real_roots]  # where folder links led
        return folders

    # -- controller: what the views ask for ----------------------------------------------------

    def start(self, dests: Sequence[str]) -> None:
        """Link from the hub or download each destination; returns at once."""
        wanted = []
        files = self.store.snapshot().files
        with self._active_lock:
            for dest in dests:
                view = files.get(dest)
                if view is None or view.status in state.PRESENT or dest in self._active:
                    continue
                self._active.add(dest)
                self._cancelled.discard(dest)
                wanted.append(dest)
        for dest in wanted:
            self.store.update(dest, status=state.PENDING, message="", done=0, speed=0.0)
        if wanted:
            self._start_workers()
            self._links.put(wanted)

    def _start_workers(self) -> None:
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._pump_events, name="wandown-events", daemon=True),
            threading.Thread(target=self._link_worker, name="wandown-linker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def cancel(self, dest: str) -> None:
        """Stop one file: before its download starts, or mid-download keeping the partial."""
        with self._active_lock:
            if dest in self._active:
                self._cancelled.add(dest)
        self.engine.cancel(dest)

    def _was_cancelled(self, dest: str) -> bool:
        with self._active_lock:
            return dest in self._cancelled

    def set_limit(self, kb: float | None) -> None:
        self.engine.set_limit(kb)
        self.store.set_header(limit_kb=self.engine.limit_kb)

    def reset_cache(self) -> None:
        """Forget the cached Hub metadata, and say so."""
        self.client.reset_cache()
        self.notice("cleared the Hub metadata cache")

    def reload(self, reset_cache: bool = True) -> None:
        """Clear the metadata cache (when asked) and load everything again, in the background."""
        if self.busy():
            self.store.add_notice("reload waits until the running downloads end")
            return

        def work() -> None:
            try:
                self.load(reset_cache=reset_cache)
            except WandownError as exc:
                self.store.add_notice(str(exc))
            except Exception as exc:  # a worker must never print onto the interface
                self.store.add_notice(f"reload failed: {exc.__class__.__name__}: {exc}")

        threading.Thread(target=work, name="wandown-reload", daemon=True).start()

    def busy(self) -> bool:
        with self._active_lock:
            return bool(self._active)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until nothing is running; return False on timeout."""
        version = self.store.version
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.busy():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self.store.wait_for_change(version, min(remaining or 1.0, 1.0))
            version = self.store.version
        return True

    def shutdown(self) -> None:
        """Stop every worker promptly; partial downloads stay resumable."""
        self._stop.set()
        self._links.put(None)
        self.engine.close()
        for thread in self._threads:
            thread.join(timeout=2)

    # -- workers ------------------------------------------------------------------------------

    def _link_worker(self) -> None:
        while not self._stop.is_set():
            dests = self._links.get()
            if dests is None:
                return
            try:
                self._link_or_download(dests)
            except Exception as exc:  # a worker must never die silently
                for dest in dests:
                    self._finish(dest, state.FAILED, f"internal error: {exc}")

    def _link_or_download(self, dests: list[str]) -> None:
        catalog = self._require_catalog()
        wanted = set(dests)
        records = {r.dest: r for r in catalog.records if r.dest in wanted}
        records = {dest: r for dest, r in records.items() if not self._refused(r)}
        dests = [dest for dest in dests if dest in records]
        linked = self._link_from_hub(records)
        for dest in dests:
            if dest in linked or self._stop.is_set():
                continue
            if self._was_cancelled(dest):
                self._finish(dest, state.CANCELLED, "cancelled before it started")
                continue
            self._download(records[dest])

    def _refused(self, record: FileRecord) -> bool:
        """Fail a file whose destination is unsafe to write (checked again before each write)."""
        refusal = self._refusal(record)
        if refusal is not None:
            self._finish(record.dest, state.FAILED, refusal)
        return refusal is not None

    def _link_from_hub(self, records: dict[str, FileRecord]) -> set[str]:
        if self.hub is None:
            return set()
        wanted: dict[Wanted, list[str]] = {}
        for dest, record in records.items():
            item = wanted_of(record, self.remote.get(dest))
            if item is not None and self.hub.has_size(item.size):
                wanted.setdefault(item, []).append(dest)
        matches: dict[str, Path] = {}
        if wanted:
            proven = self.linkable(records.values())
            sizes = {
                dest: item.size for item, ds in wanted.items() for dest in ds if dest not in proven
            }

            def progress(path: Path, done: int, total: int) -> None:
                for dest, size in sizes.items():
                    if size == total:
                        self.store.update(dest, status=state.HASHING, done=done, message=str(path))

            found = self.hub.match(wanted, progress=progress, cancel=self._stop)
            matches = {dest: path for item, path in found.items() for dest in wanted[item]}
        if self.hub_settings.offline:
            for dest, record in records.items():
                if dest in matches or dest in self.remote or record.repo is None:
                    continue
                hit = self.hub.find_in_hf_cache(
                    record.repo, record.path or "", record.revision or "main"
                )
                if hit is not None:
                    matches[dest] = hit[0]
            self.hub.save()
        done = set()
        for dest, hub_file in matches.items():
            if self._was_cancelled(dest):
                continue
            if self._refused(records[dest]):  # hashing took a while: look again
                done.add(dest)
                continue
            self.store.update(dest, status=state.LINKING, message="")
            try:
                link_into_place(hub_file, catalog_path(self._require_catalog(), dest))
            except FileExistsError:
                # Someone (Wan2GP, the user) put a file there meanwhile: it is theirs to keep.
                self._finish(dest, state.FAILED, _appeared_while_linking(dest))
                done.add(dest)
                continue
            except (OSError, ModelHubError) as exc:
                self.store.update(dest, message=f"could not link from the hub: {exc}")
                continue
            self._finish(dest, state.LINKED, "", link_source=str(hub_file), done=0)
            done.add(dest)
        return done

    def _download(self, record: FileRecord) -> None:
        step = self._decide(record, None)
        if step.action == plan.NOTHING:
            self._finish(record.dest, _CATALOG_STATUS[record.status], "")
            return
        if step.action != plan.DOWNLOAD or step.remote is None:
            status = state.UNKNOWN if step.action == plan.UNKNOWN else state.FAILED
            self._finish(record.dest, status, step.reason)
            return
        remote = step.remote
        job = DownloadJob(
            key=record.dest,
            url=self.client.download_url(remote),
            dest=catalog_path(self._require_catalog(), record.dest),
            size=remote.size,
            sha256=remote.sha256,
            blob_sha1=remote.blob_sha1,
            commit=remote.commit,
        )
        try:
            self.engine.submit(job)
        except (RuntimeError, ValueError) as exc:
            self._finish(record.dest, state.FAILED, str(exc))

    def _pump_events(self) -> None:
        while True:
            try:
                event = self.engine.events.get(timeout=0.5)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            self._apply(event)

    def _apply(self, event: Event) -> None:
        status = event.state.title()  # the engine's states are the display statuses, lower-case
        changes = {
            "status": status,
            "done": event.done,
            "speed": event.speed,
            "message": event.message,
        }
        if event.total is not None:
            changes["size"] = event.total
        if event.final:
            self._finish(event.key, status, event.message, done=event.done)
        else:
            self.store.update(event.key, **changes)

    def _finish(self, dest: str, status: str, message: str, **changes) -> None:
        self.store.update(dest, status=status, message=message, speed=0.0, **changes)
        with self._active_lock:
            self._active.discard(dest)
            self._cancelled.discard(dest)
        if status in state.PRESENT and self.catalog is not None:
            refresh_one(self.catalog, dest)

    def _require_catalog(self) -> Catalog:
        if self.catalog is None:
            raise WandownError("the catalog is not loaded yet")
        return self.catalog


def _appeared_while_linking(dest: str) -> str:
    return (
        f"{dest} appeared while linking it from the hub; left it as it is (if it is incomplete, "
        "remove it and run again)"
    )


def catalog_path(catalog: Catalog, dest: str) -> Path:
    """Return the absolute place a destination is written to (the first checkpoint root)."""
    return catalog.root / dest


def refresh_one(catalog: Catalog, dest: str) -> None:
    record = catalog.record(dest)
    if record is not None:
        refresh_status(catalog, [record])
