"""python -m wandown.localhub as a real process: first line, serving, clean stop, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.localhub_fixtures import fetch, write_repo
from wandown.localhub.__main__ import parse_token

REPO_ROOT = Path(__file__).resolve().parent.parent


def start(root: Path, *flags: str, cache: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "WANDOWN_CACHE_DIR": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "wandown.localhub", str(root), "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=root.parent,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    root = tmp_path / "models"
    write_repo(root, "acme/tiny", {"config.json": b"{}\n"})
    write_repo(root, "acme/gated", {"config.json": b"[]\n"})
    (root / ".localhub.json").write_text(json.dumps({"gated": ["acme/gated"]}))
    process = start(root, "--token", "hf_ok=acme/gated", cache=tmp_path / "cache")
    try:
        first = process.stdout.readline().strip()
        yield process, first
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_first_line_names_the_address_and_the_files_are_served(served) -> None:
    _process, first = served
    assert first.startswith("listening on http://127.0.0.1:")
    url = first.removeprefix("listening on ")
    answer = fetch(f"{url}/acme/tiny/resolve/main/config.json")
    assert (answer.status, answer.body) == (200, b"{}\n")
    assert fetch(f"{url}/acme/gated/resolve/main/config.json").status == 401
    ok = fetch(
        f"{url}/acme/gated/resolve/main/config.json", headers={"Authorization": "Bearer hf_ok"}
    )
    assert (ok.status, ok.body) == (200, b"[]\n")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_stop_it_cleanly(served, signum: int) -> None:
    process, first = served
    assert first.startswith("listening on ")
    process.send_signal(signum)
    _out, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Traceback" not in err
    assert err == ""


def test_a_missing_root_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    process = start(tmp_path / "nowhere", cache=tmp_path / "cache")
    out, err = process.communicate(timeout=10)
    assert process.returncode == 2
    assert out == ""
    assert "is not a folder" in err and "Traceback" not in err


def test_a_broken_config_file_is_a_message(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    (root / ".localhub.json").write_text('{"gated": "acme/x"}')
    process = start(root, cache=tmp_path / "cache")
    _out, err = process.communicate(timeout=10)
    assert process.returncode == 2
    assert "'gated' must be a list" in err and "Traceback" not in err


def test_a_busy_port_is_a_message(tmp_path: Path) -> None:
    import socket

    root = tmp_path / "models"
    root.mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "wandown.localhub", str(root), "--port", str(port)],
            capture_output=True,
            text=True,
            env=env,
            timeout=10,
            check=False,
        )
    assert done.returncode == 2
    assert "cannot listen on 127.0.0.1" in done.stderr and "Traceback" not in done.stderr


def test_token_flags() -> None:
    assert parse_token("hf_a") == ("hf_a", "*")
    assert parse_token("hf_a=*") == ("hf_a", "*")
    assert parse_token("hf_a=o/x, o/y") == ("hf_a", ["o/x", "o/y"])
