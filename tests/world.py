"""A whole little world for end-to-end tests: a Wan2GP install, a Hub on loopback, a model hub.

The models use an architecture wandown has no code-side data for, so they need only their own
files plus the core files every model needs; those are served too (small made-up contents).
"""

from __future__ import annotations

import _thread
import hashlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from wandown import cli
from wandown.catalog.codedefaults import shipped
from wandown.config import load_config
from wandown.remote import hub_settings
from wandown.session import RunOptions, Session

PROJECT = Path(__file__).resolve().parent.parent
REPO = "tester/video"
BIG = "video_14B_quanto_bf16_int8.safetensors"
OTHER_VARIANT = "video_14B_bf16.safetensors"
SMALL = "config.json"
LORA = "style_lora.safetensors"


def payload(name: str, size: int) -> bytes:
    """Deterministic bytes that differ per name (fast to make, never all zero)."""
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


@dataclass
class World:
    root: Path  # the Wan2GP install
    served: Path  # what the local Hub serves
    hub_dir: Path  # the user's model hub
    workdir: Path  # where wandown runs (config.json lives here)
    endpoint: str

    def path(self, dest: str) -> Path:
        return self.root / dest

    def served_file(self, name: str) -> Path:
        return self.served / REPO / name

    def run(self, *args: str, extra_env: dict | None = None, timeout: float = 120):
        """Run the real program and return the finished process; never a traceback."""
        result = subprocess.run(
            [sys.executable, str(PROJECT / "wandown.py"), *args],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(extra_env),
        )
        assert "Traceback" not in result.stderr + result.stdout, result.stderr
        return result

    def popen(self, *args: str, extra_env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(PROJECT / "wandown.py"), *args],
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(extra_env),
        )

    def env(self, extra: dict | None = None) -> dict:
        return {**os.environ, "HF_ENDPOINT": self.endpoint, **(extra or {})}


def build_world(tmp_path: Path, localhub, big_size: int = 6_000_000) -> World:
    """Lay out the install, serve its files from localhub, and write wandown's config."""
    served = localhub.root
    files = {BIG: big_size, OTHER_VARIANT: 1000, SMALL: 64, LORA: 300_000}
    for name, size in files.items():
        target = served / REPO / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload(name, size))
    for group in shipped().core:
        for name in group.files:
            target = served / group.repo / group.source_folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(payload(f"{group.source_folder}/{name}", 100))

    root = tmp_path / "Wan2GP"
    (root / "defaults").mkdir(parents=True)
    base = f"https://huggingface.co/{REPO}/resolve/main/"
    model = {
        "model": {
            "name": "Test video",
            "architecture": "test_arch",
            "URLs": [base + OTHER_VARIANT, base + BIG],
            "preload_URLs": [base + SMALL],
            "loras": [base + LORA],
        }
    }
    (root / "defaults" / "testvideo.json").write_text(json.dumps(model))
    hub_dir = tmp_path / "modelhub"
    hub_dir.mkdir()
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = {
        "wan2gp_directory": str(root / "ckpts"),
        "hub_directory": str(hub_dir),
        "bandwidth_limit_kb": 0,
    }
    (workdir / "config.json").write_text(json.dumps(config))
    return World(root, served, hub_dir, workdir, localhub.url)


def run_cli(world: World, monkeypatch, *args: str, limit: float = 30) -> int:
    """Run wandown.cli.main in-process; after limit seconds it is interrupted like by Ctrl-C."""
    monkeypatch.chdir(world.workdir)
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
    alarm = threading.Timer(limit, _thread.interrupt_main)
    alarm.start()
    try:
        status = cli.main(list(args))
    finally:
        alarm.cancel()
    assert status != 130, f"wandown {' '.join(args)} still running after {limit} s"
    return status


def session_for(world: World, notices: list[str] | None = None, offline: bool = False) -> Session:
    """Return a loaded Session on the world's config, as the interface does (HF_ENDPOINT set)."""
    config = load_config(world.workdir / "config.json")
    settings = hub_settings()
    if offline:
        settings = type(settings)(endpoint=settings.endpoint, offline=True)
    say = notices.append if notices is not None else (lambda message: None)
    session = Session(config, settings, RunOptions(), say)
    session.load()
    return session


def hold_matching(session: Session, until: threading.Event, seconds: float) -> threading.Event:
    """Make the session's hub matching wait for until (seconds at most); return 'it started'."""
    started = threading.Event()
    match = session.hub.match

    def held_match(*args, **kwargs):
        started.set()
        until.wait(seconds)
        return match(*args, **kwargs)

    session.hub.match = held_match
    return started
