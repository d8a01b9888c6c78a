"""The GPU's bf16 answer, wgp_config.json's reading, and the flags and keys that set them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.wan2gp_fixtures import SHARED, make_install, real_install, url
from wandown import cli, gpu
from wandown.catalog import load_catalog
from wandown.catalog.codedefaults import RepoFolder
from wandown.catalog.corefiles import core_folders
from wandown.catalog.wgpconfig import WanSettings, read_settings
from wandown.state import Header, StatusStore
from wandown.tui.render import header_text
from wandown.tui.view import UNICODE

PROJECT = Path(__file__).resolve().parent.parent
R = "owner/repo"
VARIANTS = [
    url(R, "m_mbf16.safetensors"),
    url(R, "m_quanto_mbf16_int8.safetensors"),
    url(R, "m_quanto_mfp16_int8.safetensors"),
]


def fake_nvidia_smi(folder: Path, script: str) -> Path:
    """Write an nvidia-smi that runs script (sh) into folder; return the folder for PATH."""
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(0o755)
    return folder


# -- detection ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "env", "bf16", "detail"),
    [
        ("8.6\n", {}, True, "8.6"),
        ("7.5\n", {}, False, "7.5"),
        ("8.9\n7.5\n", {"CUDA_VISIBLE_DEVICES": "1"}, False, "7.5"),
        ("7.0\n8.0\n", {"CUDA_VISIBLE_DEVICES": "GPU-1234"}, False, "7.0"),
        ("12.0\n", {"CUDA_VISIBLE_DEVICES": "5"}, True, "12.0"),
    ],
)
def test_compute_capability_decides_bf16(said, env, bf16, detail):
    answer = gpu.detect(lambda: said, env)
    assert (answer.bf16, answer.how, answer.detail) == (bf16, "nvidia-smi", detail)


@pytest.mark.parametrize("said", ["", "Field 'compute_cap' is not a valid field\n", "N/A\n"])
def test_an_answer_that_is_no_capability_is_unknown_and_assumes_bf16(said):
    answer = gpu.detect(lambda: said, {})
    assert answer.bf16 and answer.how == "unknown" and answer.label == "GPU unknown (bf16 assumed)"


def test_labels():
    assert gpu.GpuAnswer(False, "nvidia-smi", "7.5").label == "GPU fp16 (cc 7.5)"
    assert gpu.GpuAnswer(True, "nvidia-smi", "8.6").label == "GPU bf16 (cc 8.6)"
    assert gpu.gpu_answer(False).label == "GPU fp16 (set in config)"
    assert gpu.gpu_answer(True, run=lambda: "7.5").bf16  # a setting is never overruled


def test_the_real_nvidia_smi_call(tmp_path, monkeypatch):
    bin_dir = fake_nvidia_smi(tmp_path / "bin", 'echo "$@" > "$0.args"; echo 7.5')
    monkeypatch.setenv("PATH", str(bin_dir))
    assert gpu.run_nvidia_smi().strip() == "7.5"
    assert (bin_dir / "nvidia-smi.args").read_text().split() == list(gpu.QUERY[1:])
    fake_nvidia_smi(bin_dir, "echo 'NVIDIA-SMI has failed: no driver' >&2; exit 9")
    with pytest.raises(gpu.DetectionError, match="no driver"):
        gpu.run_nvidia_smi()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert gpu.detect().detail == "no nvidia-smi on PATH"


def test_a_hanging_nvidia_smi_is_given_up(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "PATH", str(fake_nvidia_smi(tmp_path / "bin", f"exec {shutil.which('sleep')} 30"))
    )
    monkeypatch.setattr(gpu, "TIMEOUT_S", 0.3)
    answer = gpu.detect()
    assert answer.how == "unknown" and "no answer" in answer.detail


# -- wgp_config.json ------------------------------------------------------------------------


def test_a_broken_wgp_config_is_named_left_alone_and_defaults_used(tmp_path):
    (tmp_path / "wgp_config.json").write_text('{"transformer_quantization": "fp8",\n  oops}')
    before = (tmp_path / "wgp_config.json").read_bytes()
    settings, notices = read_settings(tmp_path)
    assert settings == WanSettings()
    assert len(notices) == 1 and "wgp_config.json" in notices[0] and "line 2" in notices[0]
    assert "left as it is" in notices[0]
    assert (tmp_path / "wgp_config.json").read_bytes() == before


def test_bad_values_are_named_and_take_wan2gps_defaults(tmp_path):
    config = {
        "transformer_quantization": 8,
        "checkpoints_paths": "ckpts",
        "depth_anything_v2_variant": "huge",
        "loras_root": "",
        "matanyone_version": 2,
    }
    (tmp_path / "wgp_config.json").write_text(json.dumps(config))
    settings, notices = read_settings(tmp_path)
    assert settings.transformer_quantization == "int8"
    assert settings.checkpoints_paths == ("ckpts", ".")
    assert settings.depth_anything_v2_variant == "vitl"
    assert settings.loras_root == "loras"  # wgp.py: an empty loras_root is the default
    assert settings.matanyone_version == "v2"  # model_assets.py reads 2 as v2
    assert [n.split("'")[1] for n in notices] == [
        "transformer_quantization",
        "checkpoints_paths",
        "depth_anything_v2_variant",
    ]


def test_blank_checkpoint_paths_are_dropped_and_an_empty_list_is_the_default(tmp_path):
    (tmp_path / "wgp_config.json").write_text(json.dumps({"checkpoints_paths": [" a ", " "]}))
    assert read_settings(tmp_path)[0].checkpoints_paths == ("a",)
    (tmp_path / "wgp_config.json").write_text(json.dumps({"checkpoints_paths": []}))
    assert read_settings(tmp_path)[0].checkpoints_paths == ("ckpts", ".")


def test_the_config_folder_wins_and_falls_back_like_wan2gp(tmp_path):
    (tmp_path / "wgp_config.json").write_text(json.dumps({"transformer_quantization": "fp8"}))
    (tmp_path / "conf").mkdir()
    settings, notices = read_settings(tmp_path, Path("conf"))
    assert settings.transformer_quantization == "fp8" and not notices  # conf/ has none yet
    (tmp_path / "conf" / "wgp_config.json").write_text(json.dumps({"loras_root": "L"}))
    settings, _ = read_settings(tmp_path, tmp_path / "conf")
    assert (settings.transformer_quantization, settings.loras_root) == ("int8", "L")
    _, notices = read_settings(tmp_path, Path("missing"))
    assert "missing does not exist" in notices[0]


def test_core_files_follow_depth_and_matanyone():
    core = (
        RepoFolder("o/r", "depth", None, ("depth_anything_v2_vitl.pth",)),
        RepoFolder("o/r", "mask", None, ("sam.safetensors", "matanyone.safetensors", "c.json")),
        RepoFolder("o/r", "pose", None, ("p.onnx",)),
    )
    chosen = core_folders(core, WanSettings(depth_anything_v2_variant="vitb"))
    assert chosen[0].files == ("depth_anything_v2_vitb.pth",)
    assert chosen[1:] == core[1:]
    v2 = core_folders(core, WanSettings(matanyone_version="v2"))[1]
    assert v2.files == ("sam.safetensors", "matanyone2.safetensors", "c.json")
    sam3 = core_folders(core, WanSettings(matanyone_version="sam3"))[1]
    assert (sam3.source_folder, len(sam3.files)) == ("sam3", 2)


def test_an_architecture_dtype_key_beats_the_policy_and_text_encoders_follow_it(tmp_path):
    root = make_install(
        tmp_path / "Wan2GP",
        {
            "a": {"architecture": "a", "dtype": "fp16", "URLs": VARIANTS},
            "ft": {"architecture": "a", "URLs": VARIANTS, "text_encoder_URLs": VARIANTS},
        },
        wgp_config={"transformer_dtype_policy": "bf16"},
    )
    catalog = load_catalog(root)
    needed = sorted(r.dest for r in catalog.records if "ft" in r.needed_by and r.role != "core")
    assert needed == ["ckpts/m_quanto_mfp16_int8.safetensors"]


# -- the program ----------------------------------------------------------------------------


@pytest.fixture
def newcomer(tmp_path, monkeypatch):
    """A fresh Wan2GP with bf16 and fp16 variants, no wgp_config.json, wandown beside it."""
    make_install(tmp_path / "Wan2GP", {"t2v": {"architecture": "t2v", "URLs": VARIANTS}})
    work = tmp_path / "wandown"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return work


def listed(capsys, *args: str) -> tuple[list[dict], str]:
    assert cli.main(["--list", "--json", "--hub-dir", "", *args]) == 0
    out, err = capsys.readouterr()
    return json.loads(out), err


def needed_names(files: list[dict]) -> set[str]:
    return {f["dest"].rsplit("/", 1)[-1] for f in files if f["needed_by"] and f["role"] == "main"}


def test_a_pre_bf16_gpu_gets_the_fp16_files_with_no_setting_touched(
    newcomer, tmp_path, capsys, monkeypatch
):
    bin_dir = fake_nvidia_smi(tmp_path / "bin", "echo 7.5")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    files, err = listed(capsys)
    assert needed_names(files) == {"m_quanto_mfp16_int8.safetensors"}
    assert "compute capability 7.5 has no fast bf16" in err
    files, _ = listed(capsys, "--gpu-bf16", "yes")
    assert needed_names(files) == {"m_quanto_mbf16_int8.safetensors"}
    assert cli.main(["--list", "--hub-dir", ""]) == 0
    out, err = capsys.readouterr()
    assert "dtype auto (fp16); GPU fp16 (cc 7.5)" in err and "GPU" not in out


def test_without_nvidia_smi_bf16_is_assumed_and_said(newcomer, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    files, err = listed(capsys)
    assert needed_names(files) == {"m_quanto_mbf16_int8.safetensors"}
    assert "GPU: unknown (no nvidia-smi on PATH); assuming bf16" in err
    config = json.loads((newcomer / "config.json").read_text())
    assert config["gpu_bf16"] == "auto"
    config["gpu_bf16"] = False
    (newcomer / "config.json").write_text(json.dumps(config))
    files, err = listed(capsys)
    assert needed_names(files) == {"m_quanto_mfp16_int8.safetensors"}
    assert "GPU fp16 (set in config)" in err and "GPU: unknown" not in err


def test_a_bad_gpu_flag_is_a_usage_error(newcomer, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--list", "--gpu-bf16", "maybe"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'maybe'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"gpu_bf16": "maybe"}, "'gpu_bf16' must be true, false or \"auto\""),
        ({"gpu_bf16": 1}, "'gpu_bf16' must be true, false or \"auto\""),
        ({"wan2gp_config_dir": 3}, "'wan2gp_config_dir' must be a string"),
    ],
)
def test_bad_gpu_and_config_dir_keys_are_config_errors(newcomer, capsys, config, message):
    (newcomer / "config.json").write_text(json.dumps(config))
    assert cli.main(["--list"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_wan2gp_config_dir_flag_reads_its_wgp_config(newcomer, tmp_path, capsys):
    conf = tmp_path / "wan2gp-conf"
    conf.mkdir()
    (conf / "wgp_config.json").write_text(json.dumps({"transformer_quantization": "bf16"}))
    files, _ = listed(capsys, "--gpu-bf16", "yes", "--wan2gp-config-dir", str(conf))
    assert needed_names(files) == {"m_mbf16.safetensors"}


def test_the_header_shows_the_gpu():
    store = StatusStore({}, Header(gpu="GPU fp16 (cc 7.5)", limit_kb=None), {})
    text = header_text(store.snapshot(), UNICODE)
    assert "limit unlimited │ GPU fp16 (cc 7.5) │ no hub" in text


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/wan2gp (the real definitions)")
def test_a_newcomer_on_an_rtx_2080_gets_wan2gps_fp16_files(tmp_path):
    """The real program on the real 8681e9f catalog, with nvidia-smi saying 7.5."""
    root = real_install(tmp_path, "8681e9f")
    bin_dir = fake_nvidia_smi(tmp_path / "bin", "echo 7.5")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(
        [
            sys.executable,
            str(PROJECT / "wandown.py"),
            *("--list", "--json", "--hub-dir", "", "--wan2gp-dir", str(root / "ckpts")),
            *("--config-file", str(tmp_path / "c.json")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    needed = {f["dest"] for f in json.loads(result.stdout) if "i2v_2_2" in f["needed_by"]}
    assert "ckpts/wan2.2_image2video_14B_high_quanto_mfp16_int8.safetensors" in needed
    assert "ckpts/wan2.2_image2video_14B_low_quanto_mfp16_int8.safetensors" in needed
    assert not [dest for dest in needed if "mbf16" in dest]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/wan2gp (the real definitions)")
def test_the_interface_header_names_the_gpu_and_ticks_its_files(tmp_path):
    """The real interface in tmux, over the real catalog, with nvidia-smi saying 7.5."""
    from tests.test_tui_terminal import REPO, Tmux, first_frame_drawn

    root = real_install(tmp_path, "8681e9f")
    bin_dir = fake_nvidia_smi(tmp_path / "bin", "echo 7.5")
    path = f"PATH={bin_dir}:{os.environ['PATH']}"  # in the command: tmux's -e keeps its own PATH
    command = ["env", path, sys.executable, "-m", "wandown", "--offline", "--hub-dir", ""]
    command += ["--wan2gp-dir", str(root / "ckpts"), "--config-file", str(tmp_path / "c.json")]
    env = {
        "PYTHONPATH": str(REPO),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
    }
    session = Tmux(tmp_path, env=env, command=command)
    try:
        session.start(width=200, height=30)
        screen = session.wait_for(first_frame_drawn, timeout=15)
        assert "GPU fp16 (cc 7.5)" in screen.splitlines()[0]
        session.literal("/")
        session.literal("image2video_14B_high")
        screen = session.wait_for("quanto_mfp16_int8")
        assert "high_quanto_mbf16_int8" not in screen
        session.keys("Escape")
        session.keys("Escape")
        session.wait_for("wandown-exit=0")
    finally:
        session.kill()


def test_downloads_land_in_a_checkpoint_root_outside_the_wan2gp_folder(
    tmp_path, localhub, monkeypatch, capsys
):
    """Wan2GP told to keep its checkpoints on another disk: wandown fetches them there."""
    from tests.world import BIG, LORA, SMALL, build_world

    world = build_world(tmp_path, localhub, big_size=200_000)
    disk = tmp_path / "big-disk"
    disk.mkdir()
    wgp_config = {"checkpoints_paths": [str(disk), "ckpts"], "loras_root": str(disk / "loras")}
    (world.root / "wgp_config.json").write_text(json.dumps(wgp_config))
    monkeypatch.chdir(world.workdir)
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
    assert cli.main(["--download", "testvideo", "--hub-dir", ""]) == 0, capsys.readouterr().err
    for place in (disk / BIG, disk / SMALL, disk / "loras" / LORA, disk / "pose" / "yolox_l.onnx"):
        assert place.is_file(), place
    assert not (world.root / "ckpts" / BIG).exists()
    capsys.readouterr()
    files, _ = listed(capsys)
    assert {f["dest"] for f in files if f["role"] == "main" and f["needed_by"]} == {str(disk / BIG)}
    assert all(f["status"] == "exists" for f in files if f["needed_by"])


@pytest.mark.parametrize(
    ("report", "bf16", "label"),
    [
        (
            "Graphics/Displays:\n    Apple M2 Pro:\n      Chipset Model: Apple M2 Pro\n",
            False,
            "fp16",
        ),
        ("      Chipset Model: Apple M3 Max\n", True, "bf16"),
        ("      Type: GPU\n", True, "unknown"),
    ],
)
def test_a_mac_answers_as_wan2gps_mps_patch(report, bf16, label):
    answer = gpu.detect(platform="darwin", mac=lambda: report)
    assert answer.bf16 is bf16 and label in answer.label
    assert gpu.detect(platform="darwin", mac=_no_tool).how == "unknown"


def _no_tool() -> str:
    raise gpu.DetectionError("no system_profiler on PATH")


# -- the kept answer ------------------------------------------------------------------------


def fake_driver(folder: Path, version: str = "NVRM version: 550.54", gpus=("0000:01:00.0",)):
    """Lay out what /proc/driver/nvidia holds: the version line and one folder per GPU."""
    (folder / "gpus").mkdir(parents=True, exist_ok=True)
    (folder / "version").write_text(version)
    for name in gpus:
        (folder / "gpus" / name).mkdir(exist_ok=True)
    return folder


def test_the_driver_key_follows_the_driver_its_gpus_and_the_visible_devices(tmp_path):
    driver = fake_driver(tmp_path / "nvidia")
    key = gpu.driver_key(driver, {})
    assert key and gpu.driver_key(driver, {}) == key
    assert gpu.driver_key(driver, {"CUDA_VISIBLE_DEVICES": "1"}) != key
    fake_driver(driver, gpus=("0000:02:00.0",))
    assert gpu.driver_key(driver, {}) not in (key, None)
    assert gpu.driver_key(tmp_path / "none", {}) is None  # no driver loaded: nothing to key on


def test_a_kept_answer_is_used_until_the_driver_changes(tmp_path, monkeypatch):
    cache_file = tmp_path / "gpu.json"
    key = gpu.driver_key(fake_driver(tmp_path / "nvidia"), {})
    assert gpu.cached_detect(lambda: "7.5\n", key, cache_file).detail == "7.5"

    def never() -> str:
        raise AssertionError("nvidia-smi was asked again")

    kept = gpu.cached_detect(never, key, cache_file)
    assert (kept.bf16, kept.how, kept.detail) == (False, "nvidia-smi", "7.5")
    other = gpu.driver_key(fake_driver(tmp_path / "nvidia", "NVRM version: 560.1"), {})
    assert gpu.cached_detect(lambda: "8.9\n", other, cache_file).bf16
    cache_file.write_text("{not json")  # damaged: asked again, never a traceback
    assert gpu.cached_detect(lambda: "8.6\n", other, cache_file).detail == "8.6"


def test_an_unknown_answer_is_not_kept(tmp_path):
    cache_file = tmp_path / "gpu.json"
    key = gpu.driver_key(fake_driver(tmp_path / "nvidia"), {})
    assert gpu.cached_detect(lambda: "N/A\n", key, cache_file).how == "unknown"
    assert not cache_file.exists()
    assert gpu.cached_detect(lambda: "8.6\n", key, cache_file).detail == "8.6"


def test_a_second_start_does_not_ask_nvidia_smi_again(newcomer, tmp_path, monkeypatch, capsys):
    bin_dir = fake_nvidia_smi(tmp_path / "bin", 'echo run >> "$0.runs"; echo 7.5')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(gpu, "DRIVER", fake_driver(tmp_path / "nvidia"))
    for _ in range(2):
        files, err = listed(capsys)
        assert needed_names(files) == {"m_quanto_mfp16_int8.safetensors"}  # cc 7.5: fp16
        assert "compute capability 7.5 has no fast bf16" in err
    assert (bin_dir / "nvidia-smi.runs").read_text() == "run\n"
