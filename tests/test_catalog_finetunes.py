"""User finetunes held to Wan2GP's own code: one per architecture of 8681e9f, and same-id ones.

Wan2GP's side runs its real family handlers over the install's definitions (wgp.py's merge, then
``query_model_files`` with each merged definition; tests/wan2gp_handlers.py) and its real
``load_models``. wandown's side is the real program path: learning over a copy of the source tree
holding the finetunes, then the catalog under the profile's settings. Without learning (the
shipped data), what a finetune's own keys change cannot be known: a notice says so.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.test_catalog_settings import (
    PROFILES,
    differences,
    generated_profile,
    wandown_fetches,
)
from tests.wan2gp_finetunes import (
    KIWI_REFERENCE_ONLY,
    LTX2_VAE,
    hand_made_finetunes,
    new_id_finetunes,
    write_finetunes,
)
from tests.wan2gp_fixtures import SHARED
from tests.wan2gp_reference import SRC, Wan2GP, real_handlers
from wandown import cli, learn
from wandown.catalog.codedefaults import shipped

pytestmark = pytest.mark.skipif(
    not (SRC / "wgp.py").is_file(), reason="needs ../shared/wan2gp/8681e9f/src (Wan2GP's code)"
)
DEFAULTS = SHARED / "8681e9f" / "defaults"


def finetunes() -> dict[str, dict]:
    return {**new_id_finetunes(DEFAULTS), **hand_made_finetunes(DEFAULTS)}


def make_install(root: Path, with_source: bool = False) -> Path:
    """A Wan2GP folder: 8681e9f's defaults (linked), the finetunes, maybe a copy of its code."""
    if with_source:
        shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__"))
    root.mkdir(exist_ok=True)
    os.symlink(DEFAULTS, root / "defaults")
    (root / "ckpts").mkdir()
    write_finetunes(root, finetunes())
    return root


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of 8681e9f's tree (its code, its defaults, the finetunes): learning reads it."""
    return make_install(tmp_path_factory.mktemp("learned") / "Wan2GP", with_source=True)


@pytest.fixture(scope="module")
def learned(source_copy: Path) -> learn.Learned:
    """wandown's learning over the copy of the tree holding the finetunes (once, ~3 s)."""
    root = source_copy
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDOWN_CACHE_DIR", str(root.parent / "cache"))
        learn.forget()
        try:
            return learn.learned_code(root)
        finally:
            learn.forget()


_handlers: dict[str, dict[str, dict]] = {}


def wan2gp_fetches(root: Path, wgp_config: dict, bf16: bool) -> dict[str, set]:
    """Return what Wan2GP's own code fetches for every model of root, its finetunes too."""
    lora_root = wgp_config.get("loras_root") or "loras"
    if lora_root not in _handlers:
        _handlers[lora_root] = real_handlers(root, lora_root)
    answer = _handlers[lora_root]
    models_def = {model_id: facts["model_def"] for model_id, facts in answer.items()}
    config = {**wgp_config, "_bf16_supported": bf16}
    wan2gp = Wan2GP(models_def, shipped(), config, real=answer)
    return {model_id: wan2gp.fetched_by(model_id) for model_id in sorted(answer)}


@pytest.fixture
def install(tmp_path, monkeypatch):
    root = make_install(tmp_path / "Wan2GP")
    monkeypatch.chdir(root)  # Wan2GP's roots are relative to its working folder
    return root


PROFILE_NAMES = ["defaults", "pre-bf16 GPU, bf16 policy, INT8 in capitals, bf16 text encoder",
                 "loras_root elsewhere, files lying in roots",
                 "text encoder folders in the second root"]  # fmt: skip
CASES = [*PROFILE_NAMES, *(f"generated {seed}" for seed in (3, 9))]


def profile_of(case: str) -> tuple:
    if case.startswith("generated "):
        return generated_profile(int(case.split()[1]))
    return PROFILES[case]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_every_finetune_fetches_what_wan2gp_fetches(install, learned, case):
    assert learned.learned and not learned.notices
    wgp_config, bf16, layout = profile_of(case)
    (install / "wgp_config.json").write_text(json.dumps(wgp_config))
    layout(install)
    theirs = wan2gp_fetches(install, wgp_config, bf16)
    assert {f"myft_{a}" for a in ("t2v", "kiwi_edit", "ltx2_22B")} <= set(theirs)
    assert set(theirs) == {p.stem for p in DEFAULTS.glob("*.json")} | set(finetunes())
    ours = wandown_fetches(install, bf16, code=learned.code)
    assert differences(ours, theirs) == {}


def names(fetched: set) -> set[str]:
    return {os.path.relpath(place) for place, _ in fetched}


