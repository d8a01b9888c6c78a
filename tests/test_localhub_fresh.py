"""localhub after a served file changes on disk: the new file, or a message saying what happened."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import urllib3

from tests.localhub_fixtures import payload, write_repo
from tests.world import BIG, LORA, build_world
from wandown.localhub import LocalHub
from wandown.localhub.routes import _changed_check

huggingface_hub = pytest.importorskip("huggingface_hub")
from huggingface_hub import hf_hub_download  # noqa: E402


@pytest.fixture
def hf_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep huggingface_hub on loopback, in tmp_path, anonymous and without Xet."""
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        pytest.skip("huggingface_hub was imported in offline mode")


def replace_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """Put another file with the same size and mtime at path, the way rsync -a or cp -p would."""
    before = path.stat()
    assert len(data) == before.st_size
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(data)
    os.utime(fresh, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(fresh, path)


@pytest.mark.slow
def test_cli_names_a_file_changed_since_listed_and_serves_the_rest(tmp_path, localhub):
    world = build_world(tmp_path, localhub)
    assert world.run("--download", f"loras/{LORA}").returncode == 0
    served = world.served_file(LORA)
    new = payload(len(served.read_bytes()), seed=81)
    served.write_bytes(new)
    world.path(f"loras/{LORA}").unlink()

    # wandown still has the commit it listed (its metadata cache): the file it names changed.
    changed = world.run("--download", f"loras/{LORA}")
    assert changed.returncode == 1
    assert f'"{LORA}" changed on disk since commit' in changed.stdout
    assert "--reset-cache" in changed.stdout
    # ...while a file that did not change is still served at that commit.
    other = world.run("--download", BIG)
    assert other.returncode == 0, other.stdout
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()

    again = world.run("--download", f"loras/{LORA}", "--reset-cache")
    assert again.returncode == 0, again.stdout
    assert world.path(f"loras/{LORA}").read_bytes() == new


def test_a_file_replaced_with_the_same_size_and_mtime_is_served_new(tmp_path, hf_env):
    root = tmp_path / "served"
    old, new = payload(200_000, seed=82), payload(200_000, seed=83)
    write_repo(root, "wan/tiny", {"model.safetensors": old, "config.json": b"{}"})
    with LocalHub(root, hash_cache=tmp_path / "hashes.json") as hub:
        first = hf_hub_download("wan/tiny", "model.safetensors", endpoint=hub.url)
        assert Path(first).read_bytes() == old
        replace_keeping_size_and_mtime(root / "wan" / "tiny" / "model.safetensors", new)
        second = hf_hub_download("wan/tiny", "model.safetensors", endpoint=hub.url)
        assert Path(second).read_bytes() == new
        assert Path(second).resolve().name == hashlib.sha256(new).hexdigest()


def test_a_hash_cache_from_before_a_restart_does_not_hide_a_replaced_file(tmp_path, hf_env):
    root = tmp_path / "served"
    old, new = payload(100_000, seed=84), payload(100_000, seed=85)
    write_repo(root, "wan/tiny", {"model.safetensors": old})
    hashes = tmp_path / "hashes.json"
    with LocalHub(root, hash_cache=hashes) as hub:
        hf_hub_download("wan/tiny", "model.safetensors", endpoint=hub.url)
    replace_keeping_size_and_mtime(root / "wan" / "tiny" / "model.safetensors", new)
    with LocalHub(root, hash_cache=hashes) as hub:
        fetched = hf_hub_download("wan/tiny", "model.safetensors", endpoint=hub.url)
        assert Path(fetched).read_bytes() == new


def test_a_cdn_link_for_a_file_changed_since_says_so(tmp_path, localhub):
    path = localhub.root / "wan" / "tiny" / "model.safetensors"
    write_repo(localhub.root, "wan/tiny", {"model.safetensors": payload(50_000, seed=86)})
    http = urllib3.PoolManager()
    head = http.request(
        "HEAD", f"{localhub.url}/wan/tiny/resolve/main/model.safetensors", redirect=False
    )
    link = head.headers["Location"]
    path.write_bytes(payload(60_000, seed=87))
    answer = http.request("GET", link, redirect=False)
    assert answer.status == 404
    said = answer.headers["X-Error-Message"]
    assert '"model.safetensors" changed on disk after this link was issued' in said
    assert b"changed on disk" in answer.data


def test_an_old_commit_of_a_changed_folder_says_why_it_is_unknown(tmp_path):
    root = tmp_path / "served"
    write_repo(root, "wan/tiny", {"config.json": b"{}"})
    with LocalHub(root, hash_cache=tmp_path / "hashes.json") as hub:
        commit = hub.commit_of("wan/tiny")
    (root / "wan" / "tiny" / "config.json").write_bytes(b'{"a": 1}')
    with LocalHub(root, hash_cache=tmp_path / "hashes.json") as hub:
        answer = urllib3.PoolManager().request(
            "HEAD", f"{hub.url}/wan/tiny/resolve/{commit}/config.json", redirect=False
        )
    assert answer.status == 404
    assert answer.headers["X-Error-Code"] == "RevisionNotFound"
    assert "has changed since" in answer.headers["X-Error-Message"]


def test_a_file_changed_while_being_served_is_a_503_naming_it(localhub):
    write_repo(localhub.root, "wan/tiny", {"model.safetensors": payload(50_000, seed=88)})
    repo = localhub.store.find("wan/tiny")
    file = repo.resolve("main").files["model.safetensors"]
    check = _changed_check(file)
    assert check(file.local.stat()) is None
    file.local.write_bytes(payload(50_000, seed=89))
    assert "changed on disk while it was being served" in check(file.local.stat())
