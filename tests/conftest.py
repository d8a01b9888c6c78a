"""Fixtures shared by every test file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from wandown.localhub import LocalHub


@pytest.fixture
def localhub(tmp_path: Path) -> Iterator[LocalHub]:
    """A running LocalHub over an empty folder, ``hub.root``, on loopback.

    Write files to ``hub.root / "owner" / "repo" / ...`` at any time: every request rescans.
    The hash cache goes to tmp_path too, never beside a real folder.
    """
    root = tmp_path / "localhub-root"
    root.mkdir()
    with LocalHub(root, hash_cache=tmp_path / "localhub-hashes.json") as hub:
        yield hub


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Two workers per core for `-n auto`: most tests wait on a server, a process or a terminal.

    Measured on the 2-core machine: 2 workers 4:14, 4 workers 3:23, 6 workers 3:46.
    """
    return 2 * (os.cpu_count() or 1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the long end-to-end tests (marked slow) first.

    With work stealing, the workers then share the short tests that remain, so one long test no
    longer ends the run alone on one worker.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _private_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test's caches and Hugging Face settings inside its own tmp_path.

    No test may read the developer's token or caches, or reach the real Hub by accident.
    """
    monkeypatch.setenv("WANDOWN_CACHE_DIR", str(tmp_path / "wandown-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    # A test that forgets to name its Hub meets a closed port on loopback, never huggingface.co
    # (not even a DNS lookup); tests of the default endpoint pass their own environment.
    monkeypatch.setenv("HF_ENDPOINT", NOWHERE)
