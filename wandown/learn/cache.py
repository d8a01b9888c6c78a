"""The learned facts, cached per Wan2GP install and keyed on the hashes of the files read.

A start that finds every file the last learning read (the imported sources, wgp.py, the plugin
manifests, the definitions, wgp_config.json) unchanged, and no definition added or removed, reuses
the answer without starting the child. A broken cache file is set aside and learning runs again.

Hashing every source file on each start costs more than the rest of the lookup, so each digest is
kept beside the cache (``.stats.json``) with the file's size, mtime, ctime and inode, as git's
index does, and trusted while those stay the same; a file written within two seconds of being
hashed is hashed again next time.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import itertools
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wandown import fsutil, jsonfile
from wandown.digests import SHA256, file_digest
from wandown.learn.runner import CHILD

FORMAT = 1
RACY_NS = 2_000_000_000  # a file this close to its hashing may change again within one mtime tick
SOURCE_FOLDERS = ("models", "shared", "preprocessing", "postprocessing", "plugins")


def cache_path(source_root: Path) -> Path:
    """Return the cache file of one Wan2GP install: cache_dir()/learn/<name>-<digest>.json."""
    absolute = os.path.abspath(source_root)
    digest = hashlib.sha256(os.fsencode(absolute)).hexdigest()[:16]
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(absolute).name)[:40]
    return fsutil.cache_dir() / "learn" / f"{name or 'wan2gp'}-{digest}.json"


def _digest(path: Path) -> str:
    try:
        return file_digest(path, SHA256) or ""
    except OSError:
        return ""  # gone or unreadable: matches no recorded hash


class Hasher:
    """Hash files, reusing a digest recorded for the same size, mtime, ctime and inode."""

    def __init__(self, known: Mapping[str, Any] | None = None) -> None:
        self.known = known or {}
        self.seen: dict[str, list[Any]] = {}  # what the next start may trust
        self.hashed = 0  # files read whole (tests check the fast path)

    def digest(self, path: Path) -> str:
        """Return path's sha256, "" when it is gone or unreadable."""
        name = os.path.abspath(path)
        try:
            stat = os.stat(name)
        except OSError:
            return ""
        key = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
        recorded = self.known.get(name)
        if isinstance(recorded, list) and len(recorded) == 5 and recorded[:4] == key:
            digest = recorded[4]
            if isinstance(digest, str):
                self.seen[name] = recorded
                return digest
        self.hashed += 1
        digest = _digest(path)
        if digest and max(stat.st_mtime_ns, stat.st_ctime_ns) < time.time_ns() - RACY_NS:
            self.seen[name] = [*key, digest]
        return digest


def _listing(install_root: Path, plugin_folders: list[str]) -> list[str]:
    """Every definition file now present, in the form the child reported them."""
    found = []
    for folder in ("defaults", "finetunes"):
        pattern = os.path.join(glob.escape(str(install_root / folder)), "*.json")
        found += [f"{folder}/{Path(p).name}" for p in glob.glob(pattern)]
    for folder in plugin_folders:
        found += glob.glob(os.path.join(glob.escape(folder), "*.json"))
    return sorted(found)


def fingerprint(
    source_root: Path, install_root: Path, answer: dict[str, Any], hasher: Hasher | None = None
) -> dict[str, Any]:
    """Return the hashes and listings that decide whether answer still holds."""
    digest = (hasher or Hasher()).digest
    sources = {"wgp.py", *answer.get("sources", ())}
    sources |= {
        os.path.relpath(p, source_root)
        for p in glob.glob(str(source_root / "plugins" / "*" / "plugin_info.json"))
    }
    installs = {"wgp_config.json", *answer.get("install_files", ())}
    definitions = [p for p in answer.get("definitions", ()) if os.path.isabs(p)]
    plugin_folders = sorted({os.path.dirname(p) for p in definitions})
    return {
        "child": digest(CHILD),
        "sources": {rel: digest(source_root / rel) for rel in sorted(sources)},
        "install": {rel: digest(install_root / rel) for rel in sorted(installs)},
        "plugin_folders": plugin_folders,
        "listing": _listing(install_root, plugin_folders),
    }


