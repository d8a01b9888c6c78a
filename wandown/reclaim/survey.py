"""What lies in Wan2GP's checkpoint roots and LoRA folders that might be reclaimed: read only.

The rule for what counts as a model file, and so may ever be listed, is deliberately narrow,
because Wan2GP keeps its own source tree in the root "." checkpoint root:
- no link is ever followed: a folder link is not entered, a file link is only a link (the
  roots themselves may be links, e.g. a ckpts folder on another disk);
- hidden folders (`.git`, `.venv`, `.cache`...), `__pycache__`, `node_modules` and
  `site-packages` are never entered, nor Wan2GP's own folders at the install root (`defaults`,
  `finetunes`, `outputs`, `settings`, `docs`), nor any folder of a hub, nor another root;
- below a root, a folder whose tree holds Python source (`*.py`) or a project or environment
  marker (`pyproject.toml`, `setup.py`, `requirements.txt`, `pyvenv.cfg`, `wgp.py`, `.git`) is
  software (Wan2GP's `models/`, a plugin, a cloned repo, a virtual environment): nothing in it
  is ever listed;
- a model file is a weight (`.safetensors`, `.sft`, `.gguf`, `.ckpt`, `.pt`, `.pth`, `.bin`,
  `.onnx`) anywhere in those bounds, or a config (`.json`, `.yaml`, `.yml`, `.txt`, `.model`,
  `.tiktoken`) inside a model folder: a folder below a checkpoint root that holds a weight
  itself, or any file at a place the catalog lists. Nothing else is ever listed (images,
  videos, `.lset` presets, READMEs...);
- `.wandown/` folders are read for working files of downloads (see engine.partial).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat as stat_module
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wandown import fsutil
from wandown.engine.partial import PARTIAL_FOLDER, PartialState, load_state
from wandown.hub.sidecar import FileStat

WEIGHT_SUFFIXES = frozenset(
    {".safetensors", ".sft", ".gguf", ".ckpt", ".pt", ".pth", ".bin", ".onnx"}
)
CONFIG_SUFFIXES = frozenset({".json", ".yaml", ".yml", ".txt", ".model", ".tiktoken"})
NEVER_ENTERED = frozenset({"__pycache__", "node_modules", "site-packages"})
WAN2GP_OWN = frozenset({"defaults", "finetunes", "outputs", "settings", "docs"})
SOFTWARE_MARKERS = frozenset(
    {"pyproject.toml", "setup.py", "requirements.txt", "pyvenv.cfg", "wgp.py", ".git"}
)
WORKING_SUFFIXES = (".part", ".state", ".lock", ".stmp")
MAX_DEPTH = 32  # model folders are shallow; deeper is a tree that is not Wan2GP's


@dataclass(frozen=True)
class Root:
    """A folder to survey: a checkpoint root (configs may be listed) or a LoRA folder."""

    path: Path
    configs: bool = True


@dataclass(frozen=True)
class Found:
    """One entry on disk as the survey saw it, with what pins it for the deleting step."""

    path: Path
    folder_id: tuple[int, int]  # (device, inode) of the folder it is in
    stat: FileStat  # lstat: of the link itself for a link
    allocated: int  # bytes on disk (a sparse part holds less than its size)
    link: str | None = None  # what a link points at, as written in it
    broken: bool = False

    @property
    def is_weight(self) -> bool:
        return self.path.suffix.lower() in WEIGHT_SUFFIXES


@dataclass(frozen=True)
class Working:
    """The working files of one destination in a `.wandown/` folder."""

    folder: Path  # the destination's folder (the parent of .wandown)
    stem: str  # the name the working files share (engine.partial.working_stem)
    files: tuple[Found, ...]
    state: PartialState | None
    held: bool  # a download holds its lock right now


@dataclass
class Survey:
    files: list[Found] = field(default_factory=list)
    working: list[Working] = field(default_factory=list)


def survey(
    roots: Sequence[Root],
    install_root: Path,
    hub_folders: Iterable[Path],
    hub_ids: Iterable[tuple[int, int]],
    notice: Callable[[str], None],
    known: Collection[str] = frozenset(),
) -> Survey:
    """Walk roots (stat only, and the small state files) and return what the rule admits.

    known holds the places the catalog lists (normalised absolute paths): always model files.
    """
    walker = _Walker(install_root, list(hub_folders), set(hub_ids), notice, known)
    usable: list[tuple[Root, str, tuple[int, int]]] = []
    for root in roots:
        # Walked by the path the catalog uses, so places compare as text: a root that is a
        # link (a ckpts folder on another disk) is entered; nothing below it is followed.
        path = _plain(root.path)
        try:
            info = os.stat(path)
        except OSError:
            continue
        if not stat_module.S_ISDIR(info.st_mode) or walker.in_hub(path, info):
            continue
        identity = (info.st_dev, info.st_ino)
        if identity not in walker.root_ids:
            walker.root_ids.add(identity)
            usable.append((root, path, identity))
    for root, path, identity in usable:
        _, files, working = walker.folder(path, identity, 0, root, root.configs)
        walker.result.files += files
        walker.result.working += working
    return walker.result


class _Walker:
    def __init__(
        self,
        install_root: Path,
        hub_folders: list[Path],
        hub_ids: set[tuple[int, int]],
        notice: Callable[[str], None],
        known: Collection[str],
    ) -> None:
        self.known = known
        self.install_root = _plain(install_root)
        self.hub_folders = hub_folders
        self.hub_ids = hub_ids
        self.notice = notice
        self.root_ids: set[tuple[int, int]] = set()
        self.result = Survey()

    def in_hub(self, path: str, info: os.stat_result) -> bool:
        """Tell whether a folder is a hub's, by identity or by its real path."""
        return (info.st_dev, info.st_ino) in self.hub_ids or fsutil.is_inside_any(
            path, self.hub_folders
        )

    def folder(
        self, path: str, identity: tuple[int, int], depth: int, root: Root | None, configs: bool
    ) -> tuple[bool, list[Found], list[Working]]:
        """Return (is software, model files, working files) of one folder's tree.

        root is set for a root itself: its own files are looked at even in a software tree
        (the install root holds wgp.py), but never its configs.
        """
        try:
            with os.scandir(path) as listing:
                entries = list(listing)
        except OSError as exc:
            self.notice(f"reclaim: skipping {path}: {exc.strerror or exc}")
            return False, [], []
        if root is None and any(_is_software(entry) for entry in entries):
            return True, [], []
        weights_here = any(Path(e.name).suffix.lower() in WEIGHT_SUFFIXES for e in entries)
        found: list[Found] = []
        working: list[Working] = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    software, files, work = self.subfolder(entry, path, depth, configs)
                    if software and root is None:
                        return True, [], []  # a tree with software in it is software
                    found += files
                    working += work
                elif entry.is_symlink() or entry.is_file(follow_symlinks=False):
                    with_configs = configs and weights_here and root is None
                    item = self.file(entry, identity, with_configs)
                    if item is not None:
                        found.append(item)
            except OSError as exc:
                self.notice(f"reclaim: skipping {entry.path}: {exc.strerror or exc}")
        return False, found, working

    def subfolder(
        self, entry: os.DirEntry[str], parent: str, depth: int, configs: bool
    ) -> tuple[bool, list[Found], list[Working]]:
        name = entry.name
        info = entry.stat(follow_symlinks=False)
        identity = (info.st_dev, info.st_ino)
        if name == PARTIAL_FOLDER:
            return False, [], self.working(entry.path, parent, identity)
        if (
            name.startswith(".")
            or name in NEVER_ENTERED
            or (parent == self.install_root and name in WAN2GP_OWN)
            or identity in self.root_ids
            or self.in_hub(entry.path, info)
            or depth >= MAX_DEPTH
        ):
            return False, [], []
        return self.folder(entry.path, identity, depth + 1, None, configs)

    def file(
        self, entry: os.DirEntry[str], folder_id: tuple[int, int], configs: bool
    ) -> Found | None:
        suffix = Path(entry.name).suffix.lower()
        model_like = suffix in WEIGHT_SUFFIXES or (configs and suffix in CONFIG_SUFFIXES)
        if not model_like and os.path.normpath(entry.path) not in self.known:
            return None
        info = entry.stat(follow_symlinks=False)
        if stat_module.S_ISLNK(info.st_mode):
            target = os.readlink(entry.path)
            try:
                pointed = os.stat(entry.path)
            except OSError:
                return Found(Path(entry.path), folder_id, FileStat.of(info), 0, target, True)
            if stat_module.S_ISDIR(pointed.st_mode):
                return None  # a folder link is never listed: what it stands for is unknown
            return Found(Path(entry.path), folder_id, FileStat.of(info), 0, target)
        if not stat_module.S_ISREG(info.st_mode):
            return None
        return Found(Path(entry.path), folder_id, FileStat.of(info), _allocated(info))

    def working(self, path: str, parent: str, identity: tuple[int, int]) -> list[Working]:
        """Group the working files of a `.wandown/` folder by the destination they serve."""
        try:
            with os.scandir(path) as listing:
                entries = list(listing)
        except OSError as exc:
            self.notice(f"reclaim: skipping {path}: {exc.strerror or exc}")
            return []
        groups: dict[str, list[Found]] = {}
        for entry in entries:
            stem, suffix = os.path.splitext(entry.name)
            if suffix not in WORKING_SUFFIXES:
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if stat_module.S_ISREG(info.st_mode) and info.st_nlink == 1:
                    found = Found(Path(entry.path), identity, FileStat.of(info), _allocated(info))
                    groups.setdefault(stem, []).append(found)
        result = []
        for stem, files in sorted(groups.items()):
            state_path = Path(path) / f"{stem}.state"
            state = load_state(state_path) if any(f.path == state_path for f in files) else None
            held = _lock_held(Path(path) / f"{stem}.lock")
            result.append(Working(Path(parent), stem, tuple(files), state, held))
        return result


def _plain(path: os.PathLike[str] | str) -> str:
    return os.path.normpath(os.path.abspath(path))


def _is_software(entry: os.DirEntry[str]) -> bool:
    return entry.name in SOFTWARE_MARKERS or entry.name.endswith(".py")


def _allocated(info: os.stat_result) -> int:
    blocks = getattr(info, "st_blocks", None)
    return info.st_size if blocks is None else min(info.st_size, blocks * 512)


def _lock_held(path: Path) -> bool:
    """Tell whether a download holds this lock file now (a shared probe, never a write)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
