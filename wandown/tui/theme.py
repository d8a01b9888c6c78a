"""Colours by role: one table of palettes, and the curses attributes they become.

Only the eight basic colours are used, so every palette works on an 8-colour terminal; a
terminal without colours (or NO_COLOR) gets the monochrome palette, which uses attributes only.
"""

from __future__ import annotations

import contextlib
import curses
from collections.abc import Mapping
from typing import NamedTuple

from wandown.status import ModelState, Status


class Style(NamedTuple):
    """A role's look: foreground and background colour names and attribute names."""

    fg: str = "default"
    bg: str = "default"
    attrs: tuple[str, ...] = ()


STATUS_ROLES = tuple(f"status.{status.value}" for status in Status)
MODEL_ROLES = tuple(f"model.{state.value}" for state in ModelState)

ROLES = (
    "normal",
    "header",
    "heading",
    "row.cursor",
    "row.selected",
    *STATUS_ROLES,
    *MODEL_ROLES,
    "progress.done",
    "progress.todo",
    "statusline",
    "statusline.error",
    "footer",
    "help",
    "help.key",
)

_BOLD = ("bold",)
_REVERSE = ("reverse",)

# Roles a palette leaves out fall back to "normal".
PALETTES: dict[str, dict[str, Style]] = {
    "default": {
        "header": Style("white", "blue", _BOLD),
        "heading": Style("cyan", attrs=_BOLD),
        "row.cursor": Style("black", "cyan"),
        "row.selected": Style("green", attrs=_BOLD),
        "status.pending": Style("magenta"),
        "status.exists": Style("green"),
        "status.linked": Style("cyan"),
        "status.missing": Style("yellow"),
        "status.hashing": Style("magenta"),
        "status.linking": Style("magenta"),
        "status.downloading": Style("yellow", attrs=_BOLD),
        "status.verifying": Style("magenta", attrs=_BOLD),
        "status.complete": Style("green", attrs=_BOLD),
        "status.failed": Style("red", attrs=_BOLD),
        "status.busy": Style("blue", attrs=_BOLD),
        "status.waiting_disk": Style("red"),
        "model.ready": Style("green", attrs=_BOLD),
        "model.partial": Style("yellow"),
        "model.missing": Style("magenta"),
        "status.cancelled": Style("yellow"),
        "status.unknown": Style("white"),
        "progress.done": Style("green", attrs=_REVERSE),
        "progress.todo": Style("blue"),
        "statusline": Style("cyan"),
        "statusline.error": Style("red", attrs=_BOLD),
        "footer": Style("black", "white"),
        "help": Style("white", "blue"),
        "help.key": Style("yellow", "blue", _BOLD),
    },
    "high-contrast": {
        "normal": Style("white", "black"),
        "header": Style("black", "yellow", _BOLD),
        "heading": Style("white", "black", ("bold", "underline")),
        "row.cursor": Style("black", "white", _BOLD),
        "row.selected": Style("yellow", "black", _BOLD),
        "status.pending": Style("white", "black", _BOLD),
        "status.exists": Style("green", "black", _BOLD),
        "status.linked": Style("cyan", "black", _BOLD),
        "status.missing": Style("yellow", "black", _BOLD),
        "status.hashing": Style("cyan", "black", _BOLD),
        "status.linking": Style("cyan", "black", _BOLD),
        "status.downloading": Style("yellow", "black", _BOLD),
        "status.verifying": Style("cyan", "black", _BOLD),
        "status.complete": Style("green", "black", _BOLD),
        "status.failed": Style("white", "red", _BOLD),
        "status.busy": Style("black", "cyan", _BOLD),
        "status.waiting_disk": Style("black", "red", _BOLD),
        "model.ready": Style("green", "black", _BOLD),
        "model.partial": Style("yellow", "black", _BOLD),
        "model.missing": Style("white", "black", _BOLD),
        "status.cancelled": Style("black", "yellow"),
        "status.unknown": Style("white", "black"),
        "progress.done": Style("black", "green", _BOLD),
        "progress.todo": Style("white", "black"),
        "statusline": Style("white", "black", _BOLD),
        "statusline.error": Style("white", "red", _BOLD),
        "footer": Style("black", "white", _BOLD),
        "help": Style("black", "white"),
        "help.key": Style("black", "white", _BOLD),
    },
    "monochrome": {
        "header": Style(attrs=_REVERSE),
        "heading": Style(attrs=("bold", "underline")),
        "row.cursor": Style(attrs=_REVERSE),
        "row.selected": Style(attrs=_BOLD),
        "status.downloading": Style(attrs=_BOLD),
        "status.complete": Style(attrs=_BOLD),
        "status.failed": Style(attrs=("bold", "underline")),
        "status.busy": Style(attrs=_BOLD),
        "status.waiting_disk": Style(attrs=("bold", "underline")),
        "progress.done": Style(attrs=_REVERSE),
        "progress.todo": Style(attrs=("dim",)),
        "statusline.error": Style(attrs=_BOLD),
        "footer": Style(attrs=_REVERSE),
        "help": Style(attrs=_REVERSE),
        "help.key": Style(attrs=("reverse", "bold")),
    },
}

