"""Time the interface's first frame on the full Wan2GP catalog (8681e9f: 217 models).

Two measures, printed side by side:
- the render alone: the first state of the App (rows built, totals, disk plan) and its first
  frame at 120x40, in the Files view and after m in the Models view, over the real catalog with
  made-up Hub sizes for every file;
- the real program under tmux, offline (so nothing but wandown itself is timed, with its
  bytecode cached as an installed program has it), from launch until the table's footer is on
  the screen, then from m until the Models table shows, in three starts: the definitions only
  (no hub, no metadata); the whole Wan2GP source (its learning step answered from the cache)
  with a cold metadata cache; the same with a small hub and a warm metadata cache. Each start's
  first run fills the caches (bytecode, learning, GPU) and is not counted.

Every row gives the median and the maximum over --runs, and the 1-minute load average the runs
saw (the machine may be shared: the same code is slower under load). The issue asks for the
first frame within half a second. Needs ../shared/wan2gp/8681e9f and, for the second measure,
tmux. Usage: python bench/first_frame.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wandown.catalog import load_catalog, presence_of
from wandown.huburl import DEFAULT_ENDPOINT
from wandown.loaded import Loaded, ref_of
from wandown.remote import RemoteFile
from wandown.remote.cache import FileMeta, MetadataCache
from wandown.state import Header, StatusStore
from wandown.tui.app import App

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "wan2gp" / "8681e9f" / "defaults"
SOURCE = SHARED.parent / "src"  # Wan2GP's own code: with it, the learning step runs (cached)


class Idle:
    """A controller that never works: the App only reads its store."""

    def __init__(self, store: StatusStore) -> None:
        self.store = store

    def start(self, dests: Sequence[str]) -> None: ...

    def cancel(self, dest: str) -> None: ...

    def set_limit(self, kb: float | None) -> None: ...

    def reload(self, reset_cache: bool) -> None: ...

    def busy(self) -> bool:
        return False

    def shutdown(self) -> None: ...


def install(folder: Path) -> Path:
    root = folder / "Wan2GP"
    root.mkdir()
    os.symlink(SHARED, root / "defaults")
    (root / "ckpts").mkdir()
    return root


def real_store(root: Path) -> StatusStore:
    catalog = load_catalog(root)
    remote = {
        r.dest: RemoteFile(r.repo or "", "main", "c" * 40, r.path or "", 2 * 10**9 + i, None, None)
        for i, r in enumerate(catalog.records)
    }
    loaded = Loaded(catalog, remote, {}, presence_of(catalog))
    header = Header(catalog_source=str(root), model_count=len(catalog.models))
    return StatusStore(loaded.views(), header, loaded.model_names(), loaded.model_families())


def timed(work: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return times


def render_times(root: Path, runs: int) -> tuple[list[float], list[float]]:
    store = real_store(root)

    def first_frame() -> App:
        app = App(Idle(store))
        app.resize(120, 40)
        app.frame()
        return app

    def models_frame() -> None:
        app = first_frame()
        app.handle("m")
        app.frame()

    return timed(first_frame, runs), timed(models_frame, runs)


@dataclass(frozen=True)
class Setup:
    """One way a user starts the interface: which Wan2GP, which hub, which metadata cache."""

    name: str
    root: Path
    hub: Path | None = None
    warm_metadata: bool = False


def setups(folder: Path, bare: Path) -> list[Setup]:
    """Return the starts timed: definitions only, then a whole Wan2GP with and without a hub."""
    whole = install_source(folder) if SOURCE.is_dir() else None
    found = [Setup("definitions only, no hub, no metadata", bare)]
    if whole is not None:
        found.append(Setup("whole Wan2GP, no hub, cold metadata cache", whole))
        found.append(Setup("whole Wan2GP, small hub, warm metadata", whole, make_hub(folder), True))
    return found


def install_source(folder: Path) -> Path:
    """Lay out the real Wan2GP (sources linked, so learning runs once, then is cached)."""
    root = folder / "Wan2GP-src"
    root.mkdir()
    for entry in SOURCE.iterdir():
        os.symlink(entry, root / entry.name)
    os.symlink(SHARED, root / "defaults")
    (root / "ckpts").mkdir()
    return root


def make_hub(folder: Path, count: int = 20) -> Path:
    """Return a small model hub: count files in Hugging Face cache and plain layouts."""
    hub = folder / "hub"
    for i in range(count):
        place = hub / f"models--owner--repo{i % 4}" / "snapshots" / ("c" * 40) / f"f{i}.bin"
        if i % 2:
            place = hub / "plain" / f"file{i}.safetensors"
        place.parent.mkdir(parents=True, exist_ok=True)
        place.write_bytes(bytes([i]) * 1024)
    return hub


def warm_metadata(root: Path, cache: Path) -> None:
    """Fill the metadata cache with an answer for every catalog file (sizes made up)."""
    metadata = MetadataCache(cache / "metadata.json")
    for i, record in enumerate(load_catalog(root).records):
        ref = ref_of(record)
        if ref is None:
            continue
        metadata.add_branch((DEFAULT_ENDPOINT, ref.repo, ref.revision), "c" * 40)
        size = 2 * 10**9 + i
        metadata.add_file(
            (DEFAULT_ENDPOINT, ref.repo, "c" * 40, ref.path), FileMeta(size, None, None)
        )
    metadata.save()


def tmux_times(setup: Setup, folder: Path, runs: int) -> Timings:
    """Time launches of the real program under tmux; the first run only fills the caches."""
    hub = str(setup.hub) if setup.hub else ""
    command = [sys.executable, str(ROOT / "wandown.py"), "--offline", "--hub-dir", hub]
    command += ["--wan2gp-dir", str(setup.root / "ckpts"), "--config-file", str(folder / "c.json")]
    cache = folder / f"cache-{setup.root.name}-{bool(setup.hub)}"
    env = {
        "WANDOWN_CACHE_DIR": str(cache),
        "HF_HUB_OFFLINE": "1",
        # As an installed wandown runs: with its bytecode cached (here in the temporary folder).
        "PYTHONDONTWRITEBYTECODE": "",
        "PYTHONPYCACHEPREFIX": str(folder / "pycache"),
    }
    timings = Timings()
    traced, marker = traced_command(command, folder)
    for run in range(runs + 1):
        if setup.warm_metadata:
            warm_metadata(setup.root, cache)
        else:
            (cache / "metadata.json").unlink(missing_ok=True)
        socket = f"wandown-bench-{os.getpid()}-{run}"

        def tmux(*args: str, socket: str = socket) -> str:
            done = subprocess.run(
                ["tmux", "-L", socket, "-f", "/dev/null", *args], capture_output=True, text=True
            )
            return done.stdout

        line = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(command)
        try:
            # The terminal and its shell first, so only wandown's own start is timed.
            tmux("new-session", "-d", "-x", "120", "-y", "40", "PS1='ready> ' sh")
            wait_for(tmux, "ready>", time.perf_counter())
            load = os.getloadavg()[0]
            start = time.perf_counter()
            tmux("send-keys", line, "Enter")
            launch = wait_for(tmux, " selected, ", start)
            start = time.perf_counter()
            tmux("send-keys", "m")
            switch = wait_for(tmux, "Models, ", start)
            tmux("send-keys", "Escape")
            wait_for(tmux, "ready>", time.perf_counter())
            marker.unlink(missing_ok=True)
            tmux("send-keys", line.replace(shlex.join(command), shlex.join(traced)), "Enter")
            wait_for(tmux, " selected, ", time.perf_counter())
            if run:  # the first run writes the bytecode, learning and GPU caches
                wall, cpu = map(float, marker.read_text().split())
                timings.add(launch, switch, wall, cpu, load)
        finally:
            tmux("kill-server")
    return timings


@dataclass
class Timings:
    """Each timed run's launch, Models switch and in-program time, and the load average then."""

    launches: list[float] = field(default_factory=list)
    switches: list[float] = field(default_factory=list)
    inside: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)

    def add(self, launch: float, switch: float, inside: float, cpu: float, load: float) -> None:
        self.launches.append(launch)
        self.switches.append(switch)
        self.inside.append(inside)
        self.cpu.append(cpu)
        self.loads.append(load)