def lookup(source_root: Path, install_root: Path) -> dict[str, Any] | None:
    """Return the cached answer for this install if nothing it was learned from changed."""
    path = cache_path(source_root)
    if not path.exists():
        return None
    try:
        entry = jsonfile.read_json(path)
    except (OSError, jsonfile.JSONFileError):
        jsonfile.move_aside(path)
        return None
    if not (isinstance(entry, dict) and entry.get("format") == FORMAT):
        return None
    answer, recorded = entry.get("answer"), entry.get("fingerprint")
    if not isinstance(answer, dict) or not isinstance(recorded, dict):
        return None
    stats = _read_stats(source_root)
    hasher = Hasher(stats)
    if fingerprint(source_root, install_root, answer, hasher) != recorded:
        return None
    if hasher.seen != stats:  # what was hashed again this time is trusted by its stat next time
        _write_stats(source_root, hasher.seen)
    return answer


def _stats_path(source_root: Path) -> Path:
    path = cache_path(source_root)
    return path.with_name(f"{path.stem}.stats.json")


def _read_stats(source_root: Path) -> dict[str, Any]:
    """Return the recorded stat and digest of each file hashed; {} when there is none."""
    try:
        stats = jsonfile.read_json(_stats_path(source_root))
    except (OSError, jsonfile.JSONFileError):
        return {}
    return stats if isinstance(stats, dict) else {}


def _write_stats(source_root: Path, stats: dict[str, list[Any]]) -> None:
    with contextlib.suppress(OSError):
        fsutil.atomic_write_json(_stats_path(source_root), stats)


def store(source_root: Path, install_root: Path, answer: dict[str, Any]) -> None:
    """Remember answer for the next start; a cache that cannot be written is only slower."""
    hasher = Hasher()
    entry = {
        "format": FORMAT,
        "root": str(source_root),
        "fingerprint": fingerprint(source_root, install_root, answer, hasher),
        "answer": answer,
    }
    with contextlib.suppress(OSError):
        fsutil.atomic_write_json(cache_path(source_root), entry)
    _write_stats(source_root, hasher.seen)


def _tree_stamp(source_root: Path, install_root: Path) -> str:
    """Return a digest of every Python file's name, size and mtime, and the install's files.

    A failed learning has no list of the files it read, so Wan2GP's source folders stand in.
    """
    entries = [_digest(source_root / "wgp.py")]
    walked = [str(source_root / name) for name in SOURCE_FOLDERS]
    for folder, dirs, files in itertools.chain.from_iterable(os.walk(top) for top in walked):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".json")):
                try:
                    stat = os.stat(os.path.join(folder, name))
                except OSError:
                    continue
                entries.append(f"{os.path.join(folder, name)}\0{stat.st_size}\0{stat.st_mtime_ns}")
    entries.append(_digest(install_root / "wgp_config.json"))
    entries.append(_digest(CHILD))
    return hashlib.sha256("\n".join(entries).encode("utf-8", "surrogateescape")).hexdigest()


def _failure_path(source_root: Path) -> Path:
    path = cache_path(source_root)
    return path.with_name(f"{path.stem}.failed.json")


def recorded(source_root: Path, failure: bool = False) -> bool:
    """Tell whether an answer (or a failure) for this tree was ever stored, current or not."""
    return (_failure_path(source_root) if failure else cache_path(source_root)).is_file()


def lookup_failure(source_root: Path, install_root: Path) -> str | None:
    """Return why the last learning of this unchanged tree failed, or None."""
    path = _failure_path(source_root)
    try:
        entry = jsonfile.read_json(path)
    except (OSError, jsonfile.JSONFileError):
        return None
    if not isinstance(entry, dict) or entry.get("stamp") != _tree_stamp(source_root, install_root):
        return None
    why = entry.get("why")
    return why if isinstance(why, str) else None


def store_failure(source_root: Path, install_root: Path, why: str) -> None:
    """Remember a failure, so the next start on the same tree does not wait for it again."""
    entry = {"format": FORMAT, "stamp": _tree_stamp(source_root, install_root), "why": why}
    with contextlib.suppress(OSError):
        fsutil.atomic_write_json(_failure_path(source_root), entry)
