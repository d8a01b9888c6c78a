"""Several hubs as one: each scanned, sidecar-cached and proven on its own, asked in order.

A user may keep models in a plain tree, a Hugging Face cache, an InvokeAI root and a ComfyUI
`models/` folder at once. Each hub keeps its own HubIndex (keys relative to its root, its own
sidecar), so nothing about one hub leaks into another; the set answers the questions the load,
the plan and the linker ask, the first hub in the user's order winning where two hold a file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from wandown.digests import Progress
from wandown.hub.hfcache import HfCacheRepo, repo_id_from_folder
from wandown.hub.index import HubIndex, Wanted

# ComfyUI's models/ folder: one plain folder per kind of file (folder_paths.py in ComfyUI).
COMFYUI_FOLDERS = frozenset(
    {
        "checkpoints",
        "loras",
        "vae",
        "text_encoders",
        "clip",
        "clip_vision",
        "unet",
        "diffusion_models",
        "controlnet",
        "upscale_models",
        "embeddings",
        "vae_approx",
        "style_models",
        "gligen",
        "hypernetworks",
        "photomaker",
    }
)
COMFYUI_MIN_FOLDERS = 3  # a hub with loras/ and vae/ alone is just a plain tree


def hub_kind(index: HubIndex) -> str:
    """Name what a hub root is: ComfyUI, Hugging Face cache, InvokeAI, or a plain tree."""
    root = index.hub_dir
    real = os.path.realpath(root)
    if any(os.path.realpath(place) == real for place in index.invokeai_roots):
        return "InvokeAI"
    try:
        names = set(os.listdir(root))
    except OSError:
        return "plain"
    if any(repo_id_from_folder(name) for name in names) or ("hub" in names and _is_hf_home(root)):
        return "Hugging Face cache"
    if len(names & COMFYUI_FOLDERS) >= COMFYUI_MIN_FOLDERS:
        return "ComfyUI"
    return "plain"


def _is_hf_home(root: str) -> bool:
    """Tell whether root is an HF_HOME: its hub/ holds models--owner--name folders."""
    try:
        return any(repo_id_from_folder(name) for name in os.listdir(os.path.join(root, "hub")))
    except OSError:
        return False


@dataclass(frozen=True)
class HubSummary:
    """One hub as the header shows it."""

    folder: str
    kind: str
    file_count: int


class HubSet:
    """The user's hubs in their order; quacks like one HubIndex for the load and the linker."""

    def __init__(self, indexes: Iterable[HubIndex]) -> None:
        self.indexes: tuple[HubIndex, ...] = tuple(indexes)
        if not self.indexes:
            raise ValueError("a HubSet needs at least one hub")
        self.kinds = tuple(hub_kind(index) for index in self.indexes)
        self._match_lock = threading.Lock()

    def __iter__(self) -> Iterator[HubIndex]:
        return iter(self.indexes)

    def __len__(self) -> int:
        return len(self.indexes)

    # -- facts -------------------------------------------------------------------------------

    @property
    def hub_dir(self) -> str:
        """Return the hub folders as one phrase, for messages."""
        return ", ".join(index.hub_dir for index in self.indexes)

    @property
    def hub_dirs(self) -> list[str]:
        return [index.hub_dir for index in self.indexes]

    @property
    def file_count(self) -> int:
        return sum(index.file_count for index in self.indexes)

    @property
    def hf_repos(self) -> list[HfCacheRepo]:
        return [repo for index in self.indexes for repo in index.hf_repos]

    @property
    def real_roots(self) -> list[str]:
        return [root for index in self.indexes for root in index.real_roots]

    @property
    def folder_ids(self) -> frozenset[tuple[int, int]]:
        return frozenset().union(*(index.folder_ids for index in self.indexes))

    @property
    def blake3_available(self) -> bool:
        return self.indexes[0].blake3_available

    @property
    def notices(self) -> list[str]:
        return [message for index in self.indexes for message in index.notices]

    def summaries(self) -> list[HubSummary]:
        return [
            HubSummary(index.hub_dir, kind, index.file_count)
            for index, kind in zip(self.indexes, self.kinds, strict=True)
        ]

    def notice(self, message: str) -> None:
        """Pass a notice on, as the first hub's index would."""
        self.indexes[0].notice(message)

    # -- matching ----------------------------------------------------------------------------

    def has_size(self, size: int) -> bool:
        return any(index.has_size(size) for index in self.indexes)

    def proven(self, wanted: Iterable[Wanted]) -> dict[Wanted, Path]:
        """Return what the hubs prove from remembered digests alone, the first hub first."""
        pending = list(dict.fromkeys(wanted))
        found: dict[Wanted, Path] = {}
        for index in self.indexes:
            if not pending:
                break
            found.update(index.proven(pending))
            pending = [item for item in pending if item not in found]
        return found

    def match(
        self,
        wanted: Iterable[Wanted] | Mapping[Wanted, object],
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[Wanted, Path]:
        """Return {wanted file: hub file}: each hub proves what the hubs before it did not.

        What an earlier hub's sidecar already proves is taken before a later hub is read.
        """
        pending = list(dict.fromkeys(wanted))
        found = self.proven(pending)
        pending = [item for item in pending if item not in found]
        with self._match_lock:
            for index in self.indexes:
                if not pending or (cancel is not None and cancel.is_set()):
                    break
                found.update(index.match(pending, progress=progress, cancel=cancel))
                pending = [item for item in pending if item not in found]
        return found

    def find_in_hf_cache(
        self, repo: str, path: str, revision: str = "main"
    ) -> tuple[Path, str] | None:
        """Return the first hub's answer (see HubIndex.find_in_hf_cache)."""
        for index in self.indexes:
            hit = index.find_in_hf_cache(repo, path, revision)
            if hit is not None:
                return hit
        return None

    def save(self) -> None:
        for index in self.indexes:
            index.save()
