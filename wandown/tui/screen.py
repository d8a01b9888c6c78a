"""The curses layer: one place that starts and restores the terminal, and a safe put().

Mirrors curses.wrapper, plus what it leaves out: ESCDELAY before initscr so Escape reacts at
once, mouse reporting, and SIGTERM/SIGHUP turned into an exception so the same ``finally``
restores the terminal however the program ends.
"""

from __future__ import annotations

import contextlib
import curses
import os
import signal
from collections.abc import Iterator, Sequence

from wandown.errors import WandownError
from wandown.interrupts import on_signals, raise_once
from wandown.safetext import printable
from wandown.tui.render import Line
from wandown.tui.text import clip, display_width
from wandown.tui.theme import CursesTheme

# ncurses waits this long (ms) after ESC for the rest of an escape sequence; the default
# 1000 ms makes Escape feel broken. 25 ms is plenty on a local or ssh terminal. A user's own
# ESCDELAY is kept.
ESCDELAY_MS = 25


class TerminalError(WandownError):
    """The terminal cannot run a full-screen interface (unknown TERM, no terminal at all)."""

    exit_code = 2


class Terminated(Exception):
    """The process got SIGTERM or SIGHUP; raised in the main thread to unwind and restore."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def terminal_signals() -> contextlib.AbstractContextManager[None]:
    """Turn SIGTERM and SIGHUP into Terminated for the duration, then restore the handlers.

    Only the first one raises: a second exception inside the restoring ``finally`` would skip
    endwin().
    """
    return on_signals(raise_once(Terminated))


@contextlib.contextmanager
def terminal() -> Iterator[curses.window]:
    """Start curses and always give the terminal back, even on exceptions and signals."""
    os.environ.setdefault("ESCDELAY", str(ESCDELAY_MS))
    escdelay = os.environ["ESCDELAY"]
    escdelay_ms = int(escdelay) if escdelay.isdigit() else ESCDELAY_MS
    # ncurses takes exported LINES/COLUMNS over the real size (use_env(3X)), at start and on
    # every resize, so it would draw at a stale size; pytest and some shell setups export them.
    saved = {name: os.environ.pop(name) for name in ("LINES", "COLUMNS") if name in os.environ}
    try:
        stdscr = curses.initscr()
    except curses.error as error:
        os.environ.update(saved)
        term = os.environ.get("TERM", "")
        raise TerminalError(
            f"cannot start the interactive table on this terminal (TERM={term!r}: {error}); "
            "use --list or --download instead"
        ) from error
    except BaseException:
        os.environ.update(saved)
        raise
    try:
        curses.noecho()
        curses.cbreak()
        stdscr.keypad(True)
        with contextlib.suppress(curses.error, AttributeError):
            curses.set_escdelay(escdelay_ms)
        with contextlib.suppress(curses.error):
            curses.curs_set(0)
        # Report presses at once (no click-timing delay) and wheel turns as buttons 4 and 5.
        with contextlib.suppress(curses.error):
            curses.mousemask(curses.ALL_MOUSE_EVENTS)
            curses.mouseinterval(0)
        yield stdscr
    finally:
        with contextlib.suppress(curses.error):
            stdscr.keypad(False)
        with contextlib.suppress(curses.error):
            curses.echo()
        with contextlib.suppress(curses.error):
            curses.nocbreak()
        with contextlib.suppress(curses.error):
            curses.endwin()
        os.environ.update(saved)


def put(
    window: curses.window, y: int, x: int, text: str, attr: int = 0, ellipsis: str = "…"
) -> None:
    """Draw text at (y, x), clipped by display width to the window's edge.

    Writing the bottom-right cell makes curses try to scroll and report an error after the
    character was drawn (curs_addstr(3X)), so that error is swallowed.
    """
    height, width = window.getmaxyx()
    if not (0 <= y < height and 0 <= x < width) or not text:
        return
    text = printable(text)  # a raw NUL makes addstr raise, an ESC reaches the terminal
    room = width - x
    if display_width(text) > room:
        text = clip(text, room, ellipsis)
        # A wide character cut in half would shift everything after it: pad instead.
        text += " " * (room - display_width(text))
    with contextlib.suppress(curses.error):
        window.addstr(y, x, text, attr)


class Screen:
    """A curses window plus its theme; draws frames made by render.render."""

    def __init__(self, window: curses.window, palette: str, ascii_only: bool) -> None:
        self.window = window
        self.theme = CursesTheme(palette)
        self.ellipsis = "~" if ascii_only else "…"

    def size(self) -> tuple[int, int]:
        """Return (width, height)."""
        height, width = self.window.getmaxyx()
        return width, height

    def read_key(self, timeout_ms: int) -> str | None:
        """Wait up to timeout_ms for a key and return its name; None when none came."""
        self.window.timeout(timeout_ms)
        try:
            key = self.window.get_wch()
        except curses.error:
            return None
        if isinstance(key, int):
            return curses.keyname(key).decode("ascii", "replace")
        return key

    def read_mouse(self) -> tuple[int, int, int] | None:
        """Return (x, y, bstate) of the pending mouse event, or None if curses lost it."""
        try:
            _, x, y, _, bstate = curses.getmouse()
        except curses.error:
            return None
        return x, y, bstate

    def draw(self, lines: Sequence[Line], palette: str) -> None:
        if palette != self.theme.palette:
            self.theme.palette = palette
        window = self.window
        window.erase()
        attr = self.theme.attr
        for y, line in enumerate(lines):
            for segment in line:
                put(window, y, segment.x, segment.text, attr(segment.role), self.ellipsis)
        window.noutrefresh()
        curses.doupdate()
