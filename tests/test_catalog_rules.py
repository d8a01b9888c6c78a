"""Each catalog rule against small installs of the project's own."""

from __future__ import annotations

import os

import pytest

from tests.wan2gp_fixtures import make_install, url
from wandown.catalog import load_catalog, presence_of
from wandown.catalog.codedefaults import CodeData, CodeDefaults, RepoFolder
from wandown.catalog.variants import pick_variant
from wandown.errors import CatalogError

R = "owner/repo"
MAIN = [
    url(R, "m_bf16.safetensors"),
    url(R, "m_quanto_bf16_int8.safetensors"),
    url(R, "m_quanto_fp16_int8.safetensors"),
    url(R, "m_fp8_e4m3fn.safetensors"),
]
CODE = CodeData(
    commit="test",
    models={
        "base": CodeDefaults(
            architecture="arch",
            lora_dir="loras/arch",
            text_encoder_urls=(
                url(R, "te/enc_bf16.safetensors"),
                url(R, "te/enc_quanto_bf16_int8.safetensors"),
            ),
            text_encoder_folder="te",
            repo_folders=(RepoFolder(R, "vae", None, ("vae.safetensors",)),),
        )
    },
    core=(RepoFolder("owner/core", "pose", None, ("pose.onnx",)),),
)


def catalog_of(tmp_path, defaults, finetunes=None, wgp_config=None):
    root = make_install(tmp_path / "Wan2GP", defaults, finetunes, wgp_config)
    return load_catalog(root, code=CODE)


def needed(catalog, model_id):
    return sorted(r.dest for r in catalog.records if model_id in r.needed_by and r.role != "core")


@pytest.mark.parametrize(
    ("quantization", "dtype", "expected"),
    [
        ("int8", "bf16", 1),
        ("int8", "fp16", 2),
        # the dtype preference applies to the fp8 + int8 union (wgp.py get_model_filename)
        ("fp8", "bf16", 1),
        ("fp8", "fp8-only", 3),
        ("bf16", "bf16", 0),
        ("", "bf16", 0),
    ],
)
def test_pick_variant(quantization, dtype, expected):
    assert pick_variant(MAIN, quantization, dtype) == MAIN[expected]


def test_pick_variant_falls_back_to_fp8_then_first():
    only_fp8 = [url(R, "a_bf16.safetensors"), url(R, "a_FP8.safetensors")]
    assert pick_variant(only_fp8, "int8", "bf16") == only_fp8[1]
    plain = [url(R, "a.safetensors"), url(R, "b.safetensors")]
    assert pick_variant(plain, "int8", "bf16") == plain[0]
    assert pick_variant([], "int8", "bf16") is None
    # "mbf16" counts as bf16
    mixed = [url(R, "x_quanto_mfp16_int8.sft"), url(R, "x_quanto_mbf16_int8.sft")]
    assert pick_variant(mixed, "int8", "bf16") == mixed[1]


def test_code_defaults_fall_under_the_json_and_by_architecture(tmp_path):
    catalog = catalog_of(
        tmp_path,
        {
            "base": {"architecture": "arch", "URLs": MAIN},
            "cousin": {"architecture": "arch", "URLs": "base"},
            "stranger": {"architecture": "unknown", "URLs": [url(R, "s.safetensors")]},
        },
    )
    assert catalog.models["cousin"].code_defaults_from == "base"
    assert (
        needed(catalog, "cousin")
        == needed(catalog, "base")
        == [
            "ckpts/m_quanto_bf16_int8.safetensors",
            "ckpts/te/enc_quanto_bf16_int8.safetensors",
            "ckpts/vae/vae.safetensors",
        ]
    )
    assert catalog.models["stranger"].json_only
    assert needed(catalog, "stranger") == ["ckpts/s.safetensors"]
    assert any("stranger" in n and "JSON alone" in n for n in catalog.notices)
    core = catalog.record("ckpts/pose/pose.onnx")
    assert core.needed_by == {"base", "cousin", "stranger"} and core.role == "core"


