"""A hub filled by the real huggingface_hub client (from LocalHub on loopback) is matched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_hub_builders import content, write
from wandown import digests
from wandown.hub import Wanted, link_into_place, scan_hub
from wandown.localhub import LocalHub

huggingface_hub = pytest.importorskip("huggingface_hub")
from huggingface_hub import constants as hf_constants  # noqa: E402

FILES = {
    "config.json": b'{"model_type": "wan"}\n',
    "diffusion/model.safetensors": content("weights", 300_000),
    "vae.safetensors": content("vae", 120_000),
}


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WANDOWN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    if hf_constants.HF_HUB_OFFLINE:
        pytest.skip("huggingface_hub was imported in offline mode")


def test_files_downloaded_by_huggingface_hub_are_matched_and_read_once(
    tmp_path: Path, monkeypatch
) -> None:
    served = tmp_path / "served"
    for name, data in FILES.items():
        write(served / "wan" / "tiny" / name, data)
    hub_dir = tmp_path / "hub"
    write(hub_dir / "loose" / "my_vae_copy.safetensors", FILES["vae.safetensors"])
    with LocalHub(served) as server:
        api = huggingface_hub.HfApi(endpoint=server.url, token=False)
        for name in ("config.json", "diffusion/model.safetensors"):
            huggingface_hub.hf_hub_download(
                "wan/tiny", name, endpoint=server.url, token=False, cache_dir=hub_dir / "hf"
            )
        infos = api.get_paths_info("wan/tiny", list(FILES))
    wanted = {}
    for info in infos:
        sha256 = info.lfs.sha256 if info.lfs else None
        blob_sha1 = None if info.lfs else info.blob_id
        wanted[info.path] = Wanted(info.size, sha256, blob_sha1, repo="wan/tiny", path=info.path)
    reads: list[Path] = []
    real = digests.hash_file
    monkeypatch.setattr(
        digests, "hash_file", lambda p, k, **kw: reads.append(p) or real(p, k, **kw)
    )
    index = scan_hub(hub_dir)
    matches = index.match(wanted.values())
    assert set(matches) == set(wanted.values())
    blobs = sorted((hub_dir / "hf" / "models--wan--tiny" / "blobs").iterdir())
    # A blob's name is a lead, not proof: each blob is read once, then the sidecar answers.
    assert sorted(reads) == sorted([hub_dir / "loose" / "my_vae_copy.safetensors", *blobs])
    reads.clear()
    assert scan_hub(hub_dir).match(wanted.values()) == matches
    assert reads == []
    for name, info in wanted.items():
        dest = tmp_path / "wan2gp" / name
        link_into_place(matches[info], dest)
        assert dest.read_bytes() == FILES[name]
    found = index.find_in_hf_cache("wan/tiny", "diffusion/model.safetensors")
    assert found == (
        matches[wanted["diffusion/model.safetensors"]],
        wanted["diffusion/model.safetensors"].sha256,
    )
