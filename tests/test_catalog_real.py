"""The catalog against the real Wan2GP definitions in ../shared/wan2gp (all three commits)."""

from __future__ import annotations

import json

import pytest

from tests.wan2gp_fixtures import SHARED, real_install
from wandown.catalog import load_catalog, presence_of
from wandown.listing import Listed

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/wan2gp is not here")

COMMITS = ("8681e9f", "0352a5e", "eb92f0c")


def needed(catalog, model_id, include_core=False):
    return sorted(
        r.dest
        for r in catalog.records
        if model_id in r.needed_by and (include_core or r.role != "core")
    )


@pytest.fixture(scope="module")
def current(tmp_path_factory):
    return load_catalog(real_install(tmp_path_factory.mktemp("real"), "8681e9f"))


@pytest.mark.parametrize("commit", COMMITS)
def test_every_commit_parses_and_every_model_is_listed(tmp_path, commit):
    catalog = load_catalog(real_install(tmp_path, commit))
    ids = {p.stem for p in (SHARED / commit / "defaults").glob("*.json")}
    assert set(catalog.models) == ids
    assert catalog.records
    dests = [r.dest for r in catalog.records]
    assert len(dests) == len(set(dests))


def test_current_catalog_shape(current):
    assert len(current.models) == 217
    hub_urls = {r.url for r in current.records if r.role not in ("repo_file", "core")}
    repos = {r.repo for r in current.records}
    assert None not in repos
    assert len(repos) == 23
    assert all(r.revision == "main" for r in current.records)
    assert all(m.code_defaults_from == m.model_id for m in current.models.values())
    assert not [m for m in current.models.values() if m.problems]
    # every definition URL became a record (387 distinct URLs, some shared)
    assert len(hub_urls) >= 300


def test_t2v_needs_the_int8_bf16_variants_and_its_code_files(current):
    assert needed(current, "t2v") == [
        "ckpts/Wan2.1_VAE.safetensors",
        "ckpts/Wan2.1_VAE_upscale2x_imageonly_real_v1.safetensors",
        "ckpts/umt5-xxl/models_t5_umt5-xxl-enc-quanto_int8.safetensors",
        "ckpts/umt5-xxl/special_tokens_map.json",
        "ckpts/umt5-xxl/spiece.model",
        "ckpts/umt5-xxl/tokenizer.json",
        "ckpts/umt5-xxl/tokenizer_config.json",
        "ckpts/wan2.1_text2video_14B_quanto_mbf16_int8.safetensors",
        "ckpts/xlm-roberta-large/models_clip_open-clip-xlm-roberta-large-vit-huge-14-bf16.safetensors",
        "ckpts/xlm-roberta-large/sentencepiece.bpe.model",
        "ckpts/xlm-roberta-large/special_tokens_map.json",
        "ckpts/xlm-roberta-large/tokenizer.json",
        "ckpts/xlm-roberta-large/tokenizer_config.json",
    ]
    bf16 = current.record("ckpts/wan2.1_text2video_14B_mbf16.safetensors")
    assert bf16.needed_by == set() and "t2v" in bf16.listed_by and bf16.role == "main"


def test_two_phase_model_with_a_module_reference(current):
    files = needed(current, "vace_14B_2_2")
    assert "ckpts/wan2.1_Vace_14B_module_quanto_mbf16_int8.safetensors" in files
    assert "ckpts/wan2.2_text2video_14B_high_quanto_mbf16_int8.safetensors" in files
    assert "ckpts/wan2.2_text2video_14B_low_quanto_mbf16_int8.safetensors" in files
    module = current.record("ckpts/wan2.1_Vace_14B_module_quanto_mbf16_int8.safetensors")
    assert module.role == "module"
    assert {"vace_14B", "vace_14B_2_2", "vace_multitalk_14B"} <= module.needed_by


