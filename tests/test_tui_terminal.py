"""The interface in a real terminal: tmux runs it over a fake controller and we read the screen.

Each test uses its own tmux server (``-L``) and kills it in ``finally``. The script prints its
exit status and whether the tty modes came back as they were, so a test sees exactly what a
user's shell would after wandown ends.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tui_fakes import synthetic_store
from tests.wan2gp_fixtures import SHARED
from wandown.tui import keys
from wandown.tui.render import TABLE_TOP
from wandown.tui.rows import build_rows

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


REPO = Path(__file__).resolve().parent.parent
_counter = itertools.count()

SCRIPT = """
import os, sys
from pathlib import Path
sys.path[:0] = [{repo!r}]
from tests.tui_fakes import FakeController, needed_missing, synthetic_store
from wandown.tui import run

out = Path(sys.argv[1])
step = int(os.environ.get("TUI_STEP_BYTES", "10000000"))
store = synthetic_store(300)
controller = FakeController(store, step_bytes=step, tick=0.05, marker=out / "shutdown")
if os.environ.get("TUI_CRASH_ON_RELOAD"):
    def reload(reset_cache):
        raise RuntimeError("boom in reload")
    controller.reload = reload
(out / "pid").write_text(str(os.getpid()))
(out / "term").write_text(os.environ.get("TERM", ""))
sys.exit(run(controller, preselect=needed_missing(store)))
"""

# The shell around the script: remember the tty modes, run, then report what a user would see.
# The trap keeps this shell alive through Ctrl-C, as an interactive shell would be; a trap with
# a command (unlike '') is reset in the child, so Python still gets SIGINT.
RUNNER = """trap 'true' INT
a=$(stty -g)
{command}
echo wandown-exit=$?
if [ "$a" = "$(stty -g)" ]; then echo tty-restored; else echo tty-changed; fi
sleep 60
"""


class Tmux:
    """One private tmux server with one session running the interface."""

    def __init__(
        self,
        tmp_path: Path,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ):
        self.socket = f"wandown-test-{os.getpid()}-{next(_counter)}"
        self.out = tmp_path
        if command is None:
            script = tmp_path / "tui_script.py"
            script.write_text(SCRIPT.format(repo=str(REPO)))
            command = [sys.executable, str(script), str(tmp_path)]
        runner = tmp_path / "runner.sh"
        settings = {"LC_ALL": "C.UTF-8", "WANDOWN_CACHE_DIR": str(tmp_path / "cache")}
        settings.update(env or {})
        line = " ".join(map(shlex.quote, command))
        if "TERM" in settings:  # tmux sets TERM from its default-terminal over -e TERM=...
            line = f"TERM={shlex.quote(settings['TERM'])} {line}"
        runner.write_text(RUNNER.format(command=line))
        self.env = ["-e" + f"{key}={value}" for key, value in settings.items()]
        self.runner = runner

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return result.stdout

    def start(self, width: int = 120, height: int = 40) -> None:
        command = f"sh {shlex.quote(str(self.runner))}"
        self.tmux("new-session", "-d", "-x", str(width), "-y", str(height), *self.env, command)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def wait_for(self, check: Callable[[str], bool] | str, timeout: float = 20.0) -> str:
        """Poll the screen until check holds (or the text appears); return that screen."""
        test = (lambda screen: check in screen) if isinstance(check, str) else check
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            try:
                if test(screen):
                    return screen
            except AssertionError:  # a row the check looks for is not on screen yet
                pass
            time.sleep(0.05)
        raise AssertionError(f"screen never showed {check!r}; it shows:\n{screen}")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def literal(self, text: str) -> None:
        self.tmux("send-keys", "-l", text)

    def click(self, x: int, y: int) -> None:
        """Send a left press and release as an xterm (X10) mouse report at cell (x, y)."""
        press = [0x1B, ord("["), ord("M"), 32 + 0, 33 + x, 33 + y]
        release = [0x1B, ord("["), ord("M"), 32 + 3, 33 + x, 33 + y]
        self.tmux("send-keys", "-H", *(f"{byte:02x}" for byte in press + release))

    def wheel(self, down: bool, x: int = 30, y: int = 10) -> None:
        """Send one wheel turn as an X10 mouse report (buttons 64 and 65, xterm ctlseqs)."""
        report = [0x1B, ord("["), ord("M"), 32 + (65 if down else 64), 33 + x, 33 + y]
        self.tmux("send-keys", "-H", *(f"{byte:02x}" for byte in report))

    def pid(self) -> int:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            path = self.out / "pid"
            if path.exists() and path.read_text():
                return int(path.read_text())
            time.sleep(0.05)
        raise AssertionError("the script never wrote its pid")

    def kill(self) -> None:
        """Stop this test's tmux server and remove its socket file."""
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)
        # tmux(1): -L names a socket in $TMUX_TMPDIR/tmux-UID, which kill-server leaves behind.
        folder = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
        (folder / self.socket).unlink(missing_ok=True)


