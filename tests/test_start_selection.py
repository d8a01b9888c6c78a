"""What is ticked at start: nothing, except the models chosen in Wan2GP or with --models."""

from __future__ import annotations

import json
import sys

import pytest

from tests.wan2gp_fixtures import SHARED, real_install
from tests.world import BIG, LORA, SMALL, build_world
from wandown import cli, selection
from wandown.catalog.definitions import read_settings
from wandown.loaded import Loaded
from wandown.tui.app import App


@pytest.fixture
def world(tmp_path, localhub, monkeypatch):
    world = build_world(tmp_path, localhub)
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
    monkeypatch.chdir(world.workdir)
    return world


def open_interface(monkeypatch, *flags: str) -> dict:
    """Run the real command line up to the interface; return what it was handed."""
    handed: dict = {}

    def fake_run(session, **options):
        app = App(session, **options)  # the interface as the terminal would get it
        handed.update(options, session=session, preselect=sorted(app.view.selected))
        return 0

    monkeypatch.setattr("wandown.tui.run", fake_run)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert cli.main(list(flags)) == 0
    return handed


def write_wgp_config(root, **values) -> None:
    (root / "wgp_config.json").write_text(json.dumps(values))


def test_nothing_is_ticked_at_start_without_transformer_types(world, monkeypatch):
    assert open_interface(monkeypatch)["preselect"] == []
    write_wgp_config(world.root, transformer_types=[])
    assert open_interface(monkeypatch)["preselect"] == []


def test_transformer_types_ticks_exactly_that_models_missing_files(world, monkeypatch):
    write_wgp_config(world.root, transformer_types=["testvideo", "gone_model"])
    handed = open_interface(monkeypatch)
    loaded = handed["session"].loaded
    wanted = sorted(r.dest for r in loaded.catalog.records if "testvideo" in r.needed_by)
    assert handed["preselect"] == wanted
    assert {f"ckpts/{BIG}", f"ckpts/{SMALL}", f"loras/{LORA}"} <= set(wanted)
    notices = "".join(handed["session"].store.snapshot().notices)
    assert "'gone_model', which no definition has" in notices


def test_a_present_file_of_a_chosen_model_is_not_ticked(world, monkeypatch):
    write_wgp_config(world.root, transformer_types=["testvideo"])
    world.path(f"ckpts/{SMALL}").parent.mkdir(parents=True)
    world.path(f"ckpts/{SMALL}").write_bytes(b"x" * 64)
    handed = open_interface(monkeypatch)
    assert f"ckpts/{SMALL}" not in handed["preselect"]
    assert f"ckpts/{BIG}" in handed["preselect"]


def test_models_flag_ticks_that_models_files(world, monkeypatch):
    handed = open_interface(monkeypatch, "--models", "testvideo", "--force")
    assert f"ckpts/{BIG}" in handed["preselect"]
    assert handed["ask_disk"] is False


def test_an_unknown_model_id_is_exit_2_naming_the_close_matches(world, capsys):
    assert cli.main(["--models", "testvidoe", "--download", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "no model 'testvidoe'; did you mean testvideo?" in err
    assert cli.main(["--models", "zzz", "--download", "--dry-run"]) == 2
    assert "--list shows every model id" in capsys.readouterr().err
    assert cli.main(["--download"]) == 2
    assert "--download needs SEL" in capsys.readouterr().err


def test_models_adds_to_the_download_selection(world, capsys):
    assert cli.main(["--download", "--models", "testvideo", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"ckpts/{BIG}: download" in out


def test_transformer_types_that_is_not_a_list_is_a_notice(tmp_path):
    write_wgp_config(tmp_path, transformer_types="t2v")
    settings, notices = read_settings(tmp_path)
    assert settings.transformer_types == ()
    assert (
        "'transformer_types' has an unexpected value 't2v' (it must be a list of model ids)"
        in notices[0]
    )


# -- the real catalog ---------------------------------------------------------------------------

REAL = "8681e9f"


@pytest.fixture
def real_wan2gp(tmp_path, monkeypatch):
    """Return a function running the real command line, offline, on the real 8681e9f catalog."""
    if not (SHARED / REAL / "defaults").is_dir():
        pytest.skip(f"needs ../shared/wan2gp/{REAL} (the real Wan2GP definitions)")
    root = real_install(tmp_path, REAL)
    monkeypatch.chdir(tmp_path)

    def start(*flags: str, **wgp: object) -> dict:
        if wgp:
            write_wgp_config(root, **wgp)
        base = ["--offline", "--hub-dir", "", "--wan2gp-dir", str(root / "ckpts")]
        return open_interface(monkeypatch, *base, *flags)

    return start


def needed_by(loaded: Loaded, models: set[str]) -> list[str]:
    return sorted(r.dest for r in loaded.catalog.records if r.needed_by & models)


def test_real_catalog_ticks_nothing_without_transformer_types(real_wan2gp):
    assert real_wan2gp()["preselect"] == []
    assert real_wan2gp(transformer_types=[])["preselect"] == []


def test_real_catalog_ticks_exactly_the_chosen_models_files(real_wan2gp):
    handed = real_wan2gp("--models", "t2v", transformer_types=["i2v_2_2", "flux_krea"])
    loaded = handed["session"].loaded
    expected = needed_by(loaded, {"i2v_2_2", "flux_krea", "t2v"})
    assert handed["preselect"] == expected
    everything = {r.dest for r in loaded.catalog.records if r.needed_by}
    assert 0 < len(expected) < len(everything) / 4
    chosen, _ = selection.chosen_models(loaded, ["t2v"])
    assert chosen == ["i2v_2_2", "flux_krea", "t2v"]  # Wan2GP's list first, each once