def test_wgp_config_settings_choose_the_variants(tmp_path):
    catalog = catalog_of(
        tmp_path,
        {"base": {"architecture": "arch", "URLs": MAIN}},
        wgp_config={
            "transformer_quantization": "fp8",
            "text_encoder_quantization": "bf16",
            "transformer_dtype_policy": "fp16",
        },
    )
    assert needed(catalog, "base") == [
        "ckpts/m_quanto_fp16_int8.safetensors",
        "ckpts/te/enc_bf16.safetensors",
        "ckpts/vae/vae.safetensors",
    ]


def test_finetune_overrides_keys_one_by_one(tmp_path):
    catalog = catalog_of(
        tmp_path,
        {
            "base": {
                "architecture": "arch",
                "name": "Base",
                "URLs": MAIN,
                "preload_URLs": [url(R, "pre.safetensors")],
            }
        },
        finetunes={
            "base": {"URLs": [url(R, "tuned.safetensors")]},
            "mine": {"architecture": "arch", "URLs": "base", "loras": [url(R, "l.safetensors")]},
        },
    )
    assert catalog.models["base"].name == "Base"
    assert "ckpts/tuned.safetensors" in needed(catalog, "base")
    assert "ckpts/pre.safetensors" in needed(catalog, "base")
    assert "ckpts/tuned.safetensors" in needed(catalog, "mine")
    assert "loras/arch/l.safetensors" in needed(catalog, "mine")


def test_reference_cycle_and_dangling_reference_are_reported(tmp_path):
    catalog = catalog_of(
        tmp_path,
        {
            "a": {"architecture": "arch", "URLs": "b"},
            "b": {"architecture": "arch", "URLs": "a"},
            "c": {"architecture": "arch", "URLs": MAIN, "loras": "nowhere"},
        },
    )
    assert any("cycle" in p and "a -> b -> a" in p for p in catalog.models["a"].problems)
    assert any("dangling" in p and "nowhere" in p for p in catalog.models["c"].problems)
    # the rest of each model is still there
    assert "ckpts/m_quanto_bf16_int8.safetensors" in needed(catalog, "c")
    assert "ckpts/te/enc_quanto_bf16_int8.safetensors" in needed(catalog, "a")


def test_reference_chain_deeper_than_ten_is_refused(tmp_path):
    chain = {f"m{i}": {"architecture": "arch", "URLs": f"m{i + 1}"} for i in range(12)}
    chain["m12"] = {"architecture": "arch", "URLs": MAIN}
    catalog = catalog_of(tmp_path, chain)
    assert any("deeper than 10" in p for p in catalog.models["m0"].problems)
    assert "ckpts/m_quanto_bf16_int8.safetensors" in needed(catalog, "m5")


def test_modules_in_all_their_forms(tmp_path):
    catalog = catalog_of(
        tmp_path,
        {
            "mod": {
                "architecture": "arch",
                "modules": [[url(R, "mod_bf16.sft"), url(R, "mod_int8.sft")]],
            },
            "multi": {
                "architecture": "arch",
                "modules": {
                    "alpha": [url(R, "alpha.sft")],
                    "beta": {"URLs": [url(R, "beta1.sft")], "URLs2": [url(R, "beta2.sft")]},
                },
            },
            "user": {
                "architecture": "arch",
                "URLs": MAIN,
                "modules": [
                    "mod",
                    "multi#alpha",
                    "multi#beta",
                    {"URLs": [url(R, "d1.sft")], "URLs2": [url(R, "d2.sft")]},
                ],
            },
            "same": {"architecture": "arch", "modules": "user"},
            "bad": {"architecture": "arch", "modules": ["ghost", "multi#gamma"]},
        },
    )
    files = needed(catalog, "user")
    for name in ("mod_int8.sft", "alpha.sft", "beta1.sft", "beta2.sft", "d1.sft", "d2.sft"):
        assert f"ckpts/{name}" in files
    assert "ckpts/mod_bf16.sft" not in files
    assert catalog.record("ckpts/alpha.sft").role == "module"
    assert "ckpts/beta2.sft" in needed(catalog, "same")
    problems = catalog.models["bad"].problems
    assert any("unknown module id 'ghost'" in p for p in problems)
    assert any("gamma" in p for p in problems)


