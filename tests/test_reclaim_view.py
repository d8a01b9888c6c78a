"""The interface's Reclaim view: a pure render of the list, one confirmation, the real program."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tests.test_tui_terminal import REPO, Tmux, first_frame_drawn, status_line
from tests.tui_fakes import FakeController, frame_text, synthetic_store
from tests.world import build_world, payload
from wandown.state import ReclaimList, ReclaimRow
from wandown.tui import keys
from wandown.tui.app import App
from wandown.tui.render import reclaim_lines, reclaim_title


def test_the_list_is_drawn_from_state_alone():
    assert "looking for what can go" in reclaim_title(ReclaimList())
    assert "nothing to reclaim" in reclaim_title(ReclaimList(ready=True))
    listed = ReclaimList(
        (
            ReclaimRow("orphan", 4_000_000_000, "ckpts/old.safetensors"),
            ReclaimRow("orphan", 0, "ckpts/gone.safetensors", link=True),
            ReclaimRow("hub copy", 2_000_000, "ckpts/vae.safetensors"),
        ),
        4_002_000_000,
        ready=True,
    )
    assert reclaim_title(listed).startswith(" Reclaim 3 files, 4.0 GB: y deletes them")
    assert reclaim_lines(listed) == [
        " orphan      4.0 GB  ckpts/old.safetensors",
        " orphan        link  ckpts/gone.safetensors",
        " hub copy    2.0 MB  ckpts/vae.safetensors",
    ]


def app_at(width: int = 100, height: int = 30) -> tuple[App, FakeController]:
    controller = FakeController(synthetic_store(40))
    app = App(controller)
    app.resize(width, height)
    return app, controller


def test_r_lists_and_y_deletes_after_one_question():
    assert keys.KEYS["R"] == "reclaim"
    assert any("reclaim" in text for _, text in keys.help_lines())
    app, controller = app_at()
    app.handle("R")
    app.refresh()
    screen = "\n".join(frame_text(app.frame(), 100))
    assert "Reclaim 1 file, 4.0 GB: y deletes them" in screen
    assert "ckpts/old_wan2.1_14B.safetensors" in screen
    assert ("reclaim",) not in controller.calls
    app.handle("y")
    app.refresh()
    assert controller.calls[-1] == ("reclaim",)
    assert not app.view.reclaim_open
    assert "Reclaim" not in frame_text(app.frame(), 100)[1]


def test_any_other_key_keeps_everything():
    app, controller = app_at()
    app.handle("R")
    app.handle("n")
    assert ("reclaim",) not in controller.calls
    assert app.view.message == "Reclaim closed; nothing was deleted"


def test_reclaim_waits_for_running_downloads():
    app, controller = app_at()
    app.handle("d")
    app.handle("R")
    assert ("find_reclaim",) not in controller.calls
    assert "waits until the running downloads end" in app.view.message


def test_the_footer_shows_the_key_when_there_is_room():
    app, _ = app_at(width=140)
    assert "R reclaim" in frame_text(app.frame(), 140)[-1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_real_program_reclaims_from_the_table(tmp_path: Path, localhub):
    world = build_world(tmp_path, localhub)
    orphan = world.path("ckpts/old_wan2.1_14B.safetensors")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(payload("old", 40_000))
    env = {"PYTHONPATH": str(REPO), "HF_ENDPOINT": world.endpoint, "HF_HOME": str(tmp_path / "hf")}
    command = ["sh", "-c", f'cd {shlex.quote(str(world.workdir))} && exec "$@"', "wandown"]
    command += [sys.executable, str(REPO / "wandown.py")]
    session = Tmux(tmp_path, env=env, command=command)
    try:
        session.start()
        session.wait_for(first_frame_drawn, timeout=8)
        session.keys("R")
        screen = session.wait_for("Reclaim 1 file, 40.0 KB: y deletes them")
        assert "orphan" in screen and "ckpts/old_wan2.1_14B.safetensors" in screen
        assert orphan.exists()
        session.keys("y")
        session.wait_for(lambda s: "reclaimed 40.0 KB: 1 deleted" in status_line(s))
        assert not orphan.exists()
        session.keys("Escape")
        session.wait_for("wandown-exit=0")
    finally:
        session.kill()
