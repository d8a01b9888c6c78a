"""Conformance: the official huggingface_hub client, unchanged, against LocalHub."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.localhub_fixtures import git_blob_sha1, payload, write_hf_cache, write_repo
from wandown.localhub import Fault, LocalHub

huggingface_hub = pytest.importorskip("huggingface_hub")
from huggingface_hub import HfApi, hf_hub_download, snapshot_download  # noqa: E402
from huggingface_hub.errors import (  # noqa: E402
    EntryNotFoundError,
    GatedRepoError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

FILES = {
    "config.json": b'{"model_type": "wan", "dim": 16}\n',
    "model.safetensors": payload(250_000, seed=3),
    "text_encoder/model.bin": payload(70_000, seed=4),
    "text_encoder/config.json": b"{}\n",
    "tokenizer/vocab.txt": b"a\nb\nc\n",
    "README.md": b"# Wan tiny\n",
}
LFS = {"model.safetensors", "text_encoder/model.bin"}


@pytest.fixture(autouse=True)
def hf_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep huggingface_hub on loopback, in tmp_path, anonymous and without Xet."""
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        pytest.skip("huggingface_hub was imported in offline mode")


@pytest.fixture
def hub(tmp_path: Path):
    root = tmp_path / "served"
    write_repo(root, "wan/tiny", FILES)
    write_repo(root, "wan/gated", {"config.json": b"{}"})
    write_repo(root, "wan/secret", {"config.json": b"{}"})
    with LocalHub(
        root,
        page_size=2,
        gated=["wan/gated"],
        private=["wan/secret"],
        tokens={"hf_reader": ["wan/gated", "wan/secret"]},
        hash_cache=tmp_path / "hashes.json",
    ) as server:
        yield server


@pytest.fixture
def api(hub: LocalHub) -> HfApi:
    return HfApi(endpoint=hub.url, token=False)


def test_hf_hub_download_small_and_lfs_files(hub: LocalHub, tmp_path: Path) -> None:
    commit = hub.commit_of("wan/tiny")
    for name in ("config.json", "model.safetensors", "text_encoder/model.bin"):
        path = Path(
            hf_hub_download(
                "wan/tiny", name, endpoint=hub.url, token=False, cache_dir=tmp_path / "cache"
            )
        )
        assert path.read_bytes() == FILES[name]
        assert path.parent.parts[-1 - name.count("/")] == commit
        blob = Path(path).resolve().name
        expected = (
            hashlib.sha256(FILES[name]).hexdigest() if name in LFS else git_blob_sha1(FILES[name])
        )
        assert blob == expected
    assert any(r.server == "cdn" for r in hub.requests)


def test_snapshot_download_fetches_every_file(hub: LocalHub, tmp_path: Path) -> None:
    folder = Path(
        snapshot_download("wan/tiny", endpoint=hub.url, token=False, cache_dir=tmp_path / "cache")
    )
    assert folder.name == hub.commit_of("wan/tiny")
    got = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    assert got == FILES
    tree_pages = [r for r in hub.requests if "/tree/" in r.path]
    assert len(tree_pages) >= 3  # page_size=2 made the client follow Link headers


def test_snapshot_download_to_a_local_dir(hub: LocalHub, tmp_path: Path) -> None:
    target = tmp_path / "local"
    snapshot_download(
        "wan/tiny", endpoint=hub.url, token=False, local_dir=target, cache_dir=tmp_path / "cache"
    )
    for name, data in FILES.items():
        assert (target / name).read_bytes() == data


def test_list_repo_tree_across_pages(api: HfApi, hub: LocalHub) -> None:
    entries = list(api.list_repo_tree("wan/tiny", recursive=True))
    files = {e.path: e for e in entries if hasattr(e, "size")}
    folders = {e.path for e in entries if not hasattr(e, "size")}
    assert set(files) == set(FILES)
    assert folders == {"text_encoder", "tokenizer"}
    for name, data in FILES.items():
        assert files[name].size == len(data)
        if name in LFS:
            assert files[name].lfs.sha256 == hashlib.sha256(data).hexdigest()
            assert files[name].lfs.size == len(data)
        else:
            assert files[name].lfs is None
            assert files[name].blob_id == git_blob_sha1(data)
    top = list(api.list_repo_tree("wan/tiny", expand=True))
    assert {e.path for e in top} == {
        "config.json",
        "model.safetensors",
        "README.md",
        "text_encoder",
        "tokenizer",
    }
    assert all(e.last_commit.oid == hub.commit_of("wan/tiny") for e in top)
    inside = list(api.list_repo_tree("wan/tiny", path_in_repo="text_encoder"))
    assert {e.path for e in inside} == {"text_encoder/model.bin", "text_encoder/config.json"}