def test_suffixes_lora_folders_and_hostile_destinations(tmp_path):
    catalog = catalog_of(
        tmp_path,
        {
            "base": {
                "architecture": "arch",
                "URLs": [url(R, "deep/folder/main.sft|sub")],
                "preload_URLs": [
                    url(R, "p.sft|%lora_dir"),
                    url(R, "evil.sft|../../etc"),
                    url(R, "abs.sft|/tmp"),
                ],
                "loras": [url(R, "l1.sft"), url(R, "l2.sft|styles"), url(R, "l3.sft|../../x")],
                "VAE_URLs": url(R, "vae/v.sft"),
            }
        },
    )
    files = needed(catalog, "base")
    assert "ckpts/sub/main.sft" in files
    assert catalog.record("ckpts/sub/main.sft").path == "deep/folder/main.sft"
    assert "loras/arch/p.sft" in files
    assert "loras/arch/l1.sft" in files
    assert "loras/arch/styles/l2.sft" in files
    assert "ckpts/v.sft" in files
    assert not [f for f in files if "evil" in f or "abs" in f or "l3" in f]
    refused = [p for p in catalog.models["base"].problems if "refused" in p]
    assert len(refused) == 3


def test_local_paths_are_not_downloaded(tmp_path):
    catalog = catalog_of(
        tmp_path,
        {"base": {"architecture": "arch", "URLs": ["c:/temp/x_int8.sft", url(R, "y.sft")]}},
    )
    assert "ckpts/y.sft" not in needed(catalog, "base")
    assert any("local path" in p for p in catalog.models["base"].problems)


def test_broken_definitions_are_reported_and_skipped(tmp_path):
    root = make_install(
        tmp_path / "Wan2GP",
        {
            "good": {"architecture": "arch", "URLs": MAIN},
            "broken": "{not json",
            "nomodel": '{"name": 1}',
            "list": "[1, 2]",
        },
    )
    (root / "defaults" / "binary.json").write_bytes(b"\xff\xfe\x00")
    catalog = load_catalog(root, code=CODE)
    assert set(catalog.models) == {"good"}
    assert any("broken.json" in n and "line 1" in n for n in catalog.notices)
    assert any("nomodel.json" in n for n in catalog.notices)
    assert any("binary.json" in n for n in catalog.notices)


def test_broken_wgp_config_falls_back_to_defaults(tmp_path):
    root = make_install(tmp_path / "Wan2GP", {"base": {"architecture": "arch", "URLs": MAIN}})
    (root / "wgp_config.json").write_text("{oops")
    catalog = load_catalog(root, code=CODE)
    assert any("wgp_config.json" in n for n in catalog.notices)
    assert "ckpts/m_quanto_bf16_int8.safetensors" in needed(catalog, "base")


def test_status_from_every_checkpoint_root(tmp_path):
    root = make_install(
        tmp_path / "Wan2GP",
        {"base": {"architecture": "arch", "URLs": MAIN, "loras": [url(R, "l.sft")]}},
        wgp_config={"checkpoints_paths": ["ckpts", "models", "."]},
    )
    (root / "models").mkdir()
    (root / "models" / "m_quanto_bf16_int8.safetensors").write_bytes(b"x")
    (root / "te").mkdir()
    target = tmp_path / "hubfile"
    target.write_bytes(b"y")
    os.symlink(target, root / "te" / "enc_quanto_bf16_int8.safetensors")
    (root / "ckpts" / "vae").mkdir()
    os.symlink(tmp_path / "gone", root / "ckpts" / "vae" / "vae.safetensors")
    (root / "loras" / "arch").mkdir(parents=True)
    (root / "loras" / "arch" / "l.sft").write_bytes(b"z")
    catalog = load_catalog(root, code=CODE)
    status = {dest: presence.status for dest, presence in presence_of(catalog).items()}
    assert status["ckpts/m_quanto_bf16_int8.safetensors"] == "exists"
    # te/ exists only in the root ".": Wan2GP puts (and finds) the text encoder there
    assert status["te/enc_quanto_bf16_int8.safetensors"] == "linked"
    assert "ckpts/te/enc_quanto_bf16_int8.safetensors" not in status
    assert status["ckpts/vae/vae.safetensors"] == "missing"
    assert status["loras/arch/l.sft"] == "exists"
    assert status["ckpts/m_bf16.safetensors"] == "missing"


