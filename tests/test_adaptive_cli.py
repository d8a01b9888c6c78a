"""`connections` is the ceiling of the adaptive count: from config.json and --connections.

The real program in-process against wandown.localhub on loopback; the connection threads are
counted as they run, so the ceiling is checked where it matters.
"""

from __future__ import annotations

import json
import threading

import pytest

from tests.world import BIG, build_world
from wandown import cli
from wandown.config import DEFAULTS, load_config
from wandown.engine import connection


@pytest.fixture
def world(tmp_path, localhub):
    return build_world(tmp_path, localhub, big_size=12_000_000)


@pytest.fixture
def most_at_once(monkeypatch) -> list[int]:
    """Record the most connection threads of a file running at the same time."""
    lock = threading.Lock()
    running = [0]
    peak = [0]
    real = connection.Connections.run

    def run(self, *args, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            return real(self, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(connection.Connections, "run", run)
    return peak


def download(world, monkeypatch, *flags: str) -> int:
    monkeypatch.chdir(world.workdir)
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
    return cli.main(["--download", BIG, *flags])


def test_connections_flag_is_the_ceiling_and_the_file_verifies(world, monkeypatch, most_at_once):
    status = download(world, monkeypatch, "--connections", "2")
    assert status == 0
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()
    assert 1 <= most_at_once[0] <= 2


def test_the_config_value_is_the_ceiling_and_an_old_eight_still_loads(
    world, monkeypatch, most_at_once
):
    config = world.workdir / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "connections": 1}))
    assert download(world, monkeypatch) == 0
    assert most_at_once[0] == 1
    config.write_text(json.dumps({**json.loads(config.read_text()), "connections": 8}))
    assert load_config(config).connections == 8


def test_the_default_ceiling_is_sixteen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert DEFAULTS["connections"] == 16
    assert load_config(tmp_path / "config.json").connections == 16
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["connections"] == 16


def test_zero_connections_is_a_clear_usage_error(world, monkeypatch, capsys):
    status = download(world, monkeypatch, "--connections", "0")
    assert status == 2
    err = capsys.readouterr().err
    assert "connections" in err and "Traceback" not in err
