"""A fake controller over a synthetic status store, for the interface's tests and tmux script.

The fake does what the real session promises at the interface's boundary: start() moves files
to Downloading and a background thread advances them through the store, cancel() stops one,
shutdown() stops the thread and (when asked) leaves a marker file the tmux tests look for,
naming the calls the interface made.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from wandown.state import FileView, Header, ReclaimList, ReclaimRow, StatusStore
from wandown.status import Status

GB = 1_000_000_000


def view(
    dest: str,
    needed_by: Sequence[str] = (),
    role: str = "main",
    size: int | None = 2 * GB,
    status: Status = Status.MISSING,
    **changes,
) -> FileView:
    """Return a FileView for dest, with the folder and name split as the catalog does."""
    folder, _, name = dest.rpartition("/")
    return FileView(
        dest=dest,
        file_name=name,
        folder=folder,
        role=role,
        needed_by=tuple(needed_by),
        listed_by=tuple(needed_by),
        url=f"https://example.invalid/{dest}",
        size=size,
        status=status,
        **changes,
    )


def synthetic_store(n_files: int = 300, n_models: int = 12) -> StatusStore:
    """Build a store like a real catalog: core files, per-model files, optional and variants."""
    models = {f"model_{m:02d}": f"Model number {m}" for m in range(n_models)}
    ids = list(models)
    files = {}
    core = [
        view("ckpts/umt5-xxl/models_t5_umt5-xxl-enc-bf16.safetensors", ids, role="core"),
        view("ckpts/Wan2.1_VAE.safetensors", ids, role="core", status=Status.EXISTS),
    ]
    for record in core:
        files[record.dest] = record
    index = 0
    while len(files) < n_files:
        model = ids[index % n_models]
        kind = index % 10
        if kind == 8:
            record = view(f"ckpts/extra/optional_tool_{index:04d}.safetensors", role="on_demand")
        elif kind == 9:
            record = view(f"ckpts/wan2.2_{model}_variant_{index:04d}_fp16.safetensors", ())
        else:
            status = Status.EXISTS if kind == 3 else Status.LINKED if kind == 5 else Status.MISSING
            partner = ids[(index + 1) % n_models]
            needed = (model, partner) if kind == 7 else (model,)
            record = view(
                f"ckpts/wan2.2_{model}_file_{index:04d}_quanto_mbf16_int8.safetensors",
                needed,
                status=status,
                size=(index % 17 + 1) * 250_000_000,
            )
        files[record.dest] = record
        index += 1
    header = Header(
        catalog_source="Wan2GP test catalog",
        model_count=n_models,
        hub="/srv/hub",
        hub_files=1234,
        hub_links=56,
        online=True,
        limit_kb=90_000,
    )
    return StatusStore(files, header, models)


class FakeController:
    """Implements the interface's Controller protocol against a StatusStore."""

    def __init__(
        self,
        store: StatusStore,
        step_bytes: int = 0,
        tick: float = 0.05,
        marker: Path | None = None,
    ):
        self.store = store
        self.calls: list[tuple] = []
        self.marker = marker
        self._step = step_bytes
        self._tick = tick
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, dests: Sequence[str]) -> None:
        self.calls.append(("start", list(dests)))
        with self._lock:
            self._running.update(dests)
        for dest in dests:
            self.store.update(dest, status=Status.DOWNLOADING, speed=12_300_000.0)
        if self._step and self._thread is None:
            self._thread = threading.Thread(target=self._advance, daemon=True)
            self._thread.start()

    def cancel(self, dest: str) -> None:
        self.calls.append(("cancel", dest))
        with self._lock:
            self._running.discard(dest)
        self.store.update(dest, status=Status.CANCELLED, speed=0.0)

    def set_limit(self, kb: float | None) -> None:
        self.calls.append(("set_limit", kb))
        self.store.set_header(limit_kb=kb)

    def reload(self, reset_cache: bool) -> None:
        self.calls.append(("reload", reset_cache))

    def find_reclaim(self) -> None:
        self.calls.append(("find_reclaim",))
        rows = (ReclaimRow("orphan", 4_000_000_000, "ckpts/old_wan2.1_14B.safetensors"),)
        self.store.set_reclaim(ReclaimList(rows, 4_000_000_000, ready=True))

    def reclaim(self) -> None:
        self.calls.append(("reclaim",))
        self.store.set_reclaim(None)
        self.store.add_notice("deleted ckpts/old_wan2.1_14B.safetensors (4.0 GB, orphan)")

    def busy(self) -> bool:
        with self._lock:
            return bool(self._running)

    def shutdown(self) -> None:
        self.calls.append(("shutdown",))
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.marker is not None:  # what the interface asked for, one call a line
            self.marker.write_text("".join(f"{call[0]}\n" for call in self.calls))

    def _advance(self) -> None:
        """Move running downloads forward, a fake network, until shutdown."""
        while not self._stop.wait(self._tick):
            with self._lock:
                running = sorted(self._running)
            files = self.store.snapshot().files
            for dest in running:
                file = files[dest]
                done = min(file.size or 0, file.done + self._step)
                if file.size is not None and done >= file.size:
                    self.store.update(dest, status=Status.COMPLETE, done=done, speed=0.0)
                    with self._lock:
                        self._running.discard(dest)
                else:
                    self.store.update(dest, done=done)


def frame_text(lines, width: int) -> list[str]:
    """Paint a rendered frame onto blank lines of width cells, as a terminal would show it."""
    painted = []
    for line in lines:
        cells = [" "] * width
        for segment in line:
            x = segment.x
            for char in segment.text:
                if 0 <= x < width:
                    cells[x] = char
                x += 1
        painted.append("".join(cells).rstrip())
    return painted


def frame_roles(lines) -> list[set[str]]:
    """Return the set of roles used on each line of a frame."""
    return [{segment.role for segment in line} for line in lines]