def test_a_first_checkpoints_path_outside_wan2gp_gets_the_new_files(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    root = make_install(
        tmp_path / "Wan2GP",
        {"base": {"architecture": "arch", "URLs": MAIN}},
        wgp_config={"checkpoints_paths": [str(elsewhere), "ckpts"], "loras_root": "../L"},
    )
    catalog = load_catalog(root, code=CODE)
    assert not catalog.notices
    assert f"{elsewhere}/m_quanto_bf16_int8.safetensors" in needed(catalog, "base")
    assert f"{elsewhere}/te/enc_quanto_bf16_int8.safetensors" in needed(catalog, "base")
    (root / "ckpts" / "te").mkdir()  # Wan2GP puts a text encoder where its folder already is
    (root / "ckpts" / "m_quanto_bf16_int8.safetensors").write_bytes(b"x")
    catalog = load_catalog(root, code=CODE)
    assert "ckpts/te/enc_quanto_bf16_int8.safetensors" in needed(catalog, "base")
    presence = presence_of(catalog)
    assert presence[f"{elsewhere}/m_quanto_bf16_int8.safetensors"].status == "exists"


def test_a_checkpoints_path_that_names_no_folder_sends_new_files_to_a_usable_root(tmp_path):
    root = make_install(
        tmp_path / "Wan2GP",
        {"base": {"architecture": "arch", "URLs": MAIN}},
        wgp_config={"checkpoints_paths": ["/" + "x" * 300, "models"]},
    )
    catalog = load_catalog(root, code=CODE)
    assert any("cannot be used" in n for n in catalog.notices)
    assert any("'ckpts' is not one of the checkpoints_paths" in n for n in catalog.notices)
    assert "models/m_quanto_bf16_int8.safetensors" in needed(catalog, "base")


def test_missing_install_is_a_clear_error(tmp_path):
    with pytest.raises(CatalogError, match="defaults"):
        load_catalog(tmp_path / "nowhere")


def test_module_sources_a_url_string_and_a_half_dict_module(tmp_path):
    catalog = catalog_of(
        tmp_path,
        {
            "local": {
                "architecture": "arch",
                "URLs": MAIN,
                "modules": [{"URLs": [url(R, "p1.sft")], "URLs2": [url(R, "p2.sft")]}],
                "module_source2": "/models/p2.sft",
            },
            "half": {"architecture": "arch", "modules": [{"URLs": [url(R, "h1.sft")]}]},
            "string": {"architecture": "arch", "URLs": url(R, "single.sft")},
        },
    )
    assert "ckpts/p1.sft" in needed(catalog, "local")
    assert "ckpts/p2.sft" not in needed(catalog, "local")
    assert "local" in catalog.record("ckpts/p2.sft").listed_by
    assert any("both URLs and URLs2" in p for p in catalog.models["half"].problems)
    # Wan2GP reads a string in URLs as a model id, never as a URL
    assert any("dangling" in p for p in catalog.models["string"].problems)
    assert catalog.record("ckpts/single.sft") is None


def test_text_encoder_suffix_stays_inside_its_folder(tmp_path):
    catalog = catalog_of(
        tmp_path,
        {"base": {"architecture": "arch", "text_encoder_URLs": [url(R, "enc_int8.sft|sub")]}},
    )
    assert "ckpts/te/sub/enc_int8.sft" in needed(catalog, "base")