def test_source_and_source2_drop_the_main_files(current):
    files = needed(current, "ovi_1_1_fastwan")
    assert not [f for f in files if "ovi1_1_audio" in f or "ovi1_1_video" in f]
    assert "loras/wan_5B/Wan2_2_5B_FastWanFullAttn_lora_rank_128_bf16.safetensors" in files
    video = current.record("ckpts/wan2.2_ovi1_1_video_10B_quanto_bf16_int8.safetensors")
    assert "ovi_1_1_fastwan" in video.listed_by
    assert "ovi_1_1_fastwan" not in video.needed_by
    assert "ovi_1_1" in video.needed_by


def test_dir_suffix_places_the_file_in_that_ckpts_folder(current):
    record = current.record("ckpts/chatterbox/t3_mtl23ls_v2.safetensors")
    assert record.url.endswith("/t3_mtl23ls_v2.safetensors")
    assert record.path == "t3_mtl23ls_v2.safetensors"
    assert record.needed_by == {"chatterbox"}


def test_on_demand_loras_are_an_optional_feature_in_the_lora_folder(current):
    # ltx2.py loads system LoRAs by URL, so they land in the model's LoRA folder (loras/ltx2/)
    assert current.record("ckpts/ltx-2.3-22b-distilled-lora-384-1.1.safetensors") is None
    record = current.record("loras/ltx2/ltx-2.3-22b-distilled-lora-384-1.1.safetensors")
    assert record.role == "feature"
    assert record.feature == "ltx2-system-loras"
    assert record.needed_by == set()
    assert "ltx2_22B_1_1" in record.listed_by


def test_module_by_reference_string(current):
    files = needed(current, "ltx2_22B_1_1_edit_anything")
    assert any("edit_anything_reference" in f and f.endswith(".module.safetensors") for f in files)


def test_core_files_are_needed_by_every_model(current):
    core = [r for r in current.records if r.role == "core"]
    assert {r.dest for r in core} >= {"ckpts/mask/matanyone.safetensors", "ckpts/pose/yolox_l.onnx"}
    for record in core:
        assert record.needed_by == set(current.models)


def test_same_file_in_two_repos_is_one_record_with_a_mirror(current):
    record = current.record("ckpts/det_align/detface.pt")
    assert record.mirrors
    assert record.repo in ("DeepBeepMeep/HunyuanVideo", "DeepBeepMeep/Wan2.1")


def test_text_encoder_from_json_overrides_code(current):
    files = needed(current, "kiwi_edit")
    assert (
        "ckpts/kiwi_mllm_encoder_instruct_reference/"
        "instruct_reference_mllm_encoder_quanto_bf16_int8.safetensors"
    ) in files


def test_oldest_commit_quirks_are_reported_not_fatal(tmp_path):
    catalog = load_catalog(real_install(tmp_path, "eb92f0c"))
    kontext = catalog.models["flux_dev_kontext"]
    assert any("local path" in p and "c:/temp" in p for p in kontext.problems)
    vace = catalog.models["vace_14B"]
    assert any("names itself" in p for p in vace.problems)
    # the rest of the model is still listed
    assert needed(catalog, "vace_14B")
    assert any("flux_dev_kontext" in n for n in catalog.notices)


def test_json_export_has_the_contract_keys(current):
    record = current.record("ckpts/umt5-xxl/models_t5_umt5-xxl-enc-quanto_int8.safetensors")
    data = Listed(record, presence_of(current, [record])[record.dest].status).to_json()
    assert set(data) >= {
        "dest",
        "url",
        "repo",
        "revision",
        "path",
        "role",
        "needed_by",
        "listed_by",
        "size",
        "sha256",
        "status",
    }
    assert data["repo"] == "DeepBeepMeep/Wan2.1"
    assert data["path"] == "umt5-xxl/models_t5_umt5-xxl-enc-quanto_int8.safetensors"
    assert data["role"] == "text_encoder"
    assert data["size"] is None and data["sha256"] is None
    assert data["needed_by"] == sorted(data["needed_by"])
    json.dumps(data)
