"""Several hubs at once: two plain trees, a Hugging Face cache and a ComfyUI models/ folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.test_airgap_cli import hf_cache_entry
from tests.test_hub_builders import make_invokeai
from tests.world import BIG, LORA, REPO, SMALL, build_world, payload
from wandown import cli
from wandown.config import load_config
from wandown.errors import ConfigError
from wandown.hub import HubSet, scan_hub
from wandown.hub.hubset import hub_kind
from wandown.remote import hub_settings
from wandown.session import RunOptions, Session
from wandown.tui.render import header_text
from wandown.tui.view import UNICODE

POSE = "ckpts/pose/yolox_l.onnx"


@pytest.fixture
def world(tmp_path, localhub):
    return build_world(tmp_path, localhub)


def plant(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def four_hubs(world) -> dict[str, Path]:
    """Spread the world's files over four hubs of four kinds; return hub -> planted file."""
    base = world.root.parent
    plain_a, plain_b = base / "hub-a", base / "hub-b"
    hf, comfy = base / "hf-cache", base / "ComfyUI" / "models"
    for folder in ("checkpoints", "loras", "vae", "text_encoders", "clip", "unet"):
        (comfy / folder).mkdir(parents=True)
    return {
        "hub-a": plant(
            plain_a / "weights" / "renamed_big.bin", world.served_file(BIG).read_bytes()
        ),
        "hub-b": plant(plain_b / "misc" / "its_config.json", world.served_file(SMALL).read_bytes()),
        "hf-cache": hf_cache_entry(hf, REPO, LORA, world.served_file(LORA).read_bytes()),
        "ComfyUI": plant(comfy / "vae" / "yolo.onnx", payload("pose/yolox_l.onnx", 100)),
    }


def hub_flags(world) -> list[str]:
    base = world.root.parent
    folders = ("hub-a", "hub-b", "hf-cache", "ComfyUI/models")
    return [arg for folder in folders for arg in ("--hub-dir", str(base / folder))]


def test_each_hub_proves_and_links_its_own_files(world, localhub, monkeypatch, capsys):
    planted = four_hubs(world)
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
    monkeypatch.chdir(world.workdir)
    status = cli.main(["--download", "testvideo", POSE, *hub_flags(world)])
    out = capsys.readouterr()
    assert status == 0, out.out + out.err
    assert os.readlink(world.path(f"ckpts/{BIG}")) == str(planted["hub-a"])
    assert os.readlink(world.path(f"ckpts/{SMALL}")) == str(planted["hub-b"])
    assert os.readlink(world.path(f"loras/{LORA}")) == str(planted["hf-cache"])
    assert os.readlink(world.path(POSE)) == str(planted["ComfyUI"])
    fetched = {r.path.rsplit("/", 1)[-1] for r in localhub.requests if r.server == "cdn"}
    assert not fetched & {BIG, SMALL, LORA, "yolox_l.onnx"}
    # One hash sidecar per hub, each naming its own hub.
    sidecars = (Path(os.environ["WANDOWN_CACHE_DIR"]) / "hub").glob("*.json")
    hubs = {json.loads(path.read_text())["hub"] for path in sidecars}
    assert hubs == {
        str(world.root.parent / f) for f in ("hub-a", "hub-b", "hf-cache", "ComfyUI/models")
    }


def test_the_header_names_each_hub_with_its_kind_and_count(world):
    four_hubs(world)
    plant(world.root.parent / "hub-a" / "other.bin", b"x")  # hub-a holds 2 files
    base = world.root.parent
    config = load_config(
        world.workdir / "config.json",
        {
            "hub_directory": [
                str(base / f) for f in ("hub-a", "hub-b", "hf-cache", "ComfyUI/models")
            ]
        },
    )
    session = Session(config, hub_settings(), RunOptions(), lambda message: None)
    try:
        session.load(with_hub=True)
        header = session.store.snapshot().header
        assert [(Path(f).name, kind, n) for f, kind, n in header.hubs] == [
            ("hub-a", "plain", 2),
            ("hub-b", "plain", 1),
            ("hf-cache", "Hugging Face cache", 1),
            ("models", "ComfyUI", 1),
        ]
        text = header_text(session.store.snapshot(), UNICODE)
        assert f"4 hubs: {base / 'hub-a'} 2, {base / 'hub-b'} 1, " in text
        assert f"{base / 'ComfyUI/models'} (ComfyUI) 1 files;" in text
    finally:
        session.shutdown()


