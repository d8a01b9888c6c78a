"""Named commands and the one table that binds keys and mouse events to them.

Keys are curses key names (``KEY_DOWN``), characters (``d``, ``\\n``) or the mouse event names
``MOUSE_CLICK``, ``WHEEL_UP`` and ``WHEEL_DOWN``. The help overlay is generated from these
tables, so a binding cannot be documented wrongly.
"""

from __future__ import annotations

import curses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wandown.tui.app import App

Command = Callable[["App"], None]


class DuplicateBinding(ValueError):
    """A key was bound twice in the key table."""


def _move(step: int) -> Command:
    def move(app: App) -> None:
        app.move_cursor(step)

    return move


def _page(direction: int) -> Command:
    def page(app: App) -> None:
        app.move_cursor(direction * max(1, app.page_size - 1))

    return page


def _wheel(direction: int) -> Command:
    def wheel(app: App) -> None:
        app.scroll(direction * 3)

    return wheel


COMMANDS: dict[str, tuple[str, Command]] = {
    "cursor-up": ("move up one row", _move(-1)),
    "cursor-down": ("move down one row", _move(1)),
    "page-up": ("move up one screen", _page(-1)),
    "page-down": ("move down one screen", _page(1)),
    "first-row": ("go to the first row", lambda app: app.move_cursor_to(0)),
    "last-row": ("go to the last row", lambda app: app.move_cursor_to(app.row_count - 1)),
    "toggle-row": (
        "select or unselect this row's file (Models: all the model's missing files)",
        lambda app: app.toggle_row(),
    ),
    "select-model": (
        "select every missing file this row's model (or feature) needs",
        lambda app: app.select_model(),
    ),
    "select-all": (
        "select every visible file (Models: every visible model's files) not yet present",
        lambda app: app.select_all(),
    ),
    "unselect-all": ("unselect everything", lambda app: app.unselect_all()),
    "download": ("link or download the selected files", lambda app: app.download()),
    "cancel-row": ("cancel this row's download (the partial is kept)", lambda app: app.cancel()),
    "limit-up": ("raise the bandwidth limit", lambda app: app.change_limit(faster=True)),
    "limit-down": ("lower the bandwidth limit", lambda app: app.change_limit(faster=False)),
    "toggle-view": ("switch between Missing Only and Show All", lambda app: app.toggle_view()),
    "toggle-models": (
        "switch between the Files and the Models view",
        lambda app: app.toggle_models(),
    ),
    "sort-size": ("sort by size, largest first, or by name", lambda app: app.toggle_sort()),
    "filter": ("filter rows by text (Enter keeps, Esc clears)", lambda app: app.start_filter()),
    "reload": ("clear the Hub metadata cache and reload", lambda app: app.reload()),
    "reclaim": (
        "reclaim disk space: list what can go, y deletes it (hub copies become links)",
        lambda app: app.open_reclaim(),
    ),
    "next-palette": ("next colour palette", lambda app: app.next_palette()),
    "help": ("show this help", lambda app: app.show_help()),
    "escape": ("clear the filter, else quit (asks while downloads run)", lambda app: app.escape()),
    "mouse-click": ("move the cursor to the row (never selects)", lambda app: app.click()),
    "wheel-up": ("scroll up", _wheel(-1)),
    "wheel-down": ("scroll down", _wheel(1)),
}


def bind(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Build a key table from (key, command) pairs, refusing a key bound twice or a typo."""
    table: dict[str, str] = {}
    for key, command in pairs:
        if key in table:
            raise DuplicateBinding(f"key {key!r} is bound to both {table[key]!r} and {command!r}")
        if command not in COMMANDS:
            raise KeyError(f"key {key!r} is bound to unknown command {command!r}")
        table[key] = command
    return table


KEYS: dict[str, str] = bind(
    [
        ("KEY_UP", "cursor-up"),
        ("KEY_DOWN", "cursor-down"),
        ("KEY_PPAGE", "page-up"),
        ("KEY_NPAGE", "page-down"),
        ("KEY_HOME", "first-row"),
        ("KEY_END", "last-row"),
        ("\n", "toggle-row"),
        ("\r", "toggle-row"),
        ("KEY_ENTER", "toggle-row"),
        ("c", "select-model"),
        ("a", "select-all"),
        ("u", "unselect-all"),
        ("d", "download"),
        ("x", "cancel-row"),
        ("+", "limit-up"),
        ("=", "limit-up"),
        ("-", "limit-down"),
        ("s", "toggle-view"),
        ("m", "toggle-models"),
        ("o", "sort-size"),
        ("/", "filter"),
        ("r", "reload"),
        ("R", "reclaim"),
        ("p", "next-palette"),
        ("?", "help"),
        ("\x1b", "escape"),
        ("MOUSE_CLICK", "mouse-click"),
        ("WHEEL_UP", "wheel-up"),
        ("WHEEL_DOWN", "wheel-down"),
    ]
)

KEY_LABELS = {
    "KEY_UP": "Up",
    "KEY_DOWN": "Down",
    "KEY_PPAGE": "PgUp",
    "KEY_NPAGE": "PgDn",
    "KEY_HOME": "Home",
    "KEY_END": "End",
    "\n": "Enter",
    "\r": "Enter",
    "KEY_ENTER": "Enter",
    "\x1b": "Esc",
    "MOUSE_CLICK": "click",
    "WHEEL_UP": "wheel up",
    "WHEEL_DOWN": "wheel down",
}

# Keys that still work while the filter is being typed (characters go into the filter).
FILTER_PASSTHROUGH = frozenset(
    {"KEY_UP", "KEY_DOWN", "KEY_PPAGE", "KEY_NPAGE", "MOUSE_CLICK", "WHEEL_UP", "WHEEL_DOWN"}
)

# ncurses reports wheel turns as presses of buttons 4 and 5 (curs_mouse(3X)).
_WHEEL_UP = curses.BUTTON4_PRESSED
_WHEEL_DOWN = getattr(curses, "BUTTON5_PRESSED", 0x200000)
_CLICKS = (
    curses.BUTTON1_PRESSED
    | curses.BUTTON1_CLICKED
    | curses.BUTTON1_DOUBLE_CLICKED
    | curses.BUTTON1_TRIPLE_CLICKED
)


def mouse_key(bstate: int) -> str | None:
    """Name a curses mouse event: a wheel turn or a left click; None for anything else."""
    if bstate & _WHEEL_UP:
        return "WHEEL_UP"
    if bstate & _WHEEL_DOWN:
        return "WHEEL_DOWN"
    if bstate & _CLICKS:
        return "MOUSE_CLICK"
    return None


def label(key: str) -> str:
    return KEY_LABELS.get(key, key)


def help_lines() -> list[tuple[str, str]]:
    """Return (keys, what they do) for every bound command, in the command table's order."""
    keys_of: dict[str, list[str]] = {}
    for key, command in KEYS.items():
        names = keys_of.setdefault(command, [])
        if label(key) not in names:
            names.append(label(key))
    return [
        (", ".join(keys_of[name]), text) for name, (text, _) in COMMANDS.items() if name in keys_of
    ]
