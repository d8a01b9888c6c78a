"""Time the interface's first frame on the full Wan2GP catalog (8681e9f: 217 models).

Two measures, printed side by side:
- the render alone: the first state of the App (rows built, totals, disk plan) and its first
  frame at 120x40, in the Files view and after m in the Models view, over the real catalog with
  made-up Hub sizes for every file;
- the real program under tmux (offline, no hub, so nothing but wandown itself is timed, with
  its bytecode cached as an installed program has it): from launch until the table's footer is
  on the screen, then from m until the Models table shows.

The issue asks for the first frame within half a second. Needs ../shared/wan2gp/8681e9f and,
for the second measure, tmux. Usage: python bench/first_frame.py [--runs 5]
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wandown.catalog import load_catalog, presence_of
from wandown.loaded import Loaded
from wandown.remote import RemoteFile
from wandown.state import Header, StatusStore
from wandown.tui.app import App

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "wan2gp" / "8681e9f" / "defaults"


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


def tmux_times(root: Path, folder: Path, runs: int) -> tuple[list[float], list[float], list[float]]:
    command = [sys.executable, str(ROOT / "wandown.py"), "--offline", "--hub-dir", ""]
    command += ["--wan2gp-dir", str(root / "ckpts"), "--config-file", str(folder / "config.json")]
    env = {
        "WANDOWN_CACHE_DIR": str(folder / "cache"),
        "HF_HUB_OFFLINE": "1",
        # As an installed wandown runs: with its bytecode cached (here in the temporary folder).
        "PYTHONDONTWRITEBYTECODE": "",
        "PYTHONPYCACHEPREFIX": str(folder / "pycache"),
    }
    launches, switches, inside = [], [], []
    traced, marker = traced_command(command, folder)
    for run in range(runs + 1):  # the first run only writes the bytecode cache
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
            start = time.perf_counter()
            tmux("send-keys", line, "Enter")
            launches.append(wait_for(tmux, " selected, ", start))
            start = time.perf_counter()
            tmux("send-keys", "m")
            switches.append(wait_for(tmux, "Models, ", start))
            tmux("send-keys", "Escape")
            wait_for(tmux, "ready>", time.perf_counter())
            marker.unlink(missing_ok=True)
            tmux("send-keys", line.replace(shlex.join(command), shlex.join(traced)), "Enter")
            wait_for(tmux, " selected, ", time.perf_counter())
            inside.append(float(marker.read_text()))
        finally:
            tmux("kill-server")
    return launches[1:], switches[1:], inside[1:]


# Runs wandown.py's main() with a clock on the first frame drawn: the program's own share of the
# launch, without the terminal's and the polling's (both weigh on a loaded machine).
TRACED = """
import sys, time
start = time.perf_counter()
sys.path.insert(0, {root!r})
sys.argv = ["wandown", *sys.argv[1:]]
from wandown.tui import screen
draw = screen.Screen.draw
def first_draw(self, *args, **kwargs):
    draw(self, *args, **kwargs)
    if not hasattr(first_draw, "done"):
        first_draw.done = True
        with open({marker!r}, "w") as out:
            out.write(str(time.perf_counter() - start))
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


def show(name: str, times: list[float]) -> None:
    median = statistics.median(times) * 1000
    print(f"{name:<44} median {median:7.1f} ms   max {max(times) * 1000:7.1f} ms")


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
        show("render: App start + first frame (Files)", first)
        show("render: + m + first Models frame", switched)
        if shutil.which("tmux") is None:
            print("tmux is not installed: the real program is not timed")
            return 0
        launches, switches, inside = tmux_times(root, folder, args.runs)
        show("real program: launch until the table shows", launches)
        show("  of which the program: start to first draw", inside)
        show("real program: m until the Models view shows", switches)
    return 0


if __name__ == "__main__":
    sys.exit(main())