@pytest.fixture
def tmux(tmp_path: Path):
    session = Tmux(tmp_path)
    try:
        yield session
    finally:
        session.kill()


def first_frame_drawn(screen: str) -> bool:
    """Tell whether the first frame is complete: the footer is the last line drawn."""
    return "Model File" in screen and " selected, " in screen


def status_line(screen: str) -> str:
    lines = screen.rstrip("\n").split("\n")
    return lines[-2] if len(lines) >= 2 else ""


def row_line(screen: str, name: str) -> str:
    for line in screen.split("\n"):
        if name in line:
            return line
    raise AssertionError(f"no line shows {name!r}:\n{screen}")


def test_keys_mouse_filter_help_resize_and_quit(tmux: Tmux, tmp_path: Path):
    rows = build_rows(synthetic_store(300).snapshot(), show_all=False)
    tmux.start()
    screen = tmux.wait_for(lambda s: rows[0].dest in status_line(s))
    assert "Model File" in screen and "[✓]" in screen

    tmux.keys("Down")
    screen = tmux.wait_for(lambda s: rows[1].dest in status_line(s))
    second = rows[1].dest.rsplit("/", 1)[1].removesuffix(".safetensors")
    assert row_line(screen, second).startswith("[✓]")
    tmux.keys("Enter")
    screen = tmux.wait_for(lambda s: row_line(s, second).startswith("[ ]"))

    # A click moves the cursor to the clicked row and never changes its checkbox.
    fifth = rows[5].dest.rsplit("/", 1)[1].removesuffix(".safetensors")
    tmux.click(30, 2 + 5)
    screen = tmux.wait_for(lambda s: rows[5].dest in status_line(s))
    assert row_line(screen, fifth).startswith("[✓]")
    assert row_line(screen, second).startswith("[ ]")
    tmux.wheel(down=True)  # a wheel turn moves three rows and selects nothing either
    tmux.wait_for(lambda s: rows[8].dest in status_line(s))
    tmux.wheel(down=False)
    screen = tmux.wait_for(lambda s: rows[5].dest in status_line(s))
    assert row_line(screen, second).startswith("[ ]")

    tmux.literal("/model_03")
    tmux.keys("Enter")
    screen = tmux.wait_for("Missing Only /model_03")
    table = screen.split("\n")[2:-3]
    assert all("model_03" in line for line in table if line.strip()), screen
    tmux.keys("Escape")  # clears the filter instead of quitting
    screen = tmux.wait_for(lambda s: "/model_03" not in s and "Filter cleared" in s)
    assert "model_02" in screen  # the other models' rows are back

    tmux.keys("?")
    tmux.wait_for("Keys")
    tmux.keys("Escape")  # closes the help, does not quit
    screen = tmux.wait_for(lambda s: "Keys" not in s)
    assert "Model File" in screen

    tmux.keys("p")
    tmux.wait_for("Palette: high-contrast")

    tmux.tmux("resize-window", "-x", "80", "-y", "24")
    # The 80-column layout keeps every column but cuts the last heading.
    screen = tmux.wait_for(lambda s: "Destinati…" in s and "Size (GB)" in s)
    assert "Model File" in screen
    assert len(screen.rstrip("\n").split("\n")) <= 24

    tmux.tmux("resize-window", "-x", "20", "-y", "5")
    tmux.wait_for("terminal too small")
    tmux.tmux("resize-window", "-x", "100", "-y", "30")
    tmux.wait_for(first_frame_drawn)

    tmux.keys("Escape")
    screen = tmux.wait_for("wandown-exit=0")
    tmux.wait_for("tty-restored")
    assert (tmp_path / "shutdown").exists()