def test_config_takes_a_list_and_a_string_stays_valid(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hub_directory": ["a", "b", "gone"]}))
    config = load_config(path)
    assert config.hub_directories == (tmp_path / "a", tmp_path / "b")
    assert any("gone does not exist; that hub is left out" in n for n in config.notices)
    path.write_text(json.dumps({"hub_directory": "a"}))
    assert load_config(path).hub_directories == (tmp_path / "a",)
    path.write_text(json.dumps({"hub_directory": []}))
    assert load_config(path).hub_directories == ()


def test_a_hub_inside_another_is_scanned_once(tmp_path):
    (tmp_path / "a" / "inner").mkdir(parents=True)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hub_directory": ["a/inner", "a"]}))
    config = load_config(path)
    assert config.hub_directories == (tmp_path / "a",)
    assert any("overlaps the hub" in n for n in config.notices)
    path.write_text(json.dumps({"hub_directory": ["a", "a/"]}))
    config = load_config(path)
    assert config.hub_directories == (tmp_path / "a",)
    assert any("is named twice; scanning it once" in n for n in config.notices)


@pytest.mark.parametrize(
    ("value", "words"),
    [(["a", ""], "item 2 must be a folder path"), (["a", 3], "item 2 must be a folder path")],
)
def test_a_bad_hub_list_names_the_item(tmp_path, value, words):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hub_directory": value}))
    with pytest.raises(ConfigError, match=words):
        load_config(path)


def test_an_empty_hub_flag_among_others_is_refused(world, monkeypatch, capsys):
    monkeypatch.chdir(world.workdir)
    assert cli.main(["--list", "--hub-dir", str(world.hub_dir), "--hub-dir", ""]) == 2
    assert '--hub-dir "" turns the hub off' in capsys.readouterr().err


def test_every_hub_is_off_limits_for_writes(world, localhub):
    """A Wan2GP folder linked into the second hub is refused as a hub folder, not written."""
    second = world.root.parent / "hub-b"
    (second / "wan-ckpts").mkdir(parents=True)
    ckpts = world.path("ckpts")
    if ckpts.exists():
        ckpts.rmdir()
    ckpts.symlink_to(second / "wan-ckpts")
    result = world.run("--download", BIG, "--hub-dir", str(world.hub_dir), "--hub-dir", str(second))
    assert result.returncode != 0
    assert f"would be written inside the hub {second}" in result.stdout + result.stderr
    assert list((second / "wan-ckpts").iterdir()) == []


def test_hub_kinds(tmp_path):
    comfy = tmp_path / "comfy"
    for folder in ("checkpoints", "loras", "vae"):
        (comfy / folder).mkdir(parents=True)
    hf_cache_entry(tmp_path / "hf", REPO, "x.bin", b"x")
    (tmp_path / "plain" / "loras").mkdir(parents=True)
    (tmp_path / "plain" / "vae").mkdir()
    make_invokeai(tmp_path / "invoke", {"sd/model.safetensors": b"weights"})
    names = ("comfy", "hf", "plain", "invoke")
    kinds = [hub_kind(scan_hub(tmp_path / name)) for name in names]
    assert kinds == ["ComfyUI", "Hugging Face cache", "plain", "InvokeAI"]
    hubs = HubSet([scan_hub(tmp_path / "comfy"), scan_hub(tmp_path / "hf")])
    assert hubs.file_count == 1 and len(hubs.hf_repos) == 1


def test_air_gapped_linking_and_dedupe_work_with_several_hubs(
    world, localhub, monkeypatch, capsys, tmp_path
):
    planted = four_hubs(world)
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
    monkeypatch.chdir(world.workdir)
    carried = tmp_path / "carried.json"
    assert cli.main(["--export-metadata", str(carried), *hub_flags(world)]) == 0
    monkeypatch.setenv("WANDOWN_CACHE_DIR", str(tmp_path / "air-gapped-cache"))
    assert cli.main(["--import-metadata", str(carried)]) == 0
    localhub.clear_requests()
    dests = [f"ckpts/{BIG}", f"ckpts/{SMALL}", f"loras/{LORA}", POSE]
    status = cli.main(["--offline", "--download", *dests, *hub_flags(world)])
    out = capsys.readouterr()
    assert status == 0, out.out + out.err
    assert os.readlink(world.path(f"ckpts/{BIG}")) == str(planted["hub-a"])
    assert os.readlink(world.path(f"loras/{LORA}")) == str(planted["hf-cache"])
    assert os.readlink(world.path(POSE)) == str(planted["ComfyUI"])
    assert localhub.requests == []

    # A real copy of the second hub's file, made before wandown: --dedupe links it there.
    world.path(f"ckpts/{SMALL}").unlink()
    world.path(f"ckpts/{SMALL}").write_bytes(world.served_file(SMALL).read_bytes())
    assert cli.main(["--dedupe", "--yes", *hub_flags(world)]) == 0
    assert os.readlink(world.path(f"ckpts/{SMALL}")) == str(planted["hub-b"])
    assert "1 file replaced by a link" in capsys.readouterr().out