# Runs wandown.py's main() with a clock on the first frame drawn: the program's own share of the
# launch, without the terminal's and the polling's (both weigh on a loaded machine).
TRACED = """
import sys, time
start, cpu = time.perf_counter(), time.process_time()
sys.path.insert(0, {root!r})
sys.argv = ["wandown", *sys.argv[1:]]
from wandown.tui import screen
draw = screen.Screen.draw
def first_draw(self, *args, **kwargs):
    draw(self, *args, **kwargs)
    if not hasattr(first_draw, "done"):
        first_draw.done = True
        with open({marker!r}, "w") as out:
            out.write(f"{{time.perf_counter() - start}} {{time.process_time() - cpu}}")
screen.Screen.draw = first_draw
from wandown.cli import main
sys.exit(main())
"""


def traced_command(command: list[str], folder: Path) -> tuple[list[str], Path]:
    marker = folder / "first-draw"
    script = folder / "traced.py"
    script.write_text(TRACED.format(root=str(ROOT), marker=str(marker)))
    return [command[0], str(script), *command[2:]], marker


def wait_for(tmux: Callable[..., str], text: str, start: float, timeout: float = 20) -> float:
    while time.perf_counter() - start < timeout:
        if text in tmux("capture-pane", "-p"):
            return time.perf_counter() - start
        time.sleep(0.02)  # a tighter poll takes CPU from the program it times
    raise SystemExit(f"the screen never showed {text!r}:\n{tmux('capture-pane', '-p')}")


def show(name: str, times: list[float], loads: list[float] | None = None) -> None:
    median = statistics.median(times) * 1000
    line = f"{name:<46} median {median:7.1f} ms   max {max(times) * 1000:7.1f} ms"
    if loads:
        line += f"   load {min(loads):.1f}-{max(loads):.1f}"
    print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"needs {SHARED} (the real Wan2GP definitions)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="wandown-bench-") as temp:
        folder = Path(temp)
        root = install(folder)
        store = real_store(root)
        files, models = len(store.snapshot().files), len(store.snapshot().models)
        print(f"catalog 8681e9f: {models} models, {files} files")
        first, switched = render_times(root, args.runs)
        show("render: App start + first frame (Files)", first, [os.getloadavg()[0]])
        show("render: + m + first Models frame", switched, [os.getloadavg()[0]])
        if shutil.which("tmux") is None:
            print("tmux is not installed: the real program is not timed")
            return 0
        for setup in setups(folder, root):
            timings = tmux_times(setup, folder, args.runs)
            print(f"real program, offline, {setup.name}:")
            show("  launch until the table shows", timings.launches, timings.loads)
            show("  of which the program: start to first draw", timings.inside, timings.loads)
            show("  its CPU time until then (load-independent)", timings.cpu, timings.loads)
            show("  m until the Models view shows", timings.switches, timings.loads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
