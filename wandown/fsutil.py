"""File-system moves that never leave a half-written or wrong file at a destination.

Every write wandown makes goes through here, and keeps three promises:
- A file appears at a destination only verified: downloads are written to a private part file
  and moved into place by `place_new` after their digest matched; links come from
  `atomic_symlink`, made under a temporary name and moved into place in one step.
- Never a write into a hub: working files are opened by `open_private_file`, which refuses a
  link, a hard link or anything but a plain file (O_NOFOLLOW, then fstat), and a destination
  whose real path lies inside a hub folder is refused before anything is written (see
  `is_inside_any`, used by wandown.destination).
- Never a replaced user file: `place_new` and `atomic_symlink` move into place with a rename
  that never replaces (renameat2 RENAME_NOREPLACE, else link and unlink), so a file that
  appeared at the destination meanwhile stays as it is. A link is replaced only when asked,
  and only dedupe, after proving a file identical to its hub copy, replaces a real file.
  A rename never follows the link it replaces, so no write ever lands at a link's target.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import stat
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from wandown.errors import WandownError


class UnsafePathError(WandownError):
    """A path wandown was about to write is not a plain file or folder of its own."""


_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


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


def open_private_file(path: os.PathLike[str] | str, create: bool = True) -> int:
    """Open a working file of wandown's for reading and writing, never through a link.

    The file must be a regular file with one name: a symlink, a hard link into a hub, a fifo
    or a device at a working path means someone else put it there, and writing would land in
    their file.
    """
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    if create:
        flags |= os.O_CREAT
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnsafePathError(
                f"{path} is a link; wandown writes only its own files there. Remove the link "
                "and run again."
            ) from error
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        kind = "not a regular file" if not stat.S_ISREG(info.st_mode) else "a hard link"
        raise UnsafePathError(
            f"{path} is {kind}; wandown writes only its own files there. Remove it and run again."
        )
    os.set_blocking(fd, True)
    return fd


def _renameat2_noreplace(source: str, dest: str) -> bool:
    """Rename without replacing; False when this kernel or file system cannot do it."""
    return _renameat2(source, dest, _RENAME_NOREPLACE)


def _renameat2(source: str, dest: str, flags: int) -> bool:
    """Call renameat2(2) with flags; False when this kernel or file system cannot do it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(dest), flags)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), dest)


def place_new(source: os.PathLike[str] | str, dest: os.PathLike[str] | str) -> None:
    """Move source to dest only if nothing is at dest, as one step.

    Raises FileExistsError when a file, folder or link appeared at dest: a file that someone
    else put there (Wan2GP fetching the same model, the user copying it) is never replaced.
    """
    source, dest = os.fspath(source), os.fspath(dest)
    if _renameat2_noreplace(source, dest):
        return
    # link() never replaces either; the source name goes only once the new name exists.
    os.link(source, dest, follow_symlinks=False)
    os.unlink(source)


def folder_ids(path: os.PathLike[str] | str) -> set[tuple[int, int]]:
    """Return the (device, inode) of path, links resolved, and of every folder above it.

    A bind mount (a Docker volume, `mount --bind`) shows one folder at two paths that no
    realpath relates; only the folder's identity says they are the same.
    """
    found: set[tuple[int, int]] = set()
    real = Path(os.path.realpath(path))
    for place in (real, *real.parents):
        try:
            info = os.stat(place)
        except OSError:
            continue  # not made yet: the folders above it still say where it would land
        found.add((info.st_dev, info.st_ino))
    return found


def is_within_by_identity(
    path: os.PathLike[str] | str, folders: Iterable[os.PathLike[str] | str]
) -> bool:
    """Tell whether path lies in one of folders, compared by identity (bind mounts too)."""
    wanted: set[tuple[int, int]] = set()
    for folder in folders:
        with contextlib.suppress(OSError):
            info = os.stat(folder)
            wanted.add((info.st_dev, info.st_ino))
    return bool(wanted & folder_ids(path))


def is_inside_any(path: os.PathLike[str] | str, folders: Iterable[os.PathLike[str] | str]) -> bool:
    """Tell whether path, links resolved, is any of folders or below one of them."""
    return any(is_inside(path, folder) for folder in folders)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path through a temporary file in the same folder and a rename.

    The rename replaces whatever name is at path, a link included, without following it: a
    link's target is never written.
    """
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


def atomic_symlink(
    target: Path, link: Path, replace_file: bool = False, replace_link: bool = False
) -> None:
    """Make link point at target in one step, never following what is at link.

    Nothing at link: the new link is placed without replacing anything, so a file or a link
    that appears meanwhile wins (FileExistsError). A link at link is replaced only with
    replace_link, a real file only with replace_file (dedupe, after proving it identical to
    target): replacing must be asked for, so nothing the user put there is lost by default.
    """
    link = Path(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_link(target, link)
    try:
        if replace_file:
            os.replace(tmp, link)
            return
        try:
            place_new(tmp, link)
        except FileExistsError:
            if not replace_link:
                raise _occupied(link) from None
            _replace_link(os.fspath(tmp), os.fspath(link))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _occupied(link: Path) -> FileExistsError:
    """Say what is at link, for a refusal to replace it."""
    try:
        what = "a link" if stat.S_ISLNK(os.lstat(link).st_mode) else "a real file"
    except OSError:
        what = "something that appeared meanwhile"
    return FileExistsError(f"{link} is {what}; not replacing it with a link")


def _replace_link(new: str, link: str) -> None:
    """Put the link new at link in place of a link there; never in place of a real file.

    With RENAME_EXCHANGE the two names swap in one step, and the old entry, now at new, is
    looked at afterwards: a real file that got there in between is swapped back, untouched.
    """
    real_file = FileExistsError(f"{link} is a real file; not replacing it with a link")
    if _renameat2(new, link, _RENAME_EXCHANGE):
        if stat.S_ISLNK(os.lstat(new).st_mode):
            return  # the old link is at new now; the caller removes it
        _renameat2(new, link, _RENAME_EXCHANGE)
        raise real_file
    if not stat.S_ISLNK(os.lstat(link).st_mode):
        raise real_file
    os.replace(new, link)  # no exchange here: replace a link seen a moment ago


def _new_link(target: Path, link: Path) -> Path:
    """Create a symlink to target under a fresh hidden name beside link; return that name."""
    while True:
        tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex[:12]}.link")
        try:
            os.symlink(target, tmp)
            return tmp
        except FileExistsError:
            continue


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
