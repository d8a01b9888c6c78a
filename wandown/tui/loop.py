"""The main loop: wait for a key or a tick, update the App, redraw only when something changed."""

from __future__ import annotations

import contextlib
import locale
import os
import sys
from collections.abc import Collection, Sequence
from typing import Protocol

from wandown.fsutil import log_exception
from wandown.tui import theme
from wandown.tui.app import App, Controller
from wandown.tui.keys import mouse_key
from wandown.tui.render import Line
from wandown.tui.screen import Screen, TerminalError, Terminated, terminal, terminal_signals

BUSY_TICK_MS = 150  # while work runs: progress redraws about seven times a second
IDLE_TICK_MS = 1500  # when idle: wake rarely, only to notice a reload finishing


class Terminal(Protocol):
    """What the loop needs of a screen: screen.Screen is the curses one, tests script theirs."""

    def size(self) -> tuple[int, int]: ...

    def read_key(self, timeout_ms: int) -> str | None: ...

    def read_mouse(self) -> tuple[int, int, int] | None: ...

    def draw(self, lines: Sequence[Line], palette: str) -> None: ...


def run(
    controller: Controller,
    palette: str | None = None,
    ascii_only: bool | None = None,
    preselect: Collection[str] = (),
    ask_disk: bool = True,
) -> int:
    """Run the interface until the user quits; return the exit status.

    preselect is what is ticked at start (see selection.start_selection); ask_disk False
    (--force) starts without asking when the ticked files do not fit the disk.

    The terminal is restored however this ends; controller.shutdown() is always called, so
    every partial stays resumable. A crash is logged to tui.log in the cache folder and
    reported in one line after the terminal is back.
    """
    try:
        palette = theme.initial_palette(palette, os.environ)
    except ValueError as error:
        print(f"wandown: {error}", file=sys.stderr)
        return 2
    if ascii_only is None:
        ascii_only = not prefers_utf8()
    status, message = 0, ""
    try:
        app = App(
            controller,
            palette=palette,
            ascii_only=ascii_only,
            preselect=preselect,
            ask_disk=ask_disk,
        )
        with terminal_signals(), terminal() as window:
            main_loop(Screen(window, palette, ascii_only), app)
    except TerminalError as error:
        status, message = error.exit_code, str(error)
    except KeyboardInterrupt:
        status, message = 130, "interrupted; partial downloads are kept for next time"
    except Terminated as stop:
        status, message = 128 + stop.signum, f"{stop}; partial downloads are kept for next time"
    except Exception as error:
        log = log_exception("tui.log", error)
        status = 1
        message = f"the interface failed ({type(error).__name__}: {error})"
        if log:
            message += f"; details in {log}"
    finally:
        try:
            controller.shutdown()
        except Exception as error:
            log = log_exception("tui.log", error)
            status = status or 1
            message = message or f"stopping the downloads failed ({error}); see {log}"
    if message:
        # After SIGHUP the terminal may be gone; there is nobody to tell.
        with contextlib.suppress(OSError, ValueError):
            print(f"wandown: {message}", file=sys.stderr)
    return status


def prefers_utf8() -> bool:
    """Tell whether the locale's encoding can show ✓ and block characters."""
    encoding = locale.getpreferredencoding(False).lower().replace("-", "").replace("_", "")
    return encoding == "utf8"


def main_loop(screen: Terminal, app: App) -> None:
    """Draw, wait, handle; repeat until the App says quit.

    Redraws only after a key, a resize or a new store version; waits with a short timeout only
    while the controller is busy, so an idle interface costs nothing.
    """
    dirty = True
    while not app.view.quitting:
        if app.refresh():
            dirty = True
        if dirty:
            width, height = screen.size()
            app.resize(width, height)
            screen.draw(app.frame(), app.view.palette)
            dirty = False
        key = screen.read_key(BUSY_TICK_MS if app.working() else IDLE_TICK_MS)
        if key is None:
            continue
        dirty = True
        if key == "KEY_MOUSE":
            event = screen.read_mouse()
            name = mouse_key(event[2]) if event is not None else None
            if event is None or name is None:
                dirty = False
                continue
            app.mouse_y = event[1]
            key = name
        app.handle(key)
