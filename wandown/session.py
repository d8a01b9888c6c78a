"""One run of wandown: load, then link from the hub or download what the views ask for.

The session owns the worker threads (a linker that hashes hub candidates, the engine's pool, an
event pump) and the status store the views read. It publishes what a load knows as one immutable
Loaded value and swaps in a new one (one assignment) after a reload or when a file lands; no
thread changes a value another thread may hold. The interface calls the controller methods
(start, cancel, set_limit, reload, busy, shutdown); plain mode calls the same methods.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wandown import diskplan, diskspace, plan, selection, state
from wandown.batch import Batch, Bench
from wandown.config import Config
from wandown.errors import WandownError
from wandown.hub import HubSet
from wandown.lazy import OnFirstUse
from wandown.loaded import Loaded
from wandown.loading import Loader, Notice, Progress
from wandown.origins import Origins
from wandown.remote import HubSettings, MetadataClient
from wandown.safetext import printable
from wandown.status import Status
from wandown.units import human_bytes

if TYPE_CHECKING:
    from wandown import reclaim
    from wandown.engine import Engine, Event
    from wandown.engine.sources import EndpointPlan

DISK_PROBE_EVERY = 2.0  # seconds between two looks at the disks' free space while work runs


@dataclass(frozen=True)
class RunOptions:
    """How hard this run may use the network and the machine (offline lives in HubSettings)."""

    jobs: int = 2
    connections: int = 16
    limit_kb: float | None = None
    cache_path: Path | None = None


def endpoint_plan(settings: HubSettings) -> EndpointPlan:
    """Return the engine's view of the endpoints: the order, the truth, who gets the token."""
    from wandown.engine.sources import EndpointPlan

    order = tuple(endpoint.url for endpoint in settings.fetch_order)
    return EndpointPlan(order, settings.endpoint, settings.token_homes)


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
        self._notice = notice
        self._settings = hub_settings
        self._client = MetadataClient(hub_settings, cache_path=options.cache_path)
        self._origins = Origins()
        self._loaded: Loaded | None = None
        self._swap_lock = threading.Lock()  # orders the read-and-replace of _loaded
        self.store = state.StatusStore({}, state.Header(), {})
        self._stop = threading.Event()
        self._links: queue.Queue[list[str] | None] = queue.Queue()
        self._active: set[str] = set()
        self._cancelled: set[str] = set()  # asked to stop before the engine had them
        self._active_lock = threading.Lock()
        self._options = options
        self._engine = OnFirstUse(self._make_engine)
        self._threads: list[threading.Thread] = []
        self._reclaim_plan: reclaim.Plan | None = None
        self._disk_folders: dict[int, Path] = {}  # one folder on each file system files land on
        self._published_disks: tuple[diskplan.Space, ...] = ()
        self._bench = Bench(
            store=self.store,
            stop=self._stop,
            finish=self._finish,
            was_cancelled=self._was_cancelled,
            download_url=self._client.download_url,
            submit=lambda job: self.engine.submit(job),
        )

    @property
    def engine(self) -> Engine:
        """Return the download engine, made on first use (see wandown.lazy)."""
        return self._engine.get()

    def _make_engine(self) -> Engine:
        from wandown.engine import Engine

        options = self._options
        return Engine(
            jobs=options.jobs,
            connections=options.connections,
            limit_kb=options.limit_kb,
            headers_for=self._client.auth_headers,
            endpoints=endpoint_plan(self._settings),
            room=self._room,
        )

    @property
    def limit_kb(self) -> float | None:
        """Return the bandwidth limit in KB/s as the engine holds it (None: unlimited)."""
        engine = self._engine.made()
        if engine is not None:
            return engine.limit_kb
        limit = self._options.limit_kb
        return float(limit) if limit else None

    # -- what the command line asks of it -----------------------------------------------------

    @property
    def truth(self) -> str:
        """Return the source of truth's URL (the endpoint metadata comes from)."""
        return self._settings.endpoint

    @property
    def offline(self) -> bool:
        return self._settings.offline

    @property
    def loaded(self) -> Loaded:
        """Return the last load's state; it never changes (a later one replaces it)."""
        loaded = self._loaded
        if loaded is None:
            raise WandownError("the catalog is not loaded yet")
        return loaded

    @property
    def hub(self) -> HubSet | None:
        return self._loaded.hub if self._loaded is not None else None

    def notices_to_status_line(self) -> None:
        """Send later notices (a reload's, the workers') to the store: curses owns stderr."""
        self._notice = self.store.add_notice

    def _say(self, message: str) -> None:
        """Pass a notice on to wherever notices go now (the hub index keeps this to call later)."""
        self._notice(message)

    def import_metadata(self, path: Path) -> int:
        """Add the Hub metadata in path to the cache; return how many entries."""
        return self._client.import_metadata(path)

    def export_metadata(self, path: Path) -> int:
        """Write the cached Hub metadata of the catalog to path; return how many entries."""
        return self._client.export_metadata(path)

    def select(self, selectors: Sequence[str]) -> list[str]:
        """Turn model ids, file names, destinations, 'needed' or 'missing' into destinations."""
        return selection.select(self.loaded, selectors)

    def model_ids(self, values: Sequence[str]) -> list[str]:
        """Check the --models values against the catalog; return the ids, each once."""
        return selection.parse_model_ids(self.loaded, values)

    def chosen_models(self, flag_ids: Sequence[str]) -> list[str]:
        """Return the models chosen at start: Wan2GP's model list, then --models."""
        chosen, notices = selection.chosen_models(self.loaded, flag_ids)
        for message in notices:
            self._notice(message)
        return chosen

    def start_selection(self, model_ids: Sequence[str]) -> list[str]:
        """Return the files the interface ticks at start: the chosen models' missing files."""
        return selection.start_selection(self.loaded, model_ids)

    @property
    def reserve(self) -> int:
        """Return the bytes every disk keeps free (min_free_gb)."""
        return diskplan.reserve_bytes(self.config.min_free_gb)

    def disk_plan(
        self, dests: Sequence[str], probe: diskspace.Probe = diskspace.space_of
    ) -> diskplan.DiskPlan:
        """Say whether what a download of dests would fetch fits each disk, minus the reserve."""
        loaded = self.loaded
        records = [r for r in map(loaded.catalog.record, dests) if r is not None]
        linkable = loaded.linkable(records)
        sizes: dict[Path, int] = {}
        for record in records:
            step = loaded.decide(record, linkable.get(record.dest))
            if step.action is plan.Action.DOWNLOAD and step.remote is not None:
                place = loaded.place(record.dest)
                remote = step.remote
                partial = diskspace.partial_bytes(place, remote.size, remote.sha256)
                sizes[place] = plan.fetch_bytes(step, partial)
        devices, spaces = diskspace.probe_places(sizes, probe)
        needs = [(devices[place], size) for place, size in sizes.items() if place in devices]
        return diskplan.plan(needs, spaces, self.reserve)

    def describe_plan(self, dests: Sequence[str]) -> list[str]:
        """Say what a download of dests would do, one line a file, without doing it."""
        return plan.describe_plan(self.loaded, dests)

    # -- loading ------------------------------------------------------------------------------

    def load(
        self,
        reset_cache: bool = False,
        progress: Progress | None = None,
        with_hub: bool = True,
    ) -> None:
        """Read the catalog, fetch (or recall) Hub metadata, scan the hub; fill the store."""
        loaded = self._loader().load(
            progress=progress, with_hub=with_hub, cancel=self._stop, reset_cache=reset_cache
        )
        with self._swap_lock:
            self._loaded = loaded
        self._publish(loaded)

    def _publish(self, loaded: Loaded) -> None:
        """Fill the store from one loaded state: files with their disk facts, header, origins."""
        views = self._with_disk_facts(loaded, loaded.views())
        self._published_disks = self._probe_disks()
        header = self._header(loaded, sum(view.linkable for view in views.values()))
        self.store.replace_all(views, header, loaded.model_names(), loaded.model_families())
        for dest, endpoint in self.origins().items():
            self.store.update(dest, endpoint=endpoint)

    def origins(self) -> dict[str, str]:
        """Return the endpoint each present file was downloaded from, where that is known."""
        loaded = self.loaded
        present = [r.dest for r in loaded.catalog.records if loaded.status(r.dest).present]
        return self._origins.endpoints({dest: loaded.place(dest) for dest in present})

    def _loader(self) -> Loader:
        return Loader(self.config, self._client, self.offline, self._say)

    def _header(self, loaded: Loaded, hub_links: int) -> state.Header:
        hub = loaded.hub
        return state.Header(
            catalog_source=str(loaded.catalog.root),
            model_count=len(loaded.catalog.models),
            code_origin=loaded.catalog.code_origin,
            hub=hub.hub_dir if hub else None,
            hub_files=hub.file_count if hub else 0,
            hubs=tuple((h.folder, h.kind, h.file_count) for h in hub.summaries()) if hub else (),
            hub_links=hub_links if hub else 0,
            online=not self.offline,
            limit_kb=self.limit_kb,
            disks=self._published_disks,
            reserve=self.reserve,
            gpu=loaded.gpu.label if loaded.gpu is not None else "",
        )

    def _with_disk_facts(
        self, loaded: Loaded, views: dict[str, state.FileView]
    ) -> dict[str, state.FileView]:
        """Add where each missing file lands and what its partial holds (for the disk plan)."""
        places = {
            dest: loaded.place(dest)
            for dest, view in views.items()
            if view.status is Status.MISSING and view.size is not None
        }
        devices, _ = diskspace.probe_places(places.values())
        self._disk_folders = {}
        for place, device in devices.items():
            self._disk_folders.setdefault(device, place.parent)
        for dest, place in places.items():
            view = views[dest]
            remote = loaded.remote.get(dest)
            sha256 = remote.sha256 if remote is not None else None
            partial = diskspace.partial_bytes(place, view.size or 0, sha256)
            views[dest] = dataclasses.replace(view, device=devices.get(place), partial=partial)
        return views

    def _probe_disks(self) -> tuple[diskplan.Space, ...]:
        """Look at the free space of every file system a missing file lands on, now."""
        spaces = (diskspace.space_of(folder) for folder in self._disk_folders.values())
        return tuple(space for space in spaces if space is not None)

    def _room(self, place: Path) -> str | None:
        """Say why no new file may start on place's disk now: it is under min_free_gb."""
        reserve = self.reserve
        space = diskspace.space_of(place.parent) if reserve else None
        if space is None or space.free >= reserve:
            return None
        return (
            f"{human_bytes(space.free)} free on {space.mount}, under the "
            f"{human_bytes(reserve)} kept free (min_free_gb)"
        )

    def refresh_disks(self) -> None:
        """Publish the disks' free space again (files landed, or something else wrote)."""
        disks = self._probe_disks()
        if disks != self._published_disks:  # an idle interface is not woken for nothing
            self._published_disks = disks
            self.store.set_header(disks=disks)

    def _landed(self, dest: str) -> None:
        """Publish a new Loaded that saw dest arrive (linked or downloaded)."""
        with self._swap_lock:
            if self._loaded is not None:
                self._loaded = self._loaded.restat([dest])

    # -- controller: what the views ask for ----------------------------------------------------

    def start(self, dests: Sequence[str]) -> None:
        """Link from the hub or download each destination; returns at once."""
        wanted = []
        files = self.store.snapshot().files
        with self._active_lock:
            for dest in dests:
                view = files.get(dest)
                if view is None or view.status.present or dest in self._active:
                    continue
                self._active.add(dest)
                self._cancelled.discard(dest)
                wanted.append(dest)
        for dest in wanted:
            self.store.update(dest, status=Status.PENDING, message="", done=0, speed=0.0)
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
        engine = self._engine.made()
        if engine is not None:  # none made yet: nothing of dest reached it
            engine.cancel(dest)

    def _was_cancelled(self, dest: str) -> bool:
        with self._active_lock:
            return dest in self._cancelled

    def set_limit(self, kb: float | None) -> None:
        self.engine.set_limit(kb)
        self.store.set_header(limit_kb=self.limit_kb)

    def reset_cache(self) -> None:
        """Forget the cached Hub metadata, and say so."""
        self._loader().reset_cache()

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

    def find_reclaim(self) -> None:
        """List what can go from the Wan2GP folder, in the background (see wandown.reclaim)."""
        if self.busy():
            self.store.add_notice("reclaim waits until the running downloads end")
            return
        self._reclaim_plan = None
        self.store.set_reclaim(state.ReclaimList())

        def work() -> None:
            from wandown import reclaim  # the Reclaim view's: loaded when it is first asked for

            found = reclaim.find(self.loaded, self._say)
            self._reclaim_plan = found
            rows = tuple(
                state.ReclaimRow(
                    item.kind.label,
                    item.size,
                    printable(reclaim.shown_path(item.path, self.loaded.catalog.root)),
                    item.found.link is not None,
                )
                for item in found.items
            )
            self.store.set_reclaim(state.ReclaimList(rows, found.total, ready=True))

        self._background(work, "wandown-reclaim")

    def reclaim(self) -> None:
        """Delete (or link) what find_reclaim listed, each file re-checked; report each one."""
        found = self._reclaim_plan
        self._reclaim_plan = None
        self.store.set_reclaim(None)
        if found is None or self.busy():
            self.store.add_notice("nothing reclaimed: list it again with the reclaim key")
            return

        def work() -> None:
            from wandown import reclaim

            loaded = self.loaded
            outcome = reclaim.delete(found, loaded, self.store.add_notice)
            with self._swap_lock:
                fresh = loaded.restat(record.dest for record in loaded.catalog.records)
                self._loaded = fresh
            self._publish(fresh)
            self.store.add_notice(outcome.summary())

        self._background(work, "wandown-reclaim")

    def _background(self, work: Callable[[], None], name: str) -> None:
        def guarded() -> None:
            try:
                work()
            except WandownError as exc:
                self.store.add_notice(str(exc))
            except Exception as exc:  # a worker must never print onto the interface
                self.store.add_notice(f"reclaim failed: {exc.__class__.__name__}: {exc}")

        threading.Thread(target=guarded, name=name, daemon=True).start()

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
        engine = self._engine.made()
        if engine is not None:
            engine.close()
            engine.events.put(None)  # the pump drains what is left, then sees the stop
        for thread in self._threads:
            thread.join(timeout=2)

    # -- workers ------------------------------------------------------------------------------

    def _link_worker(self) -> None:
        while not self._stop.is_set():
            dests = self._links.get()
            if dests is None:
                return
            try:
                Batch(self._bench, self.loaded, dests).run()
            except Exception as exc:  # a worker must never die silently
                for dest in dests:
                    self._finish(dest, Status.FAILED, f"internal error: {exc}")

    def _pump_events(self) -> None:
        probed = time.monotonic()
        while True:
            try:
                event = self.engine.events.get(timeout=0.5)
            except queue.Empty:
                event = None
            if event is not None:
                self._apply(event)
            elif self._stop.is_set():
                return
            if time.monotonic() - probed >= DISK_PROBE_EVERY:  # the footer's free space
                probed = time.monotonic()
                self.refresh_disks()

    def _apply(self, event: Event) -> None:
        status = Status(event.state)  # the engine's states are statuses' values
        if event.final:
            if event.endpoint:
                self.store.update(event.key, endpoint=event.endpoint, failover=event.failover)
            if status is Status.COMPLETE and event.endpoint and not event.message:
                # Placed by this download (not by another process, not found in place).
                self._origins.record(self.loaded.place(event.key), event.endpoint)
            self._finish(event.key, status, event.message, done=event.done)
            return
        changes: state.ViewChanges = {
            "status": status,
            "done": event.done,
            "speed": event.speed,
            "message": event.message,
        }
        if event.endpoint:
            changes["endpoint"] = event.endpoint
            changes["failover"] = event.failover
        if event.total is not None:
            changes["size"] = event.total
        self.store.update(event.key, **changes)

    def _finish(
        self,
        dest: str,
        status: Status,
        message: str,
        done: int | None = None,
        link_source: str | None = None,
    ) -> None:
        if status.present:
            self._landed(dest)
        changes: state.ViewChanges = {"status": status, "message": message, "speed": 0.0}
        if done is not None:
            changes["done"] = done
        if link_source is not None:
            changes["link_source"] = link_source
        self.store.update(dest, **changes)
        with self._active_lock:
            self._active.discard(dest)
            self._cancelled.discard(dest)