def test_get_paths_info(api: HfApi) -> None:
    infos = api.get_paths_info("wan/tiny", ["model.safetensors", "tokenizer", "missing.txt"])
    by_path = {i.path: i for i in infos}
    assert set(by_path) == {"model.safetensors", "tokenizer"}
    weights = by_path["model.safetensors"]
    assert weights.size == len(FILES["model.safetensors"])
    assert weights.lfs.sha256 == hashlib.sha256(FILES["model.safetensors"]).hexdigest()
    assert by_path["tokenizer"].tree_id
    expanded = api.get_paths_info("wan/tiny", "config.json", expand=True)
    assert expanded[0].last_commit is not None


def test_model_info_with_files_metadata(api: HfApi, hub: LocalHub) -> None:
    info = api.model_info("wan/tiny", files_metadata=True)
    assert info.sha == hub.commit_of("wan/tiny")
    siblings = {s.rfilename: s for s in info.siblings}
    assert set(siblings) == set(FILES)
    for name, data in FILES.items():
        assert siblings[name].size == len(data)
        if name in LFS:
            assert siblings[name].lfs.sha256 == hashlib.sha256(data).hexdigest()
        else:
            assert siblings[name].blob_id == git_blob_sha1(data)
    assert api.repo_info("wan/tiny", revision=info.sha).sha == info.sha


def test_gated_and_private_repos(hub: LocalHub, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(GatedRepoError):
        hf_hub_download("wan/gated", "config.json", endpoint=hub.url, token=False, cache_dir=cache)
    path = hf_hub_download(
        "wan/gated", "config.json", endpoint=hub.url, token="hf_reader", cache_dir=cache
    )
    assert Path(path).read_bytes() == b"{}"
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("wan/secret", "config.json", endpoint=hub.url, token=False, cache_dir=cache)
    assert HfApi(endpoint=hub.url, token="hf_reader").model_info("wan/secret").private is True


def test_missing_repo_revision_and_entry(api: HfApi, hub: LocalHub, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("wan/absent", "config.json", endpoint=hub.url, token=False, cache_dir=cache)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(
            "wan/tiny", "config.json", revision="v2", endpoint=hub.url, token=False, cache_dir=cache
        )
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("wan/tiny", "nope.json", endpoint=hub.url, token=False, cache_dir=cache)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("wan/absent")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("wan/tiny", revision="v2")


def test_download_resumes_after_a_short_body(hub: LocalHub, tmp_path: Path) -> None:
    # huggingface_hub resumes after a clean early close (not after a TCP reset), from the last
    # whole chunk it wrote, so the break must come after its first chunk.
    chunk = huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE
    folder = hub.root / "wan" / "tiny"
    with open(folder / "big.bin", "wb") as handle:
        handle.truncate(chunk + 300_000)  # sparse
        handle.seek(chunk + 5)
        handle.write(b"marker")
    hub.set_fault("wan/tiny", "big.bin", Fault(short_body=chunk + 1000, times=1))
    path = hf_hub_download(
        "wan/tiny", "big.bin", endpoint=hub.url, token=False, cache_dir=tmp_path / "cache"
    )
    assert Path(path).read_bytes() == (folder / "big.bin").read_bytes()
    ranges = [r.headers.get("range") for r in hub.requests if r.server == "cdn"]
    assert ranges == [None, f"bytes={chunk}-"]  # resumed after the chunk it had kept


def test_a_cache_folder_feeds_an_air_gapped_neighbour(tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    served = tmp_path / "their-hf-home"
    write_hf_cache(
        served / "hub",
        "wan/cached",
        {"main": commit},
        {commit: {name: (data, name in LFS) for name, data in FILES.items()}},
    )
    with LocalHub(served, page_size=2, hash_cache=tmp_path / "h.json") as hub:
        folder = Path(
            snapshot_download(
                "wan/cached", endpoint=hub.url, token=False, cache_dir=tmp_path / "our-cache"
            )
        )
        assert hub.hashes.hashed == 0
    assert folder.name == commit
    for name, data in FILES.items():
        assert (folder / name).read_bytes() == data
    ours = tmp_path / "our-cache" / "models--wan--cached" / "blobs"
    theirs = served / "hub" / "models--wan--cached" / "blobs"
    assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in theirs.iterdir())


def test_non_ascii_file_names(tmp_path: Path) -> None:
    # Names like these exist on huggingface.co; the CDN names the file in Content-Disposition.
    files = {"说明.txt": "说明\n".encode(), "big€.safetensors": payload(120_000, seed=7)}
    root = tmp_path / "served"
    write_repo(root, "wan/unicode", files)
    cache = tmp_path / "cache"
    with LocalHub(root) as hub:
        for name, data in files.items():
            path = hf_hub_download(
                "wan/unicode", name, endpoint=hub.url, token=False, cache_dir=cache
            )
            assert Path(path).read_bytes() == data
            assert Path(path).name == name
        with pytest.raises(EntryNotFoundError):
            hf_hub_download("wan/unicode", "€.bin", endpoint=hub.url, token=False, cache_dir=cache)
    assert [r.server for r in hub.requests if "big" in r.path] == ["hub", "cdn"]
