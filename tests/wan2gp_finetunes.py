"""User finetunes for the real 8681e9f catalog: one new id per architecture, same-id overrides.

Built from the definitions themselves, so every architecture of the catalog gets one: a new-id
finetune takes the files of another definition of its architecture (another variant), or, where
the architecture has one definition, files of the same repos under new names. The hand-made ones
exercise what the handlers compute from a model's own keys (Kiwi-Edit's encoder folder from the
URL's name, LTX-2's VAE from ``ltx2_video_vae_file``) and wgp.py's same-id merge.
"""

from __future__ import annotations

import copy
import json
import posixpath
from pathlib import Path
from typing import Any

HUB = "https://huggingface.co"
KIWI_REFERENCE_ONLY = (
    f"{HUB}/DeepBeepMeep/Wan2.2/resolve/main/my_kiwi_5B_reference_only_bf16.safetensors"
)
MY_T5 = f"{HUB}/DeepBeepMeep/LTX_Video/resolve/main/T5_xxl_1.1/T5_xxl_1.1_myft_quanto_bf16_int8.st"
LTX2_VAE = "ltx-2.3-22b_vae_my_finetune.safetensors"
OLD_STYLE_LORA = f"{HUB}/DeepBeepMeep/LTX-2/resolve/main/ltx-2.3-22b-ic-lora-outpaint.safetensors"


def _renamed(value: Any) -> Any:
    """Return URL lists with every file renamed (same repo, same folder, same variant tokens)."""
    if isinstance(value, list):
        return [_renamed(item) for item in value]
    if isinstance(value, dict):
        return {key: _renamed(item) for key, item in value.items()}
    if isinstance(value, str) and value.startswith("http"):
        url, bar, suffix = value.partition("|")
        folder, name = posixpath.split(url)
        return f"{folder}/myft_{name}{bar}{suffix}"
    return value


def _definitions(defaults: Path) -> dict[str, dict[str, Any]]:
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))["model"]
        for path in sorted(defaults.glob("*.json"))
    }


def new_id_finetunes(defaults: Path) -> dict[str, dict[str, Any]]:
    """Return {new id: model}: one finetune per distinct architecture of the catalog."""
    by_architecture: dict[str, list[str]] = {}
    models = _definitions(defaults)
    for model_id, model in models.items():
        by_architecture.setdefault(model.get("architecture") or model_id, []).append(model_id)
    finetunes = {}
    for architecture, ids in sorted(by_architecture.items()):
        model = copy.deepcopy(models[ids[0]])
        model["architecture"] = architecture
        model["name"] = f"{model.get('name', ids[0])} (my finetune)"
        other = next(
            (models[i] for i in ids[1:] if isinstance(models[i].get("URLs"), list)
             and models[i]["URLs"] != model.get("URLs")),
            None,
        )  # fmt: skip
        for key in ("URLs", "URLs2"):
            if other is not None and key in other:
                model[key] = copy.deepcopy(other[key])
            elif isinstance(model.get(key), list):
                model[key] = _renamed(model[key])
        finetunes[f"myft_{architecture}"] = model
    return finetunes


def hand_made_finetunes(defaults: Path) -> dict[str, dict[str, Any]]:
    """Return the finetunes whose code-side files depend on their own keys, and same-id ones."""
    models = _definitions(defaults)
    kiwi = copy.deepcopy(models["kiwi_edit"])
    kiwi.update(architecture="kiwi_edit", URLs=[KIWI_REFERENCE_ONLY])
    ltx2 = copy.deepcopy(models["ltx2_22B"])
    ltx2.update(architecture="ltx2_22B", ltx2_video_vae_file=LTX2_VAE)
    old_style = copy.deepcopy(models["ltx2_22B"])
    old_style.update(architecture="ltx2_22B", preload_URLs=[OLD_STYLE_LORA])
    local = copy.deepcopy(models["t2v"])
    local.update(architecture="t2v", source="my_own/t2v_mine.safetensors")
    return {
        "my_kiwi_reference_only": kiwi,
        "my_ltx2_own_vae": ltx2,
        "my_ltx2_old_style": old_style,  # ltx2_handler migrates its preload into the LoRA folder
        "my_t2v_from_a_local_file": local,
        # a bare definition whose files are another model's, named by its id
        "my_kiwi_by_reference": {
            "name": "My Kiwi",
            "architecture": "kiwi_edit",
            "URLs": "kiwi_edit_reference_only",
        },
        "my_vace_t2v": {
            "name": "My Vace",
            "architecture": "vace_14B",
            "URLs": "t2v",
            "modules": ["vace_14B"],
            "loras": _renamed(models["t2v"]["URLs"][:1]),
        },
        # same ids: keys merged onto the already-merged default (wgp.py ~3264)
        "kiwi_edit": {"URLs": [KIWI_REFERENCE_ONLY]},
        "ltx2_22B_distilled": {"ltx2_video_vae_file": LTX2_VAE},
        "ltx2_22B_1_1": {"preload_URLs": [OLD_STYLE_LORA]},  # not migrated: not recomputed
        "t2v": {"URLs": _renamed(models["t2v"]["URLs"]), "loras": _renamed(models["i2v"]["URLs"])},
        "flux": {"text_encoder_URLs": [MY_T5]},
        "qwen_image_20B": {"preload_URLs": _renamed(models["qwen_image_20B"]["URLs"][:1])},
    }


def write_finetunes(root: Path, finetunes: dict[str, dict[str, Any]]) -> None:
    folder = root / "finetunes"
    folder.mkdir(exist_ok=True)
    for model_id, model in finetunes.items():
        (folder / f"{model_id}.json").write_text(json.dumps({"model": model}, indent=1))
