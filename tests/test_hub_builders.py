"""Builders for hub layouts used by the hub tests, and proof that they are realistic.

The Hugging Face cache is checked with huggingface_hub itself; the InvokeAI database uses the
`models` table of InvokeAI's database version 22 (a `config` JSON column with generated columns).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import huggingface_hub
import pytest

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def content(seed: str, size: int) -> bytes:
    """Return size bytes derived from seed (different seeds give different bytes)."""
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_sha1_hex(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def blake3_hex(data: bytes) -> str:
    import blake3

    return blake3.blake3(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_hf_cache(
    cache_dir: Path, repo_id: str, files: dict[str, bytes], commit: str = COMMIT
) -> Path:
    """Lay out a model repo as huggingface_hub does: blobs by etag, relative snapshot links."""
    repo_dir = cache_dir / ("models--" + repo_id.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    for path_in_repo, data in files.items():
        # Files over 10 MB go through LFS (etag = sha256); small test files take the LFS route
        # too unless they end in .json, which mimics what the Hub does for configs.
        etag = blob_sha1_hex(data) if path_in_repo.endswith(".json") else sha256_hex(data)
        write(repo_dir / "blobs" / etag, data)
        link = repo_dir / "snapshots" / commit / path_in_repo
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(repo_dir / "blobs" / etag, link.parent), link)
    return repo_dir


INVOKEAI_MODELS_TABLE = """
CREATE TABLE models (
    id TEXT NOT NULL PRIMARY KEY,
    hash TEXT GENERATED ALWAYS as (json_extract(config, '$.hash')) VIRTUAL NOT NULL,
    base TEXT GENERATED ALWAYS as (json_extract(config, '$.base')) VIRTUAL NOT NULL,
    type TEXT GENERATED ALWAYS as (json_extract(config, '$.type')) VIRTUAL NOT NULL,
    path TEXT GENERATED ALWAYS as (json_extract(config, '$.path')) VIRTUAL NOT NULL,
    format TEXT GENERATED ALWAYS as (json_extract(config, '$.format')) VIRTUAL NOT NULL,
    name TEXT GENERATED ALWAYS as (json_extract(config, '$.name')) VIRTUAL NOT NULL,
    source TEXT GENERATED ALWAYS as (json_extract(config, '$.source')) VIRTUAL NOT NULL,
    source_type TEXT GENERATED ALWAYS as (json_extract(config, '$.source_type')) VIRTUAL NOT NULL,
    file_size INTEGER GENERATED ALWAYS as (json_extract(config, '$.file_size')) VIRTUAL NOT NULL,
    config TEXT NOT NULL,
    created_at DATETIME NOT NULL DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    updated_at DATETIME NOT NULL DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    UNIQUE(path)
);
"""


def make_invokeai(
    root: Path,
    models: dict[str, bytes],
    *,
    hashes: dict[str, str] | None = None,
    sources: dict[str, str] | None = None,
    outside: dict[Path, bytes] | None = None,
) -> Path:
    """Build an InvokeAI install: models/<path> files and databases/invokeai.db records.

    hashes overrides a recorded hash (to model a file damaged after InvokeAI recorded it),
    sources a recorded source; outside holds models used in place, recorded by absolute path.
    """
    hashes, sources = hashes or {}, sources or {}
    (root / "databases").mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(root / "databases" / "invokeai.db")
    connection.execute(INVOKEAI_MODELS_TABLE)
    entries = [(relative, data, relative) for relative, data in models.items()]
    entries += [(str(path), data, str(path)) for path, data in (outside or {}).items()]
    for number, (recorded_path, data, label) in enumerate(entries):
        if not os.path.isabs(recorded_path):
            write(root / "models" / recorded_path, data)
        else:
            write(Path(recorded_path), data)
        config = {
            "key": f"key-{number}",
            "hash": hashes.get(label, "blake3:" + blake3_hex(data)),
            "path": recorded_path,
            "file_size": len(data),
            "name": Path(label).stem,
            "base": "any",
            "type": "main",
            "format": "checkpoint",
            "source": sources.get(label, f"someone/some-repo::{Path(label).name}"),
            "source_type": "hf_repo_id",
        }
        connection.execute(
            "INSERT INTO models (id, config) VALUES (?, ?)", (config["key"], json.dumps(config))
        )
    connection.commit()
    connection.close()
    return root


def test_hf_cache_builder_is_what_huggingface_hub_reads(tmp_path: Path) -> None:
    weights = content("weights", 4096)
    config = b'{"a": 1}'
    make_hf_cache(tmp_path, "owner/repo", {"sub/w.safetensors": weights, "config.json": config})
    info = huggingface_hub.scan_cache_dir(tmp_path)
    assert [repo.repo_id for repo in info.repos] == ["owner/repo"]
    found = huggingface_hub.try_to_load_from_cache(
        "owner/repo", "sub/w.safetensors", cache_dir=tmp_path
    )
    assert found is not None and Path(found).read_bytes() == weights
    assert Path(found).resolve().name == sha256_hex(weights)


def test_invokeai_builder_generated_columns_answer(tmp_path: Path) -> None:
    data = content("model", 1000)
    make_invokeai(tmp_path, {"sd-1/main/m.safetensors": data})
    connection = sqlite3.connect(tmp_path / "databases" / "invokeai.db")
    row = connection.execute("SELECT path, hash, file_size FROM models").fetchone()
    connection.close()
    assert row == ("sd-1/main/m.safetensors", "blake3:" + blake3_hex(data), 1000)


@pytest.mark.parametrize("size", [0, 1, 32, 33, 1000])
def test_content_is_deterministic_and_sized(size: int) -> None:
    assert len(content("x", size)) == size
    assert content("x", size) == content("x", size)
    if size:
        assert content("x", size) != content("y", size)
