"""LocalHub's pure parts: ranges, LFS rules, pointers, cursors, access decisions, config, repos."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from tests.localhub_fixtures import git_blob_sha1, lfs_pointer_oid, write_hf_cache, write_repo
from wandown.digests import BLOB_SHA1, SHA256, hash_file
from wandown.errors import ConfigError
from wandown.localhub.access import AccessPolicy, bearer_token, load_config
from wandown.localhub.hashes import HashCache
from wandown.localhub.http import header_value
from wandown.localhub.protocol import (
    UNSATISFIABLE,
    decode_cursor,
    encode_cursor,
    iso_time,
    lfs_pointer,
    parse_range,
    split_revision,
)
from wandown.localhub.repos import CacheRepo, FolderRepo, RepoStore, cache_folder_repo_id, is_lfs
from wandown.localhub.routes import content_disposition


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-4", 10, (0, 4)),
        ("bytes=3-", 10, (3, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        ("bytes=0-100", 10, (0, 9)),
        ("bytes=9-9", 10, (9, 9)),
        ("bytes=10-", 10, UNSATISFIABLE),
        ("bytes=10-12", 10, UNSATISFIABLE),
        ("bytes=-0", 10, UNSATISFIABLE),
        ("bytes=0-", 0, UNSATISFIABLE),
        ("bytes=-1", 0, UNSATISFIABLE),
        ("bytes=5-3", 10, None),
        ("bytes=0-1,4-5", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes=-", 10, None),
        ("items=0-1", 10, None),
        (" Bytes = 2-3 ", 10, (2, 3)),
    ],
)
def test_parse_range(header: str | None, size: int, expected: object) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("path", "size", "lfs"),
    [
        ("model.safetensors", 10, True),
        ("sub/Weights.BIN", 10, True),
        ("x.gguf", 1, True),
        ("data.tar.gz", 1, True),
        ("config.json", 10, False),
        ("config.json", 10 * 1024 * 1024, True),
        ("README", 5, False),
        ("events.out.tfevents.1", 5, True),
    ],
)
def test_lfs_rule(path: str, size: int, lfs: bool) -> None:
    assert is_lfs(path, size) is lfs


def test_lfs_pointer_matches_git_lfs(tmp_path: Path) -> None:
    data = b"weights" * 100
    pointer = lfs_pointer(hashlib.sha256(data).hexdigest(), len(data))
    assert (git_blob_sha1(pointer), len(pointer)) == lfs_pointer_oid(data)
    assert pointer.startswith(b"version https://git-lfs.github.com/spec/v1\noid sha256:")


def test_hash_file_reads_in_chunks(tmp_path: Path) -> None:
    data = b"x" * (3 * 1024 * 1024 + 7)
    target = tmp_path / "f"
    target.write_bytes(data)
    assert hash_file(target, [SHA256])[SHA256] == hashlib.sha256(data).hexdigest()
    assert hash_file(target, [BLOB_SHA1])[BLOB_SHA1] == git_blob_sha1(data)
    with pytest.raises(ValueError):
        hash_file(target, ["md5"])


def test_hash_cache_hashes_once_under_concurrency(tmp_path: Path) -> None:
    target = tmp_path / "root" / "f.bin"
    target.parent.mkdir()
    target.write_bytes(b"abc" * 1000)
    info = target.stat()
    cache = HashCache(tmp_path / "root", tmp_path / "hashes.json")
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                cache.digest(target, info.st_size, info.st_mtime_ns, "sha256")
            )
        )
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.hashed == 1
    assert len(set(results)) == 1
    saved = json.loads((tmp_path / "hashes.json").read_text())
    assert saved["version"] == 1
    assert len(saved["files"]) == 1
    assert cache.digest(target, info.st_size, info.st_mtime_ns, "blob_sha1") == git_blob_sha1(
        b"abc" * 1000
    )
    assert cache.hashed == 2
    cache.flush()  # a save within a second of the last one waits for a timer or a flush
    [entry] = json.loads((tmp_path / "hashes.json").read_text())["files"].values()
    assert set(entry) == {"size", "mtime_ns", "ctime_ns", "inode", "sha256", "blob_sha1"}


def test_hash_cache_ignores_a_damaged_file(tmp_path: Path) -> None:
    (tmp_path / "hashes.json").write_text("{not json")
    cache = HashCache(tmp_path, tmp_path / "hashes.json")
    assert cache.lookup(tmp_path / "x", 1, 1, "sha256") is None


def test_cursor_round_trip() -> None:
    assert decode_cursor(encode_cursor(1234)) == 1234
    assert decode_cursor(None) == 0
    assert decode_cursor("garbage!") is None
    assert decode_cursor(encode_cursor(0)) == 0


def test_split_revision() -> None:
    assert split_revision(["main", "a", "b.txt"]) == ("main", ["a", "b.txt"])
    assert split_revision(["refs%2Fpr%2F3", "x"]) == ("refs/pr/3", ["x"])
    assert split_revision(["refs", "pr", "3", "x"]) == ("refs/pr/3", ["x"])


def test_iso_time() -> None:
    assert iso_time(1_700_000_000_123_000_000) == "2023-11-14T22:13:20.123Z"


# -- access -----------------------------------------------------------------------------------


def test_bearer_token() -> None:
    assert bearer_token("Bearer hf_x") == "hf_x"
    assert bearer_token("bearer  hf_x ") == "hf_x"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def test_access_policy_decisions() -> None:
    policy = AccessPolicy(gated=["g/a"], private=["p/a"], tokens={"t1": ["g/a"], "t2": "*"})
    assert policy.denial("o/a", None, files=True) is None
    assert policy.denial("g/a", None, files=False) is None  # metadata stays public
    assert (
        policy.denial("g/a", None, files=True).status,
        policy.denial("g/a", None, files=True).code,
    ) == (401, "GatedRepo")
    assert policy.denial("g/a", "Bearer t1", files=True) is None
    assert policy.denial("p/a", "Bearer t1", files=False).status == 404
    assert policy.denial("p/a", "Bearer t2", files=True) is None
    bad = policy.denial("o/a", "Bearer nope", files=True)
    assert (bad.status, bad.code) == (401, None)


def test_load_config(tmp_path: Path) -> None:
    path = tmp_path / ".localhub.json"
    path.write_text(json.dumps({"gated": ["a/b"], "tokens": {"hf_x": "*", "hf_y": ["a/b"]}}))
    assert load_config(path) == {
        "gated": ["a/b"],
        "private": [],
        "tokens": {"hf_x": "*", "hf_y": ["a/b"]},
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1]", "must hold a JSON object"),
        ("{oops", "not valid JSON"),
        ('{"gates": []}', "unknown keys gates"),
        ('{"private": [1]}', "'private' must be a list"),
        ('{"tokens": {"hf_x": "a/b"}}', '"tokens" must map'),
    ],
)
def test_load_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / ".localhub.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.json")


# -- repos ------------------------------------------------------------------------------------


def test_store_finds_plain_and_cache_folders(tmp_path: Path) -> None:
    write_repo(tmp_path, "acme/plain", {"a.txt": b"a", ".git/HEAD": b"ref"})
    write_hf_cache(
        tmp_path / "cache" / "hub",
        "org/cached",
        {"main": "c" * 40},
        {"c" * 40: {"x.json": (b"{}", False)}},
    )
    write_hf_cache(tmp_path, "solo", {"main": "d" * 40}, {"d" * 40: {"y": (b"1", False)}})
    store = RepoStore(tmp_path)
    assert isinstance(store.find("acme/plain"), FolderRepo)
    assert isinstance(store.find("org/cached"), CacheRepo)
    assert isinstance(store.find("solo"), CacheRepo)
    assert store.find("acme/none") is None
    assert store.find("../etc") is None
    assert store.repo_ids() == ["acme/plain", "org/cached", "solo"]
    assert list(store.find("acme/plain").resolve("main").files) == ["a.txt"]  # .git skipped


def test_cache_folders_that_appear_later_are_found(tmp_path: Path) -> None:
    store = RepoStore(tmp_path)
    assert store.find("late/one") is None
    write_hf_cache(tmp_path, "late/one", {"main": "e" * 40}, {"e" * 40: {"f": (b"1", False)}})
    assert store.find("late/one") is not None


def test_cache_folder_name() -> None:
    assert cache_folder_repo_id("models--a--b") == "a/b"
    assert cache_folder_repo_id("models--gpt2") == "gpt2"
    assert cache_folder_repo_id("datasets--a--b") is None
    assert cache_folder_repo_id("models--a--b--c") is None


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("plain ASCII; q=1", "plain ASCII; q=1"),
        ("x\r\nSet-Cookie: evil=1", "xSet-Cookie: evil=1"),
        ("tab\there\x00\x7f\x85", "tabhere"),
        ("説明 €", "%E8%AA%AC%E6%98%8E %E2%82%AC"),
        ("café", "caf%C3%A9"),  # latin-1, yet sent as ASCII too
        ("bad\udcff", "bad%5Cudcff"),  # an undecodable file name byte does not raise
        (42, "42"),
    ],
)
def test_header_value(value: object, sent: str) -> None:
    assert header_value(value) == sent


@pytest.mark.parametrize(
    ("path", "disposition"),
    [
        (
            "model.safetensors",
            "filename*=UTF-8''model.safetensors; filename=\"model.safetensors\";",
        ),
        ("dir/说明.txt", "filename*=UTF-8''%E8%AF%B4%E6%98%8E.txt; filename=\"__.txt\";"),
        ('a "b"\\c.bin', "filename*=UTF-8''a%20%22b%22%5Cc.bin; filename=\"a _b__c.bin\";"),
    ],
)
def test_content_disposition(path: str, disposition: str) -> None:
    assert content_disposition(path) == f"inline; {disposition}"
    assert header_value(content_disposition(path)) == content_disposition(path)
