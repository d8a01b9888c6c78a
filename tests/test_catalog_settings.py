"""Every Wan2GP setting that changes files, held to Wan2GP's own download code (8681e9f).

For each settings profile and install layout, the files wandown says each model needs and lacks,
at their destinations, must be exactly those Wan2GP's ``load_models`` fetches, at the places it
writes them (tests/wan2gp_reference.py runs that code from ../shared/wan2gp/8681e9f/src).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.wan2gp_fixtures import real_install
from tests.wan2gp_reference import SRC, Wan2GP, models_def_of
from wandown.catalog import load_catalog, presence_of
from wandown.catalog.codedefaults import CodeData, shipped
from wandown.catalog.definitions import read_definitions
from wandown.status import Status

pytestmark = pytest.mark.skipif(
    not (SRC / "wgp.py").is_file(), reason="needs ../shared/wan2gp/8681e9f/src (Wan2GP's code)"
)
Layout = Callable[[Path], None]


def _nothing(root: Path) -> None:
    pass


def _text_encoder_folder_in_second_root(root: Path) -> None:
    (root / "models" / "umt5-xxl").mkdir(parents=True)
    (root / "models" / "xlm-roberta-large").mkdir()
    (root / "models" / "gemma-3-12b-it-qat-q4_0-unquantized").mkdir()


def _text_encoder_lying_in_a_root(root: Path) -> None:
    (root / "models_t5_umt5-xxl-enc-quanto_int8.safetensors").write_bytes(b"te")
    (root / "ckpts" / "wan2.1_Vace_14B_module_quanto_mbf16_int8.safetensors").write_bytes(b"m")


def _lora_in_a_checkpoint_root(root: Path) -> None:
    (root / "ckpts" / "Wan21_CausVid_14B_T2V_lora_rank32_v2.safetensors").write_bytes(b"l")


def _lying_around(root: Path) -> None:
    _text_encoder_lying_in_a_root(root)
    _lora_in_a_checkpoint_root(root)


# Each brief's combination once; each profile one run of Wan2GP's code over all 217 models.
PROFILES: dict[str, tuple[dict, bool, Layout]] = {
    "defaults": ({}, True, _nothing),
    "pre-bf16 GPU, auto dtype, depth vitb, matanyone v2": (
        {"depth_anything_v2_variant": "vitb", "matanyone_version": "v2"},
        False,
        _nothing,
    ),
    "pre-bf16 GPU, bf16 policy, INT8 in capitals, bf16 text encoder": (
        {
            "transformer_dtype_policy": "bf16",
            "transformer_quantization": "INT8",
            "text_encoder_quantization": "bf16",
        },
        False,
        _nothing,
    ),
    "fp8 + fp16, depth da3, sam3": (
        {
            "transformer_quantization": "fp8",
            "transformer_dtype_policy": "fp16",
            "depth_anything_v2_variant": "da3_metric_large",
            "matanyone_version": "SAM3",
        },
        True,
        _nothing,
    ),
    "bf16 quantization, fp8 text encoder, pre-bf16 GPU": (
        {"transformer_quantization": "", "text_encoder_quantization": "fp8"},
        False,
        _nothing,
    ),
    "loras_root elsewhere, files lying in roots": (
        {"loras_root": "shared/my_loras"},
        True,
        _lying_around,
    ),
    "text encoder folders in the second root": (
        {"checkpoints_paths": ["ckpts", "models", "."]},
        True,
        _text_encoder_folder_in_second_root,
    ),
    "ckpts not a root": ({"checkpoints_paths": ["models", "."]}, False, _nothing),
}

# What Wan2GP reads that changes files, each value as a user may write it (absent: not set).
SETTING_VALUES: dict[str, list] = {
    "transformer_quantization": ["int8", "fp8", "bf16", "", "INT8"],
    "transformer_dtype_policy": ["", "bf16", "fp16"],
    "text_encoder_quantization": ["int8", "bf16", "fp8"],
    "depth_anything_v2_variant": ["vitl", "vitb", "da3_metric_large"],
    "matanyone_version": ["v1", "v2", "sam3", "SAM3"],
    "loras_root": ["loras", "shared/my_loras", "../loras_elsewhere"],
    "checkpoints_paths": [
        ["ckpts", "."],
        ["ckpts"],
        [".", "ckpts"],
        ["models", "ckpts", "."],
        ["ckpts", "models"],
        ["models", "."],
        ["../big_disk", "ckpts"],
    ],
}
# Folders Wan2GP may find already made in a root (text encoders', repo files', core files').
FOLDERS = ("umt5-xxl", "xlm-roberta-large", "Qwen2.5-VL-7B-Instruct", "T5_xxl_1.1", "Qwen3",
           "gemma-3-12b-it-qat-q4_0-unquantized", "clip_vit_large_patch14", "det_align", "depth",
           "mask", "pose", "sam3", "mmaudio", "whisper-tiny", "kiwi_mllm_encoder_reference_only",
           "kiwi_mllm_encoder_instruct_reference", "HeartMula", "gemma4-12b-ltx-v1")  # fmt: skip
GENERATED = 12


def generated_profile(seed: int) -> tuple[dict, bool, Layout]:
    """Return one held-out-style profile: a random mix of settings, GPU and existing folders."""
    rng = random.Random(seed)
    config = {
        key: rng.choice(values) for key, values in SETTING_VALUES.items() if rng.random() < 0.7
    }
    roots = [*config.get("checkpoints_paths", ["ckpts", "."]), "models"]
    made = [(rng.choice(roots), folder) for folder in rng.sample(FOLDERS, rng.randrange(4))]

    def layout(root: Path) -> None:
        for place, folder in made:
            (root / place / folder).mkdir(parents=True, exist_ok=True)
        if rng.random() < 0.3:
            _lying_around(root)

    return config, rng.random() < 0.6, layout


def wan2gp_fetches(root: Path, wgp_config: dict, bf16: bool) -> dict[str, set[tuple[str, str]]]:
    definitions, _ = read_definitions(root)
    wan2gp = Wan2GP(
        models_def_of(definitions, shipped()), shipped(), {**wgp_config, "_bf16_supported": bf16}
    )
    return {model_id: wan2gp.fetched_by(model_id) for model_id in sorted(definitions)}


def wandown_fetches(
    root: Path, bf16: bool, config_dir: Path | None = None, code: CodeData | None = None
) -> dict:
    """Return {model: {(absolute destination, url)}} of needed files not yet in place."""
    catalog = load_catalog(root, code, config_dir=config_dir, bf16_supported=bf16)
    presence = presence_of(catalog)
    fetched: dict[str, set[tuple[str, str]]] = {model_id: set() for model_id in catalog.models}
    urls = {}
    for record in catalog.records:
        if presence[record.dest].status is not Status.MISSING:
            continue
        place = os.path.abspath(root / record.dest)
        urls[place] = {record.url, *record.mirrors}
        for model_id in record.needed_by:
            fetched[model_id].add((place, record.url))
    return {"fetched": fetched, "urls": urls, "notices": catalog.notices}


def differences(ours: dict, theirs: dict[str, set[tuple[str, str]]]) -> dict[str, dict]:
    """Return, per model that differs, the files only one side fetches (a mirror URL is fine)."""
    found = {}
    for model_id, wanted in theirs.items():
        mine = {place for place, _ in ours["fetched"][model_id]}
        places = {place for place, _ in wanted}
        wrong_url = [(p, u) for p, u in wanted if p in mine and u not in ours["urls"][p]]
        if mine != places or wrong_url:
            found[model_id] = {
                "only wandown": sorted(mine - places),
                "only Wan2GP": sorted(places - mine),
                "other URL": wrong_url,
            }
    return found


@pytest.fixture
def real_root(tmp_path, monkeypatch):
    root = real_install(tmp_path, "8681e9f")
    monkeypatch.chdir(root)  # Wan2GP's roots are relative to its working folder
    return root


@pytest.mark.parametrize("profile", PROFILES)
def test_every_model_fetches_what_wan2gp_fetches(real_root, profile):
    wgp_config, bf16, layout = PROFILES[profile]
    (real_root / "wgp_config.json").write_text(json.dumps(wgp_config))
    layout(real_root)
    theirs = wan2gp_fetches(real_root, wgp_config, bf16)
    ours = wandown_fetches(real_root, bf16)
    assert sum(map(len, theirs.values())) > 217 * 10  # Wan2GP's code really ran
    assert differences(ours, theirs) == {}


@pytest.mark.parametrize("seed", range(GENERATED))
def test_a_generated_profile_fetches_what_wan2gp_fetches(real_root, seed):
    wgp_config, bf16, layout = generated_profile(seed)
    (real_root / "wgp_config.json").write_text(json.dumps(wgp_config))
    (real_root / "ckpts").mkdir(exist_ok=True)
    layout(real_root)
    theirs = wan2gp_fetches(real_root, wgp_config, bf16)
    assert differences(wandown_fetches(real_root, bf16), theirs) == {}, wgp_config


def test_pre_bf16_gpu_gets_the_fp16_files(real_root):
    ours = wandown_fetches(real_root, bf16=False)["fetched"]
    names = {os.path.basename(place) for place, _ in ours["i2v_2_2"]}
    assert "wan2.2_image2video_14B_high_quanto_mfp16_int8.safetensors" in names
    assert not any("mbf16" in name for name in names)
    # LTX-2's handler sets dtype bf16 for its architecture: the GPU does not change its files
    ltx = wandown_fetches(real_root, bf16=True)["fetched"]["ltx2_22B_1_1"]
    assert {p for p, _ in ours["ltx2_22B_1_1"]} == {p for p, _ in ltx}


def test_a_wan2gp_config_folder_is_read_first(real_root):
    (real_root / "wgp_config.json").write_text(json.dumps({"transformer_quantization": "int8"}))
    config_dir = real_root / "conf"
    config_dir.mkdir()
    wgp_config = {"transformer_quantization": "fp8", "matanyone_version": "sam3"}
    (config_dir / "wgp_config.json").write_text(json.dumps(wgp_config))
    ours = wandown_fetches(real_root, True, config_dir=Path("conf"))
    assert differences(ours, wan2gp_fetches(real_root, wgp_config, True)) == {}
    sam3 = os.path.abspath(real_root / "ckpts" / "sam3" / "sam3.1_multiplex_bf16.safetensors")
    assert sam3 in {place for place, _ in ours["fetched"]["t2v"]}


def test_ckpts_not_a_root_is_said(real_root):
    wgp_config = {"checkpoints_paths": ["models", "."]}
    (real_root / "wgp_config.json").write_text(json.dumps(wgp_config))
    notices = wandown_fetches(real_root, True)["notices"]
    assert any("'ckpts' is not one of the checkpoints_paths" in n for n in notices)


def test_roots_outside_the_wan2gp_folder_are_used_like_wan2gp(real_root, tmp_path):
    """An absolute first root and a relative one above Wan2GP: files go where Wan2GP puts them."""
    big = tmp_path / "big-disk"
    big.mkdir()
    (tmp_path / "other" / "umt5-xxl").mkdir(parents=True)
    (real_root / "ckpts" / "xlm-roberta-large").mkdir()
    wgp_config = {
        "checkpoints_paths": [str(big), "ckpts", "../other"],
        "loras_root": str(tmp_path / "all-loras"),
    }
    (real_root / "wgp_config.json").write_text(json.dumps(wgp_config))
    ours = wandown_fetches(real_root, True)
    assert differences(ours, wan2gp_fetches(real_root, wgp_config, True)) == {}
    t2v = {place for place, _ in ours["fetched"]["t2v"]}
    assert str(big / "wan2.1_text2video_14B_quanto_mbf16_int8.safetensors") in t2v
    assert str(tmp_path / "other" / "umt5-xxl" / "spiece.model") in t2v
    assert str(real_root / "ckpts" / "xlm-roberta-large" / "tokenizer.json") in t2v
    assert not [n for n in ours["notices"] if "checkpoints_paths" in n or "loras_root" in n]
