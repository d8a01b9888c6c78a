"""Every command in the README, run the way a reader would run it, against the demo sandbox."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wandown.demo import demo_sandbox

PROJECT = Path(__file__).resolve().parent.parent
README = (PROJECT / "README.md").read_text(encoding="utf-8")
PYTHON = ".venv/bin/python"


def readme_commands() -> list[str]:
    """Return the lines of every ```bash block, in order."""
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def is_interactive(command: str) -> bool:
    """A wandown command with no mode flag opens the interface."""
    modes = (
        "--list",
        "--download",
        "--dedupe",
        "--reclaim",
        "--export-metadata",
        "--import-metadata",
        "--serve",
    )
    return "wandown.py" in command and not any(mode in command for mode in modes)


COMMANDS = readme_commands()
QUICK_START = COMMANDS[:2]
BATCH = [
    c
    for c in COMMANDS[2:]
    if not is_interactive(c)
    and "wandown.localhub" not in c
    and "bench/" not in c
    and "--serve" not in c  # serves until stopped: see test_the_serve_command_serves
]


def test_the_readme_starts_with_the_two_quick_start_commands():
    expected = [
        f"./installd.sh && {PYTHON} wandown.py --demo",
        f"./installd.sh --dev && {PYTHON} -m pytest -q",
    ]
    assert expected == QUICK_START
    ci = (PROJECT / ".ci" / "run").read_text()
    assert QUICK_START[1] in ci  # CI runs exactly the README's test command


def test_every_readme_command_is_covered_here():
    covered = set(QUICK_START) | set(BATCH)
    covered |= {c for c in COMMANDS if is_interactive(c) or "localhub" in c or "bench/" in c}
    covered |= {c for c in COMMANDS if "--serve" in c}
    assert covered == set(COMMANDS)
    assert len(BATCH) >= 8


def local(command: str) -> str:
    """Point the README's .venv/bin/python and wandown.py at this checkout and this Python."""
    python = shlex.quote(sys.executable)
    script = shlex.quote(str(PROJECT / "wandown.py"))
    return re.sub(
        r"\.venv/bin/python( wandown\.py)?",
        lambda match: f"{python} {script}" if match.group(1) else python,
        command,
    )


@pytest.fixture(scope="module")
def sandbox():
    with demo_sandbox(keep=False, notice=lambda message: None) as box:
        yield box


def sandbox_env(sandbox) -> dict[str, str]:
    """The environment of a README command run against the demo's Hub and cache."""
    return {
        **os.environ,
        "PYTHONPATH": str(PROJECT),
        "HF_ENDPOINT": sandbox.endpoint,
        "WANDOWN_CACHE_DIR": str(sandbox.cache_dir),
    }


@pytest.mark.slow
def test_batch_commands_run_against_the_demo(sandbox, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "config.json").symlink_to(sandbox.config_file)
    env = sandbox_env(sandbox)
    for command in BATCH:
        result = subprocess.run(
            ["bash", "-c", local(command)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = result.stdout + result.stderr
        assert "Traceback" not in output, (command, output)
        allowed = (0, 1) if "--offline --download" in command else (0,)
        assert result.returncode in allowed, (command, output)
        assert "Cannot reach" not in output, (command, output)
    assert (workdir / "files.json").read_text().startswith("[")
    assert "done:" in (workdir / "wandown.log").read_text()
    assert (workdir / "wandown-metadata.json").is_file()
    root = sandbox.wan2gp_root
    assert any(p.is_symlink() for p in (root / "ckpts").iterdir())


def test_the_localhub_command_serves(sandbox):
    [command] = [c for c in COMMANDS if "wandown.localhub" in c]
    args = shlex.split(local(command))
    args[args.index("~/.cache/huggingface/hub")] = str(sandbox.served_dir)
    args[args.index("--host") + 1] = "127.0.0.1"  # tests never listen beyond loopback
    args[args.index("--port") + 1] = "0"
    server = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    try:
        first = server.stdout.readline()
        assert first.startswith("listening on http://127.0.0.1:")
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=10)
    assert "Traceback" not in err


def test_the_serve_commands_serve(sandbox, tmp_path):
    commands = [c for c in COMMANDS if "--serve" in c]
    if not commands:
        pytest.skip("the README shows no --serve command")
    (tmp_path / "config.json").symlink_to(sandbox.config_file)
    env = sandbox_env(sandbox)
    for command in commands:
        args = shlex.split(local(command))
        args[args.index("--serve") + 1] = "127.0.0.1:0"  # tests never listen beyond loopback
        server = subprocess.Popen(
            args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        try:
            first = server.stdout.readline()
            assert first.startswith("serving "), (command, first)
        finally:
            server.terminate()
            _out, err = server.communicate(timeout=10)
        assert server.returncode == 0 and "Traceback" not in err, (command, err)


BENCH_TOOLS = ("nginx", "aria2c", "curl", "time")


def have(tool: str) -> bool:
    return bool(shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists())


@pytest.mark.skipif(
    not all(have(tool) for tool in BENCH_TOOLS),
    reason="the benchmarks need nginx, aria2c, curl, time",
)
@pytest.mark.slow
def test_the_benchmark_commands_run(tmp_path):
    shared = PROJECT.parent / "shared" / "wan2gp"
    for command in [c for c in COMMANDS if "bench/" in c]:
        if ("metadata.py" in command or "first_frame.py" in command) and not shared.is_dir():
            continue  # it reads the real catalog from ../shared
        result = subprocess.run(
            ["bash", "-c", local(command)],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "PYTHONPATH": str(PROJECT), "TMPDIR": str(tmp_path)},
        )
        assert result.returncode == 0, (command, result.stdout + result.stderr)
        assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_quick_start_demo_reaches_complete_and_linked_in_tmux(tmp_path):
    from tests.test_tui_terminal import Tmux, first_frame_drawn

    command = QUICK_START[0].split("&&", 1)[1].strip()
    argv = [*shlex.split(local(command)), "--no-limit"]
    env = {"PYTHONPATH": str(PROJECT), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    session = Tmux(tmp_path, env=env, command=argv)
    try:
        session.start(width=120, height=60)
        session.wait_for(first_frame_drawn, timeout=15)
        session.keys("d")
        screen = session.wait_for("Finished 44 files: 42 complete, 2 linked", timeout=60)
        assert "Failed" not in screen and "Pending" not in screen and "Downloading" not in screen
        session.keys("Escape")
        session.wait_for("wandown-exit=0", timeout=15)
        session.wait_for("tty-restored")
    finally:
        session.kill()
    assert list((tmp_path / "tmp").iterdir()) == []  # the sandbox is gone