PALETTE_NAMES = tuple(PALETTES)
MONOCHROME = "monochrome"

COLOURS = {
    "black": curses.COLOR_BLACK,
    "red": curses.COLOR_RED,
    "green": curses.COLOR_GREEN,
    "yellow": curses.COLOR_YELLOW,
    "blue": curses.COLOR_BLUE,
    "magenta": curses.COLOR_MAGENTA,
    "cyan": curses.COLOR_CYAN,
    "white": curses.COLOR_WHITE,
}

ATTRIBUTES = {
    "bold": curses.A_BOLD,
    "reverse": curses.A_REVERSE,
    "underline": curses.A_UNDERLINE,
    "dim": curses.A_DIM,
}


def style(palette: str, role: str) -> Style:
    """Return the style of a role in a palette, falling back to the palette's normal text."""
    table = PALETTES[palette]
    return table.get(role) or table.get("normal") or Style()


def initial_palette(requested: str | None, environ: Mapping[str, str]) -> str:
    """Pick the starting palette: the one asked for, monochrome under NO_COLOR, else default.

    NO_COLOR counts when set to anything non-empty (https://no-color.org).
    """
    if requested:
        if requested not in PALETTES:
            raise ValueError(
                f"unknown palette {requested!r}; choose one of {', '.join(PALETTE_NAMES)}"
            )
        return requested
    return MONOCHROME if environ.get("NO_COLOR") else "default"


def next_palette(current: str) -> str:
    """Return the palette after current, wrapping around."""
    names = list(PALETTE_NAMES)
    return names[(names.index(current) + 1) % len(names)]


class CursesTheme:
    """Turn roles into curses attributes, one colour pair per (fg, bg) made on first use.

    Must be created after curses started; with no colours every palette draws as monochrome.
    """

    def __init__(self, palette: str) -> None:
        self.colours = False
        self.default_background = False
        with contextlib.suppress(curses.error):
            if curses.has_colors():
                curses.start_color()
                self.colours = curses.COLORS >= 8 and curses.COLOR_PAIRS > 1
        if self.colours:
            with contextlib.suppress(curses.error):
                curses.use_default_colors()
                self.default_background = True
        self._pairs: dict[tuple[int, int], int] = {}
        self._attrs: dict[str, int] = {}
        self.palette = palette

    @property
    def palette(self) -> str:
        return self._palette

    @palette.setter
    def palette(self, name: str) -> None:
        self._palette = name
        self._attrs.clear()

    def attr(self, role: str) -> int:
        """Return the curses attribute for a role in the current palette."""
        cached = self._attrs.get(role)
        if cached is None:
            cached = self._attrs[role] = self._resolve(role)
        return cached

    def _resolve(self, role: str) -> int:
        palette = self._palette if self.colours else MONOCHROME
        look = style(palette, role)
        value = 0
        for name in look.attrs:
            value |= ATTRIBUTES[name]
        if palette != MONOCHROME:
            value |= self._pair(look.fg, look.bg)
        return value

    def _pair(self, fg: str, bg: str) -> int:
        fallback = -1 if self.default_background else None
        fg_num = COLOURS.get(fg, fallback if fallback is not None else curses.COLOR_WHITE)
        bg_num = COLOURS.get(bg, fallback if fallback is not None else curses.COLOR_BLACK)
        key = (fg_num, bg_num)
        number = self._pairs.get(key)
        if number is None:
            number = len(self._pairs) + 1
            if number >= curses.COLOR_PAIRS:
                return 0
            try:
                curses.init_pair(number, fg_num, bg_num)
            except curses.error:
                return 0
            self._pairs[key] = number
        return curses.color_pair(number)
