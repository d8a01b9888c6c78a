"""Text measured in terminal cells: display width, clipping with an ellipsis, padding."""

from __future__ import annotations

import unicodedata
from functools import lru_cache


@lru_cache(maxsize=4096)
def char_width(char: str) -> int:
    """Return how many terminal cells one character takes: 0, 1 or 2."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 2
    return 1


def display_width(text: str) -> int:
    """Return the number of terminal cells text takes."""
    if text.isascii():
        return len(text)
    return sum(char_width(char) for char in text)


def clip(text: str, width: int, ellipsis: str = "…") -> str:
    """Cut text to at most width cells, ending with the ellipsis when something was cut."""
    if width <= 0:
        return ""
    if display_width(text) <= width:
        return text
    room = width - display_width(ellipsis)
    if room < 0:
        return _take(text, width)
    return _take(text, room) + ellipsis


def clip_middle(text: str, width: int, ellipsis: str = "…") -> str:
    """Cut the middle out of text so both its start and its end stay readable.

    File names differ most at their ends (``..._fp16.safetensors`` against ``..._int8...``), so
    the tail is worth more than the end of the head.
    """
    room = width - display_width(ellipsis)
    if room < 4 or display_width(text) <= width:
        return clip(text, width, ellipsis)
    tail = _take(text[::-1], room // 2)[::-1]
    head = _take(text, room - display_width(tail))
    return head + ellipsis + tail


def fit(text: str, width: int, *, right: bool = False, ellipsis: str = "…") -> str:
    """Clip text to width cells, then pad it with spaces to exactly width cells."""
    text = clip(text, width, ellipsis)
    pad = " " * (width - display_width(text))
    return pad + text if right else text + pad


def _take(text: str, width: int) -> str:
    """Return the longest prefix of text that fits in width cells."""
    if text.isascii():
        return text[:width]
    used = 0
    for index, char in enumerate(text):
        used += char_width(char)
        if used > width:
            return text[:index]
    return text
