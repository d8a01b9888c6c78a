"""The core files every model needs, as the settings choose them.

wgp.py ``query_core_shared_model_files`` (~3558-3570, 8681e9f) picks the depth model by
``depth_anything_v2_variant``; preprocessing/matanyone/utils/model_assets.py picks the mask files by
``matanyone_version``, and ``sam3`` replaces the whole ``mask/`` folder by ``sam3/``.
"""

from __future__ import annotations

from wandown.catalog.codedefaults import RepoFolder
from wandown.catalog.wgpconfig import WanSettings

DEPTH_FOLDER = "depth"
DEPTH_FILES = {
    "vitl": "depth_anything_v2_vitl.pth",
    "vitb": "depth_anything_v2_vitb.pth",
    "da3_metric_large": "depth_anything_v3_metric_large_bf16.safetensors",
}
MASK_FOLDER = "mask"
MATANYONE_WEIGHTS = {"v1": "matanyone.safetensors", "v2": "matanyone2.safetensors"}
SAM3_FOLDER = "sam3"
SAM3_FILES = ("sam3.1_multiplex_bf16.safetensors", "bpe_simple_vocab_16e6.txt.gz")


def core_folders(core: tuple[RepoFolder, ...], settings: WanSettings) -> tuple[RepoFolder, ...]:
    """Return the core folders with the depth and mask files the settings pick."""
    chosen: list[RepoFolder] = []
    for group in core:
        if group.source_folder == DEPTH_FOLDER:
            depth = DEPTH_FILES.get(settings.depth_anything_v2_variant, DEPTH_FILES["vitl"])
            others = [name for name in group.files if name not in DEPTH_FILES.values()]
            chosen.append(_with_files(group, (*others, depth)))
        elif group.source_folder == MASK_FOLDER:
            chosen.append(_mask_folder(group, settings.matanyone_version))
        else:
            chosen.append(group)
    return tuple(chosen)


def _mask_folder(group: RepoFolder, version: str) -> RepoFolder:
    if version == "sam3":
        return RepoFolder(group.repo, SAM3_FOLDER, group.target_folder, SAM3_FILES)
    weights = MATANYONE_WEIGHTS.get(version, MATANYONE_WEIGHTS["v1"])
    kept = [name for name in group.files if name not in MATANYONE_WEIGHTS.values()]
    return _with_files(group, (*kept[:1], weights, *kept[1:]))


def _with_files(group: RepoFolder, files: tuple[str, ...]) -> RepoFolder:
    return RepoFolder(group.repo, group.source_folder, group.target_folder, files)