def test_a_finetune_gets_the_files_its_own_keys_choose(install, learned):
    """Kiwi-Edit's folders follow a new finetune's URL, LTX-2's VAE its own key; a same-id
    override keeps the keys the handler computed for the default (wgp.py ~3264)."""
    (install / "wgp_config.json").write_text("{}")
    ours = wandown_fetches(install, True, code=learned.code)["fetched"]
    kiwi = names(ours["my_kiwi_reference_only"])
    assert "ckpts/kiwi_mllm_encoder_reference_only/tokenizer.json" in kiwi
    assert "ckpts/wan2.2_kiwi_edit_5B_reference_only_ref_embedder.safetensors" in kiwi
    assert KIWI_REFERENCE_ONLY in {url for _, url in ours["my_kiwi_reference_only"]}
    overridden = names(ours["kiwi_edit"])
    assert "ckpts/my_kiwi_5B_reference_only_bf16.safetensors" in overridden
    assert "ckpts/kiwi_mllm_encoder_instruct_reference/tokenizer.json" in overridden
    assert not any("kiwi_mllm_encoder_reference_only" in n for n in overridden)
    assert f"ckpts/{LTX2_VAE}" in names(ours["my_ltx2_own_vae"])
    assert f"ckpts/{LTX2_VAE}" in names(ours["ltx2_22B_distilled"])
    assert "loras/ltx2/ltx-2.3-22b-ic-lora-outpaint.safetensors" in names(ours["my_ltx2_old_style"])
    assert "ckpts/ltx-2.3-22b-ic-lora-outpaint.safetensors" in names(ours["ltx2_22B_1_1"])
    by_reference = names(ours["my_kiwi_by_reference"])
    assert "ckpts/kiwi_mllm_encoder_reference_only/vocab.json" in by_reference


def test_without_learning_a_finetune_borrows_its_architecture_and_says_so(install):
    """The shipped data knows the defaults' files only. A finetune loading a default's main files
    borrows that default's (another variant: right); what a finetune's own keys change in the
    handler's answer cannot be known (a new file's name, ltx2_video_vae_file, a key the handler
    reads that the borrowed default sets otherwise, a value the handler rewrites): those differ,
    and a notice says so."""
    (install / "wgp_config.json").write_text("{}")
    fallback = dataclasses.replace(shipped(), origin="shipped 8681e9f")  # as after a failure
    ours = wandown_fetches(install, True, code=fallback)
    found = differences(ours, wan2gp_fetches(install, {}, True))
    assert set(found) == {
        "my_kiwi_reference_only",  # Kiwi-Edit's folders from a new file's name
        "my_ltx2_own_vae",  # ltx2_video_vae_file
        "ltx2_22B_distilled",  # the same, in a same-id override
        "my_ltx2_old_style",  # the handler moves an old-style preload into the LoRA folder
        "myft_heartmula_oss_3b",  # RL's main files, the base's heartmula_codec_version
    }
    named = [n for n in ours["notices"] if "my_kiwi_reference_only (from kiwi_edit)" in n]
    assert len(named) == 1 and "may differ" in named[0], ours["notices"]
    assert "finetunes overriding flux, kiwi_edit, ltx2_22B_1_1, ltx2_22B_distilled" in named[0]


def test_learned_finetunes_need_no_notice(install, learned):
    (install / "wgp_config.json").write_text("{}")
    notices = wandown_fetches(install, True, code=learned.code)["notices"]
    assert not [n for n in notices if "finetune" in n], notices


def list_json(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    code = cli.main(
        ["--list", "--json", "--offline", "--hub-dir", "", "--wan2gp-dir", str(root / "ckpts"),
         "--config-file", str(root.parent / "wandown-config.json"), "--gpu-bf16", "yes"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    return {row["dest"]: row for row in json.loads(out)}, err


@pytest.mark.slow
def test_the_program_lists_a_learned_finetunes_own_files(source_copy, capsys):
    learn.forget()
    rows, err = list_json(source_copy, capsys)
    folder = "ckpts/kiwi_mllm_encoder_reference_only"
    needing = set(rows[f"{folder}/tokenizer.json"]["needed_by"])
    assert {"my_kiwi_reference_only", "my_kiwi_by_reference"} <= needing
    assert "kiwi_edit" not in needing  # a same-id override keeps the default's folder
    assert "my_ltx2_own_vae" in rows[f"ckpts/{LTX2_VAE}"]["needed_by"]
    assert "may differ" not in err and "could not learn" not in err


def test_the_program_says_which_finetunes_it_could_not_learn(install, capsys):
    """A Wan2GP whose code cannot be learned (a syntax error): the shipped data, and a notice."""
    (install / "wgp.py").write_text("family_handlers = [\n")
    learn.forget()
    rows, err = list_json(install, capsys)
    assert "could not learn Wan2GP's code" in err
    assert "my_kiwi_reference_only (from kiwi_edit)" in err and "may differ" in err
    borrowed = rows["ckpts/kiwi_mllm_encoder_instruct_only/tokenizer.json"]["needed_by"]
    assert "myft_kiwi_edit" in borrowed  # it loads kiwi_edit_instruct_only's main files


def test_a_catalog_without_wan2gp_code_borrows_quietly(install):
    """No wgp.py (a copied catalog, the demo): the shipped data is all there is to say."""
    (install / "wgp_config.json").write_text("{}")
    assert not [n for n in wandown_fetches(install, True)["notices"] if "finetune" in n]