# Where each curses key name comes from: the terminal's own key strings (terminfo(5)).
KEY_CAPABILITIES = {
    "KEY_UP": "kcuu1",
    "KEY_DOWN": "kcud1",
    "KEY_PPAGE": "kpp",
    "KEY_NPAGE": "knp",
    "KEY_HOME": "khome",
    "KEY_END": "kend",
    "KEY_ENTER": "kent",
}
SMOKE_TERM = "xterm-256color"


def terminal_strings(term: str, capabilities: list[str]) -> dict[str, bytes]:
    """Read key strings from terminfo in a child: setupterm works only once per process."""
    code = (
        "import curses, sys\n"
        "curses.setupterm(sys.argv[1], 2)\n"
        "for cap in sys.argv[2:]:\n"
        "    value = curses.tigetstr(cap)\n"
        "    print(cap, value.hex() if value else '')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, term, *capabilities],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    pairs = (line.split(" ") for line in result.stdout.splitlines())
    return {cap: bytes.fromhex(value) for cap, value in pairs if value}


def mouse_report(kmous: bytes, button: int, x: int, y: int, release: bool = False) -> bytes:
    """Encode a mouse event as the terminal does: SGR (1006) or X10 (xterm ctlseqs)."""
    if kmous == b"\x1b[<":
        return b"\x1b[<%d;%d;%d%s" % (button, x + 1, y + 1, b"m" if release else b"M")
    return bytes([0x1B, ord("["), ord("M"), 32 + (3 if release else button), 33 + x, 33 + y])


def key_bytes(key: str, strings: dict[str, bytes]) -> bytes:
    """Return what the terminal sends for a key name of keys.KEYS."""
    kmous = strings["kmous"]
    mouse = {
        "MOUSE_CLICK": mouse_report(kmous, 0, 30, TABLE_TOP + 3)
        + mouse_report(kmous, 0, 30, TABLE_TOP + 3, release=True),
        "WHEEL_UP": mouse_report(kmous, 64, 30, 10),
        "WHEEL_DOWN": mouse_report(kmous, 65, 30, 10),
    }
    if key in mouse:
        return mouse[key]
    if key.startswith("KEY_"):
        cap = KEY_CAPABILITIES.get(key)
        assert cap in strings, f"no terminfo string for {key}: add it to KEY_CAPABILITIES"
        return strings[cap]
    assert len(key) == 1, f"cannot type {key!r}: teach key_bytes how a terminal sends it"
    return key.encode()


def press_every_bound_key(session: Tmux) -> str:
    """Type each key of keys.KEYS once, Escape last, and return the screen after the exit.

    After each key an unbound letter is typed; its 'does nothing here' reply on the status line
    proves every key before it was read and handled, and that the program still runs (a notice
    from the program may take the status line first, so the letter is typed again). A typed
    '\\r' arrives as '\\n' (the tty's ICRNL, which curses leaves on); both mean toggle-row.
    Downloads must still run at the end, so that Escape asks before quitting.
    """
    strings = terminal_strings(SMOKE_TERM, [*KEY_CAPABILITIES.values(), "kmous"])
    order = ["d", *(key for key in keys.KEYS if key not in ("d", "\x1b")), "\x1b"]
    assert sorted(order) == sorted(keys.KEYS)
    probes = [letter for letter in "qzkjwv" if letter not in keys.KEYS][:2]

    def send(data: bytes) -> None:
        session.tmux("send-keys", "-H", *(f"{byte:02x}" for byte in data))

    def answered(probe: str) -> None:
        reply = f"'{probe}' does nothing here"
        for _ in range(5):
            send(probe.encode())
            with contextlib.suppress(AssertionError):
                session.wait_for(lambda s: reply in status_line(s), timeout=4)
                return
        raise AssertionError(f"the program stopped answering:\n{session.screen()}")

    for turn, key in enumerate(order[:-1]):
        send(key_bytes(key, strings))
        command = keys.KEYS[key]
        if command == "help":
            session.wait_for("Keys")
            send(probes[0].encode())  # any key closes the help
            session.wait_for(lambda s: "Keys" not in s)
        elif command == "filter":
            session.wait_for("Enter keeps the filter")
            send(b"\r")
        answered(probes[turn % 2])
    session.tmux("resize-window", "-x", "40", "-y", "10")
    answered(probes[0])
    session.tmux("resize-window", "-x", "80", "-y", "24")
    answered(probes[1])
    send(key_bytes(order[-1], strings))
    session.wait_for("Quit now")
    send(b"y")
    screen = session.wait_for("wandown-exit=0")
    session.wait_for("tty-restored")
    assert "Traceback" not in screen and "failed" not in screen
    return screen


def test_every_bound_key_once_in_a_real_terminal(tmp_path: Path):
    """Each key reaches the interface, which answers and then exits cleanly."""
    # Slow fake downloads: still running at the end.
    session = Tmux(tmp_path, env={"TERM": SMOKE_TERM, "TUI_STEP_BYTES": "100000"})
    try:
        session.start(width=100, height=30)
        session.wait_for(first_frame_drawn)
        assert (tmp_path / "term").read_text() == SMOKE_TERM
        press_every_bound_key(session)
        calls = (tmp_path / "shutdown").read_text().split()
        assert {"start", "set_limit", "reload"} <= set(calls) and calls[-1] == "shutdown"
    finally:
        session.kill()


@pytest.mark.slow
def test_every_bound_key_once_in_the_real_demo(tmp_path: Path):
    """The same keys against the whole program: wandown.py --demo, its localhub and its hub."""
    env = {"TERM": SMOKE_TERM, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    command = [sys.executable, str(REPO / "wandown.py"), "--demo"]  # its low limit: still running
    session = Tmux(tmp_path, env=env, command=command)
    try:
        session.start(width=100, height=30)
        session.wait_for(first_frame_drawn, timeout=15)
        press_every_bound_key(session)
    finally:
        session.kill()
    assert list((tmp_path / "tmp").iterdir()) == []  # the sandbox is gone


def test_download_progress_and_confirmed_quit(tmux: Tmux, tmp_path: Path):
    tmux.start()
    tmux.wait_for(first_frame_drawn)
    tmux.keys("d")
    screen = tmux.wait_for(lambda s: "% " in s and "MB/s" in s and "█" in s)
    assert "Starting" in screen
    tmux.keys("Escape")
    tmux.wait_for("Quit now")
    tmux.keys("n")
    screen = tmux.wait_for("Not quitting")
    assert (tmp_path / "shutdown").exists() is False
    tmux.keys("Escape")
    tmux.wait_for("Quit now")
    tmux.keys("y")
    tmux.wait_for("wandown-exit=0")
    tmux.wait_for("tty-restored")
    assert (tmp_path / "shutdown").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_restores_terminal_and_shuts_down(tmux: Tmux, tmp_path: Path, signum: int):
    tmux.start()
    tmux.wait_for(first_frame_drawn)
    tmux.keys("d")
    tmux.wait_for("MB/s")
    os.kill(tmux.pid(), signum)
    screen = tmux.wait_for(f"wandown-exit={128 + signum}")
    tmux.wait_for("tty-restored")
    assert "partial downloads are kept" in screen
    assert (tmp_path / "shutdown").exists()


def test_a_dropped_terminal_still_shuts_down(tmux: Tmux, tmp_path: Path):
    """Closing the terminal (as a dropped ssh does) hangs up the app; partials stay resumable."""
    tmux.start()
    tmux.wait_for(first_frame_drawn)
    tmux.keys("d")
    tmux.wait_for("MB/s")
    pid = tmux.pid()
    tmux.tmux("kill-session")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (tmp_path / "shutdown").exists():
        time.sleep(0.05)
    assert (tmp_path / "shutdown").exists()
    while time.monotonic() < deadline and running(pid):
        time.sleep(0.05)
    assert not running(pid)


def running(pid: int) -> bool:
    """Tell whether a process is alive (a zombie waiting for its parent counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_ctrl_c_restores_terminal_and_shuts_down(tmux: Tmux, tmp_path: Path):
    tmux.start()
    tmux.wait_for(first_frame_drawn)
    tmux.keys("C-c")
    screen = tmux.wait_for("wandown-exit=130")
    tmux.wait_for("tty-restored")
    assert "interrupted" in screen
    assert (tmp_path / "shutdown").exists()


def test_a_crash_is_logged_not_drawn_and_the_terminal_is_restored(tmp_path: Path):
    session = Tmux(tmp_path, env={"TUI_CRASH_ON_RELOAD": "1"})
    try:
        session.start()
        session.wait_for(first_frame_drawn)
        session.keys("r")
        screen = session.wait_for("wandown-exit=1")
        session.wait_for("tty-restored")
        log = tmp_path / "cache" / "tui.log"
        assert "the interface failed (RuntimeError: boom in reload)" in screen
        assert "Traceback" not in screen
        assert "Traceback" in log.read_text() and "boom in reload" in log.read_text()
        assert (tmp_path / "shutdown").exists()
    finally:
        session.kill()


@pytest.mark.parametrize("term", ["vt100", "xterm", "screen-256color"])
def test_draws_with_no_colours_eight_and_many(tmp_path: Path, term: str):
    session = Tmux(tmp_path, env={"TERM": term})
    try:
        session.start(width=90, height=20)
        session.wait_for(first_frame_drawn)
        assert (tmp_path / "term").read_text() == term
        session.keys("p")
        session.wait_for("Palette: high-contrast")
        session.keys("Escape")
        session.wait_for("wandown-exit=0")
        session.wait_for("tty-restored")
    finally:
        session.kill()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/wan2gp is not here")
def test_the_real_program_opens_the_table_offline(tmp_path: Path):
    """wandown with no mode flag, over the real Wan2GP definitions, offline and without a hub."""
    from tests.wan2gp_fixtures import real_install

    install = real_install(tmp_path, "eb92f0c")
    command = [
        sys.executable,
        "-m",
        "wandown",
        "--offline",
        "--hub-dir",
        "",
        "--wan2gp-dir",
        str(install / "ckpts"),
        "--config-file",
        str(tmp_path / "config.json"),
    ]
    env = {"PYTHONPATH": str(REPO), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    session = Tmux(tmp_path, env=env, command=command)
    try:
        session.start()
        # The table may first show while the catalog still loads: wait for its rows.
        screen = session.wait_for(lambda s: first_frame_drawn(s) and "all models" in s, timeout=20)
        assert "offline" in screen
        session.keys("s")
        session.wait_for("Show All")
        session.keys("Escape")
        session.wait_for("wandown-exit=0")
        session.wait_for("tty-restored")
    finally:
        session.kill()


def test_the_real_program_downloads_from_the_table(tmp_path: Path, localhub):
    """The whole program against localhub and a hub: select, click, filter, d, Linked, Complete."""
    from tests.world import BIG, LORA, OTHER_VARIANT, SMALL, build_world

    world = build_world(tmp_path, localhub)
    in_hub = world.hub_dir / "styles" / "renamed_lora.bin"
    in_hub.parent.mkdir()
    in_hub.write_bytes(world.served_file(LORA).read_bytes())
    env = {
        "PYTHONPATH": str(REPO),
        "HF_ENDPOINT": world.endpoint,
        "HF_HOME": str(tmp_path / "hf"),
    }
    command = ["sh", "-c", f'cd {shlex.quote(str(world.workdir))} && exec "$@"', "wandown"]
    command += [sys.executable, str(REPO / "wandown.py"), "--models", "testvideo"]
    session = Tmux(tmp_path, env=env, command=command)
    try:
        session.start()
        screen = session.wait_for(first_frame_drawn, timeout=8)
        assert "testvideo" in screen and "(1 model)" in screen
        big_row = row_line(screen, BIG.removesuffix(".safetensors"))
        assert big_row.startswith("[✓]") and "Missing" in big_row

        # Enter unticks the small file's row; a click on the big file's row moves, never selects.
        lines = screen.split("\n")
        small_y = next(
            i for i, line in enumerate(lines) if SMALL in line and line.rstrip().endswith(" ckpts/")
        )
        big_y = next(i for i, line in enumerate(lines) if BIG in line)
        session.click(30, small_y)
        session.wait_for(lambda s: f"ckpts/{SMALL}" in status_line(s))
        session.keys("Enter")
        screen = session.wait_for(lambda s: s.split("\n")[small_y].startswith("[ ]"))
        session.click(30, big_y)
        screen = session.wait_for(lambda s: f"ckpts/{BIG}" in status_line(s))
        assert row_line(screen, BIG).startswith("[✓]")

        session.literal("/style")
        session.keys("Enter")
        screen = session.wait_for(lambda s: "/style" in s and BIG not in s)
        session.keys("Escape")
        session.wait_for(lambda s: BIG in s)

        session.keys("d")
        screen = session.wait_for(
            lambda s: (
                "Complete" in row_line(s, BIG)
                and "Linked" in row_line(s, LORA)
                and not any(word in s for word in ("Pending", "Downloading", "Verifying", "% "))
            ),
            timeout=15,
        )
        session.wait_for("Finished 26 files: 25 complete, 1 linked")
        assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()
        assert os.readlink(world.path(f"loras/{LORA}")) == str(in_hub)
        assert not world.path(f"ckpts/{SMALL}").exists()  # unticked, so not fetched

        session.keys("p")
        session.wait_for("Palette: high-contrast")
        session.tmux("resize-window", "-x", "80", "-y", "24")
        session.wait_for(lambda s: "Size (GB)" in s and len(s.rstrip("\n").split("\n")) <= 24)
        session.keys("s")
        session.wait_for("View: Show All")
        session.tmux("resize-window", "-x", "120", "-y", "40")
        session.wait_for(lambda s: OTHER_VARIANT in s and "(variant)" in row_line(s, OTHER_VARIANT))
        session.keys("Escape")
        session.wait_for("wandown-exit=0")
        session.wait_for("tty-restored")
    finally:
        session.kill()


def test_ascii_locale_draws_without_unicode(tmp_path: Path):
    session = Tmux(tmp_path, env={"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"})
    try:
        session.start(width=100, height=20)
        screen = session.wait_for(first_frame_drawn)
        assert "[x]" in screen
        assert "✓" not in screen and "│" not in screen
        session.keys("Escape")
        session.wait_for("wandown-exit=0")
    finally:
        session.kill()
