"""Fixtures shared by every test file."""

from __future__ import annotations

import itertools
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


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Two workers per core for `-n auto`: most tests wait on a server, a process or a terminal.

    Measured on the 2-core machine: 2 workers 4:14, 4 workers 3:23, 6 workers 3:46.
    """
    return 2 * (os.cpu_count() or 1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the long tests (marked slow) first, spread over the workers.

    xdist's work stealing hands each worker one run of consecutive tests and lets an idle worker
    take from the end of another's: so each worker's run begins with its share of the slow
    tests, and the short ones that follow are what the others steal. Without workers, the
    slow tests simply come first.
    """
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    slow = [item for item in items if item.get_closest_marker("slow")]
    fast = iter([item for item in items if not item.get_closest_marker("slow")])
    each, extra = divmod(len(items), workers)
    ordered: list[pytest.Item] = []
    for worker in range(workers):
        run = slow[worker::workers]
        size = each + (1 if worker < extra else 0)
        run += itertools.islice(fast, max(0, size - len(run)))
        ordered += run
    items[:] = ordered + list(fast)


@pytest.fixture(scope="session", autouse=True)
def _bytecode_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Let the Python processes tests start keep their bytecode, as an installed wandown does.

    With PYTHONDONTWRITEBYTECODE in the environment every `python wandown.py` compiled all of
    wandown again. The cache lives beside the workers' temporary folders, shared by them, so
    nothing is written into the project or into ../shared.
    """
    saved = {
        name: os.environ.get(name) for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    }
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.getbasetemp().parent / "pycache")
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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
