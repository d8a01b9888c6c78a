"""Run the learning child: a fresh interpreter on the user's Wan2GP, with a time limit.

The child (``child.py``) starts isolated (``-I -S -B``: no site-packages, no environment, no
bytecode), in a temporary working folder with a temporary HOME, so nothing it does lands in the
Wan2GP folder or the user's home. It prints one JSON object; anything else is a failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from wandown import jsonfile
from wandown.errors import WandownError

CHILD = Path(__file__).resolve().parent / "child.py"
DEFAULT_TIMEOUT = 60.0
TIMEOUT_VARIABLE = "WANDOWN_LEARN_TIMEOUT"
MAX_OUTPUT = 64 * 1024 * 1024


class LearnError(WandownError):
    """Wan2GP's code could not be learned: the child failed, timed out or said nothing usable."""


def time_limit() -> float:
    """Return the child's time limit in seconds (``WANDOWN_LEARN_TIMEOUT`` overrides it)."""
    value = os.environ.get(TIMEOUT_VARIABLE, "")
    try:
        seconds = float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT
    return seconds if seconds > 0 else DEFAULT_TIMEOUT


def run_child(
    source_root: Path, install_root: Path, timeout: float | None = None
) -> dict[str, Any]:
    """Return what the child learned from the Wan2GP source at source_root."""
    limit = time_limit() if timeout is None else timeout
    with tempfile.TemporaryDirectory(prefix="wandown-learn-") as scratch:
        env = {"HOME": scratch, "XDG_CACHE_HOME": scratch, "HF_HOME": scratch, "TMPDIR": scratch}
        env |= {"HF_HUB_OFFLINE": "1", "PATH": os.defpath, "LC_ALL": "C.UTF-8"}
        command = [sys.executable, "-I", "-S", "-B", str(CHILD), str(source_root)]
        command.append(str(install_root))
        process = subprocess.Popen(
            command,
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: a time-out ends all it started
        )
        try:
            out, err = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            _end_group(process)
            raise LearnError(f"it took longer than {limit:g} s") from None
    return _answer(process.returncode, out, err)


def _end_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def _answer(returncode: int, out: bytes, err: bytes) -> dict[str, Any]:
    if returncode != 0 or not out:
        lines = err.decode("utf-8", "replace").strip().splitlines()
        last = lines[-1] if lines else f"exit status {returncode}"
        raise LearnError(f"the learning process failed ({last[:300]})")
    if len(out) > MAX_OUTPUT:
        raise LearnError("the learning process said too much")
    try:
        answer = jsonfile.decode(out, "the learning process's answer")
    except jsonfile.JSONFileError as exc:
        raise LearnError(f"the learning process gave no readable answer ({exc})") from None
    if not isinstance(answer, dict):
        raise LearnError("the learning process gave no readable answer")
    if "fatal" in answer:
        raise LearnError(str(answer["fatal"]))
    return answer
