"""One hardened JSON reader for every file wandown reads: nothing in a file can crash it.

A file may be anything a user, a crash or another tool left: huge, not UTF-8, nested a hundred
thousand levels deep (CPython's parser recurses), or holding a 5000-digit integer (3.11+ refuses
those with a bare ValueError; 3.10 spends quadratic time on them). Every such case becomes one
``JSONFileError`` carrying the file, the line and column when known, and the reason.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from wandown.errors import WandownError

MAX_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 200
MAX_NUMBER_CHARS = 40  # a 64-bit size has 20 digits; nothing wandown reads needs more

_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)'  # or the unterminated rest; brackets in it are text
_LONG_NUMBER = rf"[-+0-9.eE]{{{MAX_NUMBER_CHARS + 1},}}"
_CONSTANT = r"NaN|-?Infinity"
_STRINGS = re.compile(_STRING, re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_SUSPECT = re.compile(f"{_LONG_NUMBER}|{_CONSTANT}")
_TOKENS = re.compile(
    rf"{_STRING}|(?P<open>[\[{{])|(?P<close>[\]}}])"
    rf"|(?P<number>{_LONG_NUMBER})|(?P<constant>{_CONSTANT})",
    re.DOTALL,
)


class JSONFileError(WandownError, ValueError):
    """A JSON file wandown cannot use, with where in it and why.

    A ValueError too, so code that caught json's errors keeps catching these.
    """

    def __init__(
        self, path: os.PathLike[str] | str, reason: str, line: int | None = None, column: int = 1
    ) -> None:
        self.path = Path(path)
        self.reason = reason
        self.line = line
        self.column = column
        where = f"{self.path}:{line}:{column}" if line is not None else str(self.path)
        super().__init__(f"{where}: {reason}")


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _refuse_number(text: str) -> Any:
    raise ValueError(f"number {text[:20]}... is too long")


def _parse_int(text: str) -> int:
    return int(text) if len(text) <= MAX_NUMBER_CHARS else _refuse_number(text)


def _parse_float(text: str) -> float:
    value = float(text) if len(text) <= MAX_NUMBER_CHARS else _refuse_number(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _parse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")


def _suspect(text: str) -> bool:
    """Tell quickly (in C, but for one loop over brackets) whether _locate would refuse text."""
    outside = _STRINGS.sub('""', text)
    if _SUSPECT.search(outside):
        return True
    brackets = _NOT_BRACKETS.sub("", outside)
    if len(brackets) <= MAX_DEPTH:
        return False
    depth = 0
    for char in brackets:
        depth += 1 if char in "[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def _prescan(text: str, source: os.PathLike[str] | str) -> None:
    """Refuse nesting deeper than MAX_DEPTH and over-long numbers, before the parser sees them."""
    if _suspect(text):
        _locate(text, source)


def _locate(text: str, source: os.PathLike[str] | str) -> None:
    """Raise the error for the first refused token, with its line and column."""
    depth = 0
    for match in _TOKENS.finditer(text):
        kind = match.lastgroup
        if kind is None:
            continue
        if kind == "open":
            depth += 1
            if depth <= MAX_DEPTH:
                continue
            reason = f"nested deeper than {MAX_DEPTH} levels"
        elif kind == "close":
            depth -= 1
            continue
        elif kind == "number":
            reason = f"a number longer than {MAX_NUMBER_CHARS} characters"
        else:
            reason = f"{match.group()} is not a JSON number"
        raise JSONFileError(source, reason, *_position(text, match.start()))


def loads(text: str, source: os.PathLike[str] | str = "<text>") -> Any:
    """Parse JSON text within the limits; source names it in errors."""
    _prescan(text, source)
    try:
        return json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except json.JSONDecodeError as exc:
        raise JSONFileError(source, f"invalid JSON ({exc.msg})", exc.lineno, exc.colno) from None
    except (ValueError, RecursionError) as exc:
        raise JSONFileError(source, f"invalid JSON ({exc})") from None


def decode(data: bytes, source: os.PathLike[str] | str = "<bytes>") -> Any:
    """Decode UTF-8 bytes (a BOM allowed) and parse them within the limits."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8", errors="replace")
        line, column = _position(prefix, len(prefix))
        raise JSONFileError(source, "it is not UTF-8 text", line, column) from None
    return loads(text, source)


def read_bytes(path: os.PathLike[str] | str, max_bytes: int = MAX_BYTES) -> bytes:
    """Read a regular file of at most max_bytes; OSError (FileNotFoundError too) passes through.

    O_NONBLOCK keeps a fifo planted at the path from hanging the open.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise JSONFileError(path, "it is not a regular file")
        if info.st_size > max_bytes:
            raise JSONFileError(path, f"it is larger than {max_bytes // (1024 * 1024)} MiB")
        os.set_blocking(fd, True)
        chunks = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        if remaining <= 0:
            raise JSONFileError(path, f"it is larger than {max_bytes // (1024 * 1024)} MiB")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_json(path: os.PathLike[str] | str, max_bytes: int = MAX_BYTES) -> Any:
    """Return the JSON value in path, or raise JSONFileError (or OSError when unreadable)."""
    return decode(read_bytes(path, max_bytes), path)


def read_or_problem(path: os.PathLike[str] | str) -> tuple[Any, str | None]:
    """Return a JSON file's value, or None and why it cannot be used (for a notice naming it).

    For files a bad copy of must not stop the run: a definition, Wan2GP's own settings.
    """
    try:
        return read_json(path), None
    except OSError as exc:
        return None, f"cannot read it ({exc.strerror})"
    except JSONFileError as exc:
        where = f"line {exc.line} column {exc.column}: " if exc.line is not None else ""
        return None, f"{where}{exc.reason}"


def move_aside(path: os.PathLike[str] | str) -> Path | None:
    """Rename a broken file to ``<name>.broken`` so the next run starts clean; None if it can't."""
    path = Path(path)
    aside = path.with_name(f"{path.name}.broken")
    try:
        os.replace(path, aside)
    except OSError:
        return None
    return aside
