"""The Models view and the disk question in a real terminal, with the real program."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tests.test_tui_terminal import REPO, Tmux, status_line
from tests.world import BIG, build_world

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def test_m_and_enter_tick_a_model_and_d_asks_when_it_does_not_fit(tmp_path: Path, localhub):
    world = build_world(tmp_path, localhub)
    config = json.loads((world.workdir / "config.json").read_text())
    # 100 TB kept free: no disk here fits, so d must ask.
    (world.workdir / "config.json").write_text(json.dumps({**config, "min_free_gb": 100_000}))
    env = {"PYTHONPATH": str(REPO), "HF_ENDPOINT": world.endpoint, "HF_HOME": str(tmp_path / "hf")}
    command = ["sh", "-c", f'cd {shlex.quote(str(world.workdir))} && exec "$@"', "wandown"]
    command += [sys.executable, str(REPO / "wandown.py")]
    session = Tmux(tmp_path, env=env, command=command)
    try:
        session.start(width=140, height=30)
        screen = session.wait_for("Nothing ticked: m shows the models", timeout=10)
        assert "[✓]" not in screen

        session.keys("m")
        screen = session.wait_for(lambda s: "Test video" in s and "Fetch" in s)
        row = next(line for line in screen.split("\n") if "Test video" in line)
        assert row.startswith("[ ]") and "testvideo" in row and "Missing" in row
        assert "Models, Missing Only" in screen and "m files" in screen

        session.keys("Enter")
        screen = session.wait_for(lambda s: " short)" in footer_line(s))  # drawn last
        assert "Ticked 27 missing files of testvideo" in status_line(screen)
        assert " to fetch · " in footer_line(screen)
        row = next(line for line in screen.split("\n") if "Test video" in line)
        assert row.startswith("[✓]")

        session.keys("d")
        screen = session.wait_for(lambda s: "Does not fit, start anyway? (y/n)" in status_line(s))
        assert "short on " in status_line(screen)
        session.keys("n")
        session.wait_for(lambda s: "Not started" in status_line(s))
        assert not world.path(f"ckpts/{BIG}").exists()
        assert not list(world.root.rglob(".wandown"))

        session.keys("m")  # back to the files, ticked by the model's Enter
        # curses may paint the headings before the rows: wait for the file's row itself.
        stem = BIG.removesuffix(".safetensors")
        screen = session.wait_for(lambda s: "Model File" in s and stem in s)
        big = next(line for line in screen.split("\n") if stem in line)
        assert big.startswith("[✓]")
        session.keys("Escape")
        session.wait_for("wandown-exit=0")
        session.wait_for("tty-restored")
    finally:
        session.kill()


def footer_line(screen: str) -> str:
    return screen.rstrip("\n").split("\n")[-1]
