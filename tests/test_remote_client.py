"""MetadataClient against LocalHub on loopback: sizes, hashes, batching, cache, auth, offline."""

from __future__ import annotations

import hashlib
import os

import pytest

from wandown.hubhttp import messages
from wandown.localhub import LocalHub
from wandown.remote import FileRef, HubError, HubSettings, MetadataClient

TOKEN = "hf_test_token_0123456789"


def write(root, repo, path, data: bytes):
    target = root / repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return data


def blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@pytest.fixture
def repos(tmp_path):
    """Two small repos on disk: LFS-type files and small git files."""
    root = tmp_path / "hubroot"
    files = {
        ("owner/alpha", "model.safetensors"): write(
            root, "owner/alpha", "model.safetensors", os.urandom(3000)
        ),
        ("owner/alpha", "config.json"): write(root, "owner/alpha", "config.json", b'{"a": 1}\n'),
        ("owner/alpha", "sub/dir/weights.bin"): write(
            root, "owner/alpha", "sub/dir/weights.bin", os.urandom(1234)
        ),
        ("owner/beta", "tokenizer/vocab.txt"): write(
            root, "owner/beta", "tokenizer/vocab.txt", b"hello\nworld\n"
        ),
        ("owner/beta", "empty.json"): write(root, "owner/beta", "empty.json", b""),
    }
    return root, files


def make_client(hub, tmp_path, token=None, offline=False, **kwargs):
    settings = HubSettings(
        endpoint=hub.url if hub else "http://127.0.0.1:9", token=token, offline=offline
    )
    kwargs.setdefault("cache_path", tmp_path / "cache" / "metadata.json")
    return MetadataClient(settings, **kwargs)


def refs_of(files, revision="main"):
    return [FileRef(repo, revision, path) for repo, path in files]


def test_sizes_and_hashes_match_the_files_on_disk(repos, tmp_path):
    root, files = repos
    with LocalHub(root) as hub:
        client = make_client(hub, tmp_path)
        result = client.fetch(refs_of(files))
        assert result.errors == {}
        assert result.unknown == set()
        for (repo, path), data in files.items():
            remote = result.files[FileRef(repo, "main", path)]
            assert remote.size == len(data)
            assert remote.commit == hub.commit_of(repo)
            if path.endswith((".safetensors", ".bin")):
                assert remote.lfs
                assert remote.sha256 == hashlib.sha256(data).hexdigest()
                assert remote.blob_sha1 is None
            else:
                assert not remote.lfs
                assert remote.sha256 is None
                assert remote.blob_sha1 == blob_sha1(data)
            assert client.download_url(remote) == (
                f"{hub.url}/{repo}/resolve/{hub.commit_of(repo)}/{path}"
            )


def test_paths_info_is_batched_per_repo(tmp_path):
    root = tmp_path / "hubroot"
    wanted = []
    for index in range(23):
        repo = f"org/repo{index:02d}"
        for number in range(8):
            write(root, repo, f"part{number}.json", b"x" * number)
            wanted.append(FileRef(repo, "main", f"part{number}.json"))
    with LocalHub(root) as hub:
        result = make_client(hub, tmp_path).fetch(wanted)
        assert len(result.files) == 23 * 8
        calls = [(r.method, r.path.split("/")[5]) for r in hub.requests]
    assert sorted(set(calls)) == [("GET", "revision"), ("POST", "paths-info")]
    assert len(calls) == 2 * 23


def test_big_repo_takes_a_few_paths_info_requests(tmp_path):
    root = tmp_path / "hubroot"
    for number in range(250):
        write(root, "org/big", f"f/{number}.txt", str(number).encode())
    wanted = [FileRef("org/big", "main", f"f/{number}.txt") for number in range(250)]
    with LocalHub(root) as hub:
        result = make_client(hub, tmp_path, paths_per_request=100).fetch(wanted)
        posts = [r for r in hub.requests if r.method == "POST"]
    assert len(result.files) == 250
    assert len(posts) == 3


def test_warm_cache_makes_no_request(repos, tmp_path):
    root, files = repos
    with LocalHub(root) as hub:
        cold = make_client(hub, tmp_path).fetch(refs_of(files))
        hub.clear_requests()
        warm = make_client(hub, tmp_path).fetch(refs_of(files))
        assert hub.requests == []
    assert warm.files == cold.files


def test_cache_file_never_holds_the_token(repos, tmp_path):
    root, files = repos
    with LocalHub(root, tokens={TOKEN: "*"}) as hub:
        client = make_client(hub, tmp_path, token=TOKEN)
        result = client.fetch(refs_of(files))
        assert result.errors == {}
        assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in hub.requests)
        exported = tmp_path / "export.json"
        client.export_metadata(exported)
    for path in (client.cache.path, exported):
        assert TOKEN not in path.read_text()


def test_auth_headers_are_for_the_endpoint_only(repos, tmp_path):
    # The engine's side of it (the CDN never sees the token) is in test_engine_hub; the
    # retries and the gated-repo message of a file download are in test_engine_http.
    with LocalHub(repos[0], tokens={TOKEN: "*"}) as hub:
        client = make_client(hub, tmp_path, token=TOKEN)
        assert client.auth_headers(hub.url + "/x") == {"authorization": f"Bearer {TOKEN}"}
        assert client.auth_headers(hub.cdn_url + "/x") == {}


@pytest.mark.parametrize("token", ["hf_SECRET1\nhf_SECRET2", "hf_SECRET1\u2603"])
def test_token_http_cannot_carry_is_an_error_that_never_shows_it(repos, tmp_path, token):
    root, files = repos
    with LocalHub(root) as hub:
        client = make_client(hub, tmp_path, token=token)
        result = client.fetch(refs_of(files))
        assert hub.requests == []
        with pytest.raises(HubError) as raised:
            client.http.request("GET", f"{hub.url}/api/models/owner/alpha/revision/main")
    assert set(result.errors) == set(refs_of(files))
    for message in [*result.errors.values(), raised.value.message]:
        assert message.startswith(f"Cannot send a request to 127.0.0.1:{hub.port}: the token")
        assert "SECRET" not in message
    assert raised.value.kind == messages.UNSENDABLE
