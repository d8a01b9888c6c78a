"""Fixtures shared by every test file."""

from __future__ import annotations

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
