"""What the interface itself remembers between frames: cursor, mode, selection, prompts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Glyphs(NamedTuple):
    """The characters that need Unicode, with their ASCII stand-ins."""

    checked: str
    unchecked: str
    check_heading: str
    bar_done: str
    bar_todo: str
    ellipsis: str
    down: str
    separator: str


UNICODE = Glyphs("[✓]", "[ ]", "✓", "█", "░", "…", "↓", "│")
ASCII = Glyphs("[x]", "[ ]", "x", "#", "-", "~", "v", "|")


@dataclass
class ViewState:
    """The interface's own state; everything else is read from the store's snapshot."""

    palette: str = "default"
    ascii_only: bool = False
    show_all: bool = False
    cursor: int = 0
    top: int = 0
    filter_text: str = ""
    editing_filter: bool = False
    selected: set[str] = field(default_factory=set)
    started: set[str] = field(default_factory=set)
    help_open: bool = False
    help_top: int = 0
    reclaim_open: bool = False
    reclaim_top: int = 0
    confirm_quit: bool = False
    message: str = ""
    message_is_error: bool = False
    quitting: bool = False

    @property
    def glyphs(self) -> Glyphs:
        return ASCII if self.ascii_only else UNICODE

    @property
    def mode_name(self) -> str:
        return "Show All" if self.show_all else "Missing Only"

    def say(self, message: str, error: bool = False) -> None:
        """Show a message on the status line until the next key."""
        self.message = message
        self.message_is_error = error
