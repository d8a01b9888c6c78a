"""One run of wandown: load, then link from the hub or download what the views ask for.

The session owns the worker threads (a linker that hashes hub candidates, the engine's pool, an
event pump) and the status store the views read. It publishes what a load knows as one immutable
Loaded value and swaps in a new one (one assignment) after a reload or when a file lands; no
thread changes a value another thread may hold. The interface calls the controller methods
(start, cancel, set_limit, reload, busy, shutdown); plain mode calls the same methods.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wandown import plan, selection, state
from wandown.batch import Batch, Bench
from wandown.config import Config
from wandown.engine import Engine, Event
from wandown.errors import WandownError
from wandown.hub import HubIndex
from wandown.loaded import Loaded
from wandown.loading import Loader, Notice, Progress
from wandown.remote import HubSettings, MetadataClient
from wandown.status import Status


@dataclass(frozen=True)
class RunOptions:
    """How hard this run may use the network and the machine (offline lives in HubSettings)."""

    jobs: int = 2
    connections: int = 16
    limit_kb: float | None = None
    cache_path: Path | None = None


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
        self._loaded: Loaded | None = None
        self._swap_lock = threading.Lock()  # orders the read-and-replace of _loaded
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
            headers_for=self._client.auth_headers,
        )
        self._threads: list[threading.Thread] = []
        self._bench = Bench(
            store=self.store,
            stop=self._stop,
            finish=self._finish,
            was_cancelled=self._was_cancelled,
            download_url=self._client.download_url,
            submit=self.engine.submit,
        )

    # -- what the command line asks of it -----------------------------------------------------

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
    def hub(self) -> HubIndex | None:
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
        self.store.replace_all(loaded.views(), self._header(loaded), loaded.model_names())

    def _loader(self) -> Loader:
        return Loader(self.config, self._client, self.offline, self._say)

    def _header(self, loaded: Loaded) -> state.Header:
        hub = loaded.hub
        return state.Header(
            catalog_source=str(loaded.catalog.root),
            model_count=len(loaded.catalog.models),
            hub=str(loaded.hub_dir) if hub else None,
            hub_files=hub.file_count if hub else 0,
            hub_links=len(loaded.linkable()) if hub else 0,
            online=not self.offline,
            limit_kb=self.engine.limit_kb,
        )

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
        self.engine.cancel(dest)

    def _was_cancelled(self, dest: str) -> bool:
        with self._active_lock:
            return dest in self._cancelled

    def set_limit(self, kb: float | None) -> None:
        self.engine.set_limit(kb)
        self.store.set_header(limit_kb=self.engine.limit_kb)

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
                Batch(self._bench, self.loaded, dests).run()
            except Exception as exc:  # a worker must never die silently
                for dest in dests:
                    self._finish(dest, Status.FAILED, f"internal error: {exc}")

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
        status = Status(event.state)  # the engine's states are statuses' values
        if event.final:
            self._finish(event.key, status, event.message, done=event.done)
            return
        changes: state.ViewChanges = {
            "status": status,
            "done": event.done,
            "speed": event.speed,
            "message": event.message,
        }
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
