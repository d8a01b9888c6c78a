"""File-system moves that never leave a half-written or wrong file at a destination."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """Return the cache folder: $WANDOWN_CACHE_DIR, $XDG_CACHE_HOME/wandown or ~/.cache/wandown."""
    explicit = os.environ.get("WANDOWN_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "wandown"


def is_inside(path: os.PathLike[str] | str, folder: os.PathLike[str] | str) -> bool:
    """Tell whether path is folder or below it, links resolved."""
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
    except (ValueError, OSError):
        return False
    return True


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    """Write value as indented JSON, atomically."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_symlink(target: Path, link: Path, replace_file: bool = False) -> None:
    """Make link point at target, replacing an existing link without ever following it.

    A real file at link is replaced only with replace_file (dedupe does that, after proving the
    file identical to target); otherwise FileExistsError is raised.
    """
    link = Path(link)
    if not replace_file and link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} is a real file; not replacing it with a link")
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.link")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def log_exception(name: str, exc: BaseException) -> Path | None:
    """Append exc's traceback to the log file name in the cache folder; return its path.

    Users see one line; the details wait here for a bug report. None when it cannot be written.
    """
    from wandown import __version__

    try:
        path = cache_dir() / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"--- wandown {__version__} {stamp} pid {os.getpid()}\n")
            log.write("".join(traceback.format_exception(exc)))
        return path
    except OSError:
        return None
