"""Learning Wan2GP's code-side facts from its own source: the real tree, small fake trees, the
cache, the fallback to the shipped data and the feature groups it yields."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest
from learn_fixtures import fake_wan2gp, tree_digest, url
from wan2gp_fixtures import SHARED, real_install

from wandown import cli, fsutil, learn
from wandown.catalog import load_catalog
from wandown.catalog.codedefaults import DATA_NAME
from wandown.learn import cache, runner

PROJECT = Path(__file__).resolve().parent.parent
REAL_SOURCE = SHARED / "8681e9f" / "src"
COMMIT = "8681e9f777f9f847f74a0bdefd13d5b9a6efe12d"


@pytest.fixture(autouse=True)
def _fresh_memory():
    learn.forget()
    yield
    learn.forget()


@pytest.fixture(scope="session")
def real_answer():
    """Learn the real 8681e9f source once for the whole session (about 3 s)."""
    if not (REAL_SOURCE / "wgp.py").is_file():
        pytest.skip("needs ../shared/wan2gp/8681e9f/src (Wan2GP's sources at 8681e9f)")
    before = tree_digest(SHARED / "8681e9f")
    answer = runner.run_child(REAL_SOURCE, SHARED / "8681e9f")
    return answer, before


def shipped_json() -> dict:
    text = resources.files("wandown.data").joinpath(DATA_NAME).read_text(encoding="utf-8")
    return json.loads(text)


def list_json(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[list, str]:
    code = cli.main(
        ["--list", "--json", "--offline", "--hub-dir", "", "--wan2gp-dir", str(root / "ckpts"),
         "--config-file", str(root.parent / "wandown-config.json"),
         "--gpu-bf16", "yes", *extra]  # no nvidia-smi: the only child is the learner
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


# -- the real Wan2GP ----------------------------------------------------------------------------


@pytest.mark.slow
def test_learning_the_real_source_gives_the_shipped_data(real_answer):
    answer, _ = real_answer
    assert answer["failed_families"] == {}
    assert answer["notices"] == []
    assert len(answer["models"]) == 217
    assert learn.to_data(answer, COMMIT) == shipped_json()


def test_learning_leaves_the_real_tree_exactly_as_it_was(real_answer):
    _, before = real_answer
    assert tree_digest(SHARED / "8681e9f") == before
    assert not list((SHARED / "8681e9f").rglob("__pycache__"))


def test_the_real_source_names_its_run_time_features(real_answer):
    features = real_answer[0]["features"]
    for name in ("mmaudio", "prismaudio", "flashvsr", "rife", "seedvr2", "pid", "chain-of-zoom",
                 "deepy", "speaker-separation", "prompt-enhancer/florence2"):  # fmt: skip
        assert name in features, name
    mmaudio = {f[0] for group in features["mmaudio"] for f in group["folders"]}
    assert "DFN5B-CLIP-ViT-H-14-378" in mmaudio
    sherpa = {f[0] for group in features["speaker-separation"] for f in group["folders"]}
    assert "sherpa" in sherpa


def test_the_real_handlers_inject_keys(real_answer):
    models = real_answer[0]["models"]
    krea = models["krea2_turbo_edit"]["injected"]["preload_URLs"]
    assert krea == [url("DeepBeepMeep/krea-2",
                        "Qwen3-VL-4B-Instruct/Qwen3-VL-4B-Instruct_vision_bf16.safetensors")
                    + "|Qwen3-VL-4B-Instruct"]  # fmt: skip
    assert "PrunaAI VAE" in models["ltx2_22B"]["config_choices"]
    assert models["ltx2_22B"]["injected"]["ltx2_lora_distilled"].endswith(".safetensors")


def test_regenerating_the_data_writes_the_same_file(tmp_path, real_answer, monkeypatch):
    from wandown.learn import __main__ as command
    from wandown.learn.__main__ import main

    asked = []

    def learned_once(source, definitions):  # the session already ran the child on this tree
        asked.append((source, definitions))
        return real_answer[0]

    monkeypatch.setattr(command, "run_child", learned_once)
    target = tmp_path / "code_defaults.json"
    args = ["--write-data", str(REAL_SOURCE), "--commit", COMMIT, "--output", str(target)]
    assert main(args) == 0
    assert asked == [(REAL_SOURCE.resolve(), (SHARED / "8681e9f").resolve())]
    assert json.loads(target.read_text()) == shipped_json()


def test_regenerating_from_a_folder_without_wan2gp_is_refused(tmp_path, capsys):
    from wandown.learn.__main__ import main

    assert main(["--write-data", str(tmp_path), "--output", str(tmp_path / "x.json")]) == 2
    assert "holds no wgp.py" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


# -- small fake trees ---------------------------------------------------------------------------


def test_a_fake_tree_is_learned_through_the_cli(tmp_path, capsys):
    root = fake_wan2gp(tmp_path / "Wan2GP")
    before = tree_digest(root)
    files, err = list_json(root, capsys, "--all-variants")
    by_dest = {f["dest"]: f for f in files}
    # the handler picks its tokenizer folder from the model's own URL, finetune included
    assert by_dest["ckpts/small_tok/tokenizer.json"]["needed_by"] == ["video_edit", "video_small"]
    assert by_dest["ckpts/big_tok/tokenizer.json"]["needed_by"] == ["video_big_ft"]
    # injected keys: a text encoder, and a preload only the edit architecture gets
    assert "video_big_ft" in by_dest["ckpts/enc/enc_bf16.safetensors"]["needed_by"]
    assert by_dest["ckpts/enc/vision.safetensors"]["needed_by"] == ["video_edit"]
    # a JSON value the handler rewrites: an old-style LoRA preload goes to the LoRA folder
    assert by_dest["loras/video/old_style_lora.safetensors"]["needed_by"] == ["video_small"]
    assert "ckpts/old_style_lora.safetensors" not in by_dest
    # a recorded Hub call made by the handler is a learned file, not a connection
    assert by_dest["ckpts/bpe/merges.txt"]["role"] == "repo_file"
    # the plugin's own definition and handler
    assert by_dest["ckpts/plug/p.json"]["needed_by"] == ["plugged_model"]
    assert by_dest["ckpts/plugged_bf16.safetensors"]["role"] == "main"
    # run-time features and model-config choices: named groups, needed by nobody
    assert by_dest["ckpts/whisper/w.bin"]["role"] == "feature"
    assert by_dest["ckpts/whisper/w.bin"]["feature"] == "deepy"
    assert by_dest["ckpts/fast_vae.safetensors"]["feature"] == "config/video_big_ft/fast-vae"
    assert by_dest["ckpts/fast_vae.safetensors"]["needed_by"] == []
    assert by_dest["ckpts/pose/pose.onnx"]["role"] == "core"
    assert "could not learn" not in err
    assert tree_digest(root) == before
    assert load_catalog(root, learn.learned_code(root).code).code_origin == "learned"


def test_a_second_start_uses_the_cache_and_starts_no_child(tmp_path, capsys, monkeypatch):
    root = fake_wan2gp(tmp_path / "Wan2GP")
    first, _ = list_json(root, capsys)
    assert cache.cache_path(root).is_file()
    learn.forget()

    def no_child(*args, **kwargs):
        raise AssertionError("the child was started again")

    monkeypatch.setattr(runner.subprocess, "Popen", no_child)
    second, err = list_json(root, capsys)
    assert second == first
    assert "could not learn" not in err


def counting_digests(monkeypatch) -> list[Path]:
    """Record every file the cache reads whole to hash it."""
    hashed: list[Path] = []
    digest = cache._digest

    def counted(path: Path) -> str:
        hashed.append(path)
        return digest(path)

    monkeypatch.setattr(cache, "_digest", counted)
    return hashed


def test_a_second_start_trusts_unchanged_files_by_their_stat(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cache, "RACY_NS", 0)  # the fixture's files are seconds old at most
    root = fake_wan2gp(tmp_path / "Wan2GP")
    first, _ = list_json(root, capsys)
    learn.forget()
    hashed = counting_digests(monkeypatch)
    second, _ = list_json(root, capsys)
    assert second == first
    assert hashed == []  # the learning cache's lookup read no source file whole


def test_a_fresh_file_is_hashed_until_it_is_old_enough_to_trust(tmp_path, capsys, monkeypatch):
    root = fake_wan2gp(tmp_path / "Wan2GP")
    list_json(root, capsys)
    learn.forget()
    hashed = counting_digests(monkeypatch)
    list_json(root, capsys)
    assert root / "wgp.py" in hashed  # written just now: its mtime may not tell a change yet


def test_an_edit_keeping_size_and_mtime_is_still_learned_again(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cache, "RACY_NS", 0)
    root = fake_wan2gp(tmp_path / "Wan2GP")
    list_json(root, capsys)
    handler = root / "models" / "video" / "video_handler.py"
    before = handler.stat()
    time.sleep(0.02)  # past the kernel's coarse clock tick, so the ctime moves
    handler.write_text(handler.read_text().replace('"big_tok"', '"bog_tok"'))
    os.utime(handler, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert handler.stat().st_size == before.st_size
    learn.forget()
    files, _ = list_json(root, capsys)
    assert "ckpts/bog_tok/tokenizer.json" in {f["dest"] for f in files}


def test_a_changed_source_file_is_learned_again(tmp_path, capsys):
    root = fake_wan2gp(tmp_path / "Wan2GP")
    list_json(root, capsys)
    handler = root / "models" / "video" / "video_handler.py"
    handler.write_text(handler.read_text().replace('"big_tok"', '"huge_tok"'))
    learn.forget()
    files, _ = list_json(root, capsys)
    assert "ckpts/huge_tok/tokenizer.json" in {f["dest"] for f in files}


def test_a_reload_of_an_unchanged_wan2gp_neither_learns_nor_warns_again(
    tmp_path, capsys, monkeypatch
):
    root = fake_wan2gp(tmp_path / "Wan2GP", broken="import")  # a family that warns
    first, err = list_json(root, capsys)
    assert "could not learn Wan2GP's model family" in err

    def no_child(*args, **kwargs):
        raise AssertionError("the child was started again")

    monkeypatch.setattr(runner.subprocess, "Popen", no_child)
    again, err = list_json(root, capsys)  # the same process: what a reload (`r`) does
    assert again == first
    assert "could not learn" not in err


def test_a_wan2gp_updated_under_a_running_wandown_is_learned_again(tmp_path, capsys):
    root = fake_wan2gp(tmp_path / "Wan2GP")
    files, _ = list_json(root, capsys)
    assert "ckpts/big_tok/tokenizer.json" in {f["dest"] for f in files}
    handler = root / "models" / "video" / "video_handler.py"
    handler.write_text(handler.read_text().replace('"big_tok"', '"huge_tok"'))
    files, _ = list_json(root, capsys)  # no forget(): the same process, as on a reload
    dests = {f["dest"] for f in files}
    assert "ckpts/huge_tok/tokenizer.json" in dests
    assert "ckpts/big_tok/tokenizer.json" not in dests


def test_where_the_cache_cannot_be_written_a_reload_still_learns_only_once(tmp_path, monkeypatch):
    root = fake_wan2gp(tmp_path / "Wan2GP", broken="import")
    children = []
    run_child = learn.run_child

    def counted(*args, **kwargs):
        children.append(1)
        return run_child(*args, **kwargs)

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(learn, "run_child", counted)
    monkeypatch.setattr(fsutil, "atomic_write_json", read_only)  # every cache write fails
    first = learn.learned_code(root)
    assert first.learned and first.notices
    for _ in range(2):  # reloads
        again = learn.learned_code(root)
        assert again.code == first.code and again.notices == ()
    assert children == [1]


def test_a_wgp_py_that_appears_later_is_learned_on_reload(tmp_path, capsys):
    root = fake_wan2gp(tmp_path / "Wan2GP")
    (root / "wgp.py").rename(root / "wgp.py.away")
    assert not learn.learned_code(root).learned
    (root / "wgp.py.away").rename(root / "wgp.py")
    assert learn.learned_code(root).learned


@pytest.mark.parametrize("broken", ["import", "syntax"])
def test_a_family_that_fails_drops_only_itself(tmp_path, capsys, broken):
    root = fake_wan2gp(tmp_path / "Wan2GP", broken=broken)
    files, err = list_json(root, capsys)
    dests = {f["dest"] for f in files}
    assert "ckpts/small_tok/tokenizer.json" in dests  # the good family is still learned
    assert "ckpts/broken_bf16.safetensors" in dests  # the broken one keeps its JSON's files
    assert err.count("could not learn Wan2GP's model family models.broken.broken_handler") == 1
    assert not list(root.rglob("__pycache__"))


def test_a_tree_that_cannot_be_learned_falls_back_to_the_shipped_data(tmp_path, capsys):
    root = fake_wan2gp(tmp_path / "Wan2GP", broken="wgp")
    files, err = list_json(root, capsys)
    assert err.count("could not learn Wan2GP's code") == 1
    assert "shipped data (Wan2GP 8681e9f)" in err
    dests = {f["dest"] for f in files}
    assert "ckpts/small_tok/tokenizer.json" not in dests
    assert "ckpts/video_small_bf16.safetensors" in dests  # the JSON's own files stay
    learn.forget()
    assert load_catalog(root, learn.learned_code(root).code).code_origin == "shipped 8681e9f"


def test_a_slow_tree_is_given_up_at_the_time_limit(tmp_path, capsys, monkeypatch):
    slow = "import time\ntime.sleep(30)\n"
    root = fake_wan2gp(tmp_path / "Wan2GP", extra_handler=slow)
    monkeypatch.setenv(runner.TIMEOUT_VARIABLE, "1")
    files, err = list_json(root, capsys)
    assert "took longer than 1 s" in err
    assert files
    learn.forget()  # a second start on the same tree does not wait for the time limit again
    monkeypatch.setattr(runner.subprocess, "Popen", None)
    _, err = list_json(root, capsys)
    assert "took longer than 1 s; remembered from an earlier start" in err
    (root / "models" / "extra" / "extra_handler.py").write_text("# fixed\n")
    learn.forget()  # a changed tree is learned again
    monkeypatch.undo()
    _, err = list_json(root, capsys)
    assert "could not learn Wan2GP's code" not in err


def test_network_calls_are_refused_and_named(tmp_path):
    fetcher = (
        "import urllib.request\nimport requests\n"
        "try:\n    urllib.request.urlopen('http://127.0.0.1:9/x')\nexcept OSError:\n    pass\n"
        "try:\n    requests.get('https://huggingface.co/tester/x/resolve/main/y.bin')\n"
        "except OSError:\n    pass\n"
        "import subprocess\ntry:\n    subprocess.run(['git', 'ls-remote', 'https://x.invalid/r'])\n"
        "except OSError:\n    pass\n"
        "class family_handler:\n    @staticmethod\n    def query_supported_types():\n"
        "        return []\n"
    )
    root = fake_wan2gp(tmp_path / "Wan2GP", extra_handler=fetcher, with_plugin=False)
    answer = runner.run_child(root, root)
    urls = [call.get("url") for call in answer["recorded"]]
    assert "http://127.0.0.1:9/x" in urls
    assert "https://huggingface.co/tester/x/resolve/main/y.bin" in urls
    assert "connect" not in {call["call"] for call in answer["recorded"]}
    _, notices = learn.combine(answer, learn.shipped())
    assert any("tried to fetch http://127.0.0.1:9/x" in n for n in notices)
    assert any("tried to run 'git ls-remote https://x.invalid/r'" in n for n in notices)


def test_features_are_picked_by_name(tmp_path, capsys):
    root = fake_wan2gp(tmp_path / "Wan2GP")
    config = str(root.parent / "wandown-config.json")
    common = ["--offline", "--hub-dir", "", "--wan2gp-dir", str(root / "ckpts"),
              "--config-file", config]  # fmt: skip
    assert cli.main([*common, "--download", "feature:deepy", "--dry-run"]) == 0
    out, _ = capsys.readouterr()
    assert "ckpts/whisper/w.bin" in out
    assert "small_tok" not in out
    assert cli.main([*common, "--download", "feature:config/video_edit", "--dry-run"]) == 0
    out, _ = capsys.readouterr()
    assert "ckpts/fast_vae.safetensors" in out
    assert cli.main([*common, "--download", "feature:nope", "--dry-run"]) == 2
    _, err = capsys.readouterr()
    assert "'feature:nope' names no feature" in err
    assert "deepy" in err


def test_an_install_without_wgp_py_uses_the_shipped_data_quietly(tmp_path):
    root = tmp_path / "Wan2GP"
    (root / "defaults").mkdir(parents=True)
    learned = learn.learned_code(root)
    assert not learned.learned
    assert learned.notices == ()
    assert learned.code.models is learn.shipped().models
    assert learned.code.features == {}  # no Wan2GP code, so none of its run-time features


def test_shipped_features_become_catalog_rows(tmp_path):
    root = tmp_path / "Wan2GP"
    (root / "defaults").mkdir(parents=True)
    assert not [r for r in load_catalog(root).records if r.features]  # no Wan2GP code here
    (root / "wgp.py").write_text("family_handlers = []\n")
    catalog = load_catalog(root)
    mmaudio = [r for r in catalog.records if "mmaudio" in r.features]
    assert mmaudio
    assert all(not r.needed_by for r in mmaudio if r.role == "feature")


def test_the_real_program_learns_once_and_then_reads_its_cache(tmp_path):
    root = fake_wan2gp(tmp_path / "Wan2GP")
    env = {**os.environ, "WANDOWN_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, str(PROJECT / "wandown.py"), "--list", "--offline", "--hub-dir", ""]
    command += ["--wan2gp-dir", str(root / "ckpts"), "--config-file", str(tmp_path / "c.json")]

    def run() -> subprocess.CompletedProcess[str]:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        return done

    first = run()
    assert "small_tok" in first.stdout and "feature:deepy" in first.stdout
    # The answer itself, not the stat sidecar beside it (rewritten when a file was too new to
    # be trusted by its stat alone).
    cached = next(
        p for p in (tmp_path / "cache" / "learn").glob("*.json") if ".stats." not in p.name
    )
    stamp = cached.stat().st_mtime_ns
    second = run()
    assert second.stdout == first.stdout
    assert cached.stat().st_mtime_ns == stamp  # no child ran, so nothing was stored again


def test_a_folder_fetched_whole_is_named_not_silently_missing():
    snapshot = {"repo": "tester/x", "folders": [["whole_folder", None, []]]}
    answer = {"models": {}, "features": {"big": [snapshot]}, "core": [], "architectures": []}
    _, notices = learn.combine(answer, learn.shipped())
    assert notices == [
        "feature big: Wan2GP fetches the whole folder 'whole_folder' of tester/x; "
        "its files are not listed"
    ]


def test_writes_into_the_tree_are_refused_and_named(tmp_path, capsys):
    writer = (
        "import os\nfrom pathlib import Path\n"
        "here = Path(__file__).parent\n"
        "try:\n    (here / 'cache').mkdir()\nexcept OSError:\n    pass\n"
        "try:\n    open(here / 'state.json', 'w').write('{}')\nexcept OSError:\n    pass\n"
        "class family_handler:\n    @staticmethod\n    def query_supported_types():\n"
        "        return []\n"
    )
    root = fake_wan2gp(tmp_path / "Wan2GP", extra_handler=writer)
    before = tree_digest(root)
    files, err = list_json(root, capsys)
    assert tree_digest(root) == before
    assert "ckpts/small_tok/tokenizer.json" in {f["dest"] for f in files}
    assert "tried to write " in err and "state.json while wandown learned it; refused" in err
    assert "tried to mkdir " in err


def test_a_family_whose_query_fails_on_one_model_falls_back_as_a_whole(tmp_path):
    root = fake_wan2gp(tmp_path / "Wan2GP", with_plugin=False)
    handler = root / "models" / "video" / "video_handler.py"
    handler.write_text(
        handler.read_text().replace(
            "        first = os.path.basename", '        assert "big" not in str(model_def)\n'
            "        first = os.path.basename"
        )
    )  # fmt: skip
    answer = runner.run_child(root, root)
    assert "models.video.video_handler" in answer["failed_families"]
    assert not {"video_small", "video_edit", "video_big_ft"} & set(answer["models"])
    assert "video" not in answer["architectures"]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_interface_shows_learned_code_and_ticks_a_feature_whole(tmp_path):
    from tests.test_tui_terminal import Tmux, first_frame_drawn

    root = fake_wan2gp(tmp_path / "Wan2GP")
    command = [sys.executable, "-m", "wandown", "--offline", "--hub-dir", ""]
    command += ["--wan2gp-dir", str(root / "ckpts"), "--config-file", str(tmp_path / "c.json")]
    env = {"PYTHONPATH": str(PROJECT), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    session = Tmux(tmp_path, env=env, command=command)
    try:
        session.start(width=140)
        screen = session.wait_for(first_frame_drawn, timeout=15)
        assert "code learned" in screen.split("\n")[0]
        session.keys("/")
        session.literal("feature:deepy")
        session.keys("Enter")
        assert "feature:deepy" in session.wait_for("w.bin")
        session.keys("u", "c")
        screen = session.wait_for("missing files of feature deepy")
        assert "1 selected" in screen
        session.keys("Escape", "Escape")
        session.wait_for("wandown-exit=0")
    finally:
        session.kill()


def test_many_failed_families_make_one_notice():
    failed = {f"models.f{n}.handler": "ImportError: x" for n in range(5)}
    answer = {"models": {}, "failed_families": failed}
    _, notices = learn.combine(answer, learn.shipped())
    assert len(notices) == 1
    assert notices[0].startswith("could not learn 5 of Wan2GP's model families (models.f0.handler")


def test_the_ltx2_upsampler_feature_is_its_model_and_its_loras(tmp_path):
    if not (SHARED / "8681e9f" / "defaults").is_dir():
        pytest.skip("needs ../shared/wan2gp/8681e9f (the real definitions)")
    root = real_install(tmp_path, "8681e9f")
    (root / "wgp.py").write_text("family_handlers = []\n")  # a Wan2GP with code: features shown
    catalog = load_catalog(root)
    chosen = {r.dest for r in catalog.records if "ltx2-upsampler/ltx23" in r.features}
    needed = {r.dest for r in catalog.records if "ltx2_22B" in r.needed_by}
    assert needed < chosen
    assert chosen - needed == {
        "loras/ltx2/ltx-2.3-22b-distilled-lora-384-1.1.safetensors",
        "loras/ltx2/ltx-2.3-22b-ic-lora-pixel-spatial-upscaler-x2-0.9.safetensors",
    }


def test_reclaim_never_counts_a_feature_file_as_an_unused_variant(tmp_path):
    from wandown.reclaim.plan import places_of

    root = fake_wan2gp(tmp_path / "Wan2GP")
    catalog = load_catalog(root, learn.learned_code(root).code)
    feature_dests = {r.dest for r in catalog.records if r.features and not r.needed_by}
    assert "ckpts/whisper/w.bin" in feature_dests
    assert "ckpts/fast_vae.safetensors" in feature_dests  # a model-config choice's file
    assert not feature_dests & set(places_of(catalog).variants.values())
