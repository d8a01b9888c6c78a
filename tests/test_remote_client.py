"""MetadataClient against LocalHub on loopback: sizes, hashes, batching, cache, auth, offline."""

from __future__ import annotations

import hashlib
import os
import socket
import threading

import pytest

from tests.test_remote_support import FakeClock
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
    # retries and the gated-repo message of a file download are in test_one_http.
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


def test_not_found_messages_name_repo_revision_and_file(repos, tmp_path):
    root, _ = repos
    missing_repo = FileRef("owner/missing", "main", "a.json")
    missing_rev = FileRef("owner/alpha", "nope", "config.json")
    missing_file = FileRef("owner/alpha", "main", "not-there.json")
    folder = FileRef("owner/alpha", "main", "sub/dir")
    nonsense = FileRef("../etc", "main", "passwd")
    with LocalHub(root) as hub:
        result = make_client(hub, tmp_path).fetch(
            [missing_repo, missing_rev, missing_file, folder, nonsense]
        )
    assert result.files == {}
    assert "Repository owner/missing not found" in result.errors[missing_repo]
    assert "HF_TOKEN" in result.errors[missing_repo]  # may be private: say how to log in
    assert "Revision 'nope' not found in owner/alpha" in result.errors[missing_rev]
    assert "File 'not-there.json' not found in owner/alpha" in result.errors[missing_file]
    assert "is a folder" in result.errors[folder]
    assert "not a Hub repo id" in result.errors[nonsense]


def test_bad_token_is_named_as_such(repos, tmp_path):
    root, files = repos
    with LocalHub(root, tokens={TOKEN: "*"}) as hub:
        result = make_client(hub, tmp_path, token="hf_wrong").fetch(refs_of(files))
    assert result.files == {}
    assert set(result.errors) == set(refs_of(files))
    assert all("rejected your token" in message for message in result.errors.values())
    assert all("hf_wrong" not in message for message in result.errors.values())


def test_private_repo_opens_with_its_token(repos, tmp_path):
    root, files = repos
    beta = [ref for ref in refs_of(files) if ref.repo == "owner/beta"]
    with LocalHub(root, private=["owner/beta"], tokens={TOKEN: ["owner/beta"]}) as hub:
        anonymous = make_client(hub, tmp_path).fetch(beta)
        with_token = make_client(hub, tmp_path, token=TOKEN).fetch(beta)
    assert all("not found" in message for message in anonymous.errors.values())
    assert with_token.errors == {} and len(with_token.files) == len(beta)


def test_unreachable_endpoint_is_a_per_file_message(tmp_path):
    with socket.socket() as holder:  # bound, never listening: nobody else can take the port
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        settings = HubSettings(endpoint=f"http://127.0.0.1:{port}")
        client = MetadataClient(settings, cache_path=tmp_path / "m.json")
        ref = FileRef("o/r", "main", "a.json")
        result = client.fetch([ref])
    assert result.errors[ref] == f"Cannot reach 127.0.0.1:{port}: connection refused."


def test_offline_uses_only_the_cache_and_opens_no_socket(repos, tmp_path, monkeypatch):
    root, files = repos
    known = refs_of(files)[:3]
    never_fetched = FileRef("owner/beta", "main", "never.json")
    with LocalHub(root) as hub:
        online = make_client(hub, tmp_path).fetch(known)
        hub.clear_requests()
        offline = make_client(hub, tmp_path, offline=True, now=lambda: 9e12)  # cache long stale
        with monkeypatch.context() as patch:
            for target, name in ((socket.socket, "connect"), (socket, "create_connection")):
                patch.setattr(target, name, _refuse_connection)
            result = offline.fetch([*known, never_fetched, FileRef("nobody/x", "v2", "a")])
        assert hub.requests == []
    assert result.files == online.files
    assert result.errors == {}
    assert result.unknown == {never_fetched, FileRef("nobody/x", "v2", "a")}


def test_offline_with_an_empty_cache_knows_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _refuse_connection)
    monkeypatch.setattr(socket, "create_connection", _refuse_connection)
    refs = [FileRef("o/r", "main", "a"), FileRef("o/r", "a" * 40, "b")]
    result = make_client(None, tmp_path, offline=True).fetch(refs)
    assert result.unknown == set(refs)
    assert result.files == {} and result.errors == {}


def test_branch_is_rechecked_after_a_day(repos, tmp_path):
    root, _ = repos
    clock = FakeClock(start=1_700_000_000.0)
    ref = FileRef("owner/alpha", "main", "config.json")
    with LocalHub(root) as hub:
        first = make_client(hub, tmp_path, now=clock).fetch([ref]).files[ref]
        write(root, "owner/alpha", "config.json", b'{"a": 2, "b": 3}\n')  # main moves on
        clock.now += 23 * 3600
        hub.clear_requests()
        same = make_client(hub, tmp_path, now=clock).fetch([ref]).files[ref]
        assert hub.requests == []
        assert same == first
        clock.now += 2 * 3600
        moved = make_client(hub, tmp_path, now=clock).fetch([ref]).files[ref]
        assert [r.path.split("/")[5] for r in hub.requests] == ["revision", "paths-info"]
        assert moved.commit == hub.commit_of("owner/alpha") != first.commit
        assert moved.size == 17


def test_branch_ttl_is_configurable(repos, tmp_path):
    root, _ = repos
    clock = FakeClock()
    ref = FileRef("owner/alpha", "main", "config.json")
    with LocalHub(root) as hub:
        make_client(hub, tmp_path, now=clock, branch_ttl=60).fetch([ref])
        clock.now += 61
        hub.clear_requests()
        make_client(hub, tmp_path, now=clock, branch_ttl=60).fetch([ref])
        assert [r.path.split("/")[5] for r in hub.requests] == ["revision"]


def test_commit_revisions_skip_the_revision_lookup(repos, tmp_path):
    root, _ = repos
    with LocalHub(root) as hub:
        commit = hub.commit_of("owner/alpha")
        ref = FileRef("owner/alpha", commit, "config.json")
        result = make_client(hub, tmp_path).fetch([ref])
        assert [r.method for r in hub.requests] == ["POST"]
    assert result.files[ref].commit == commit


def test_progress_counts_files_up_to_the_total(repos, tmp_path):
    root, files = repos
    seen = []
    with LocalHub(root) as hub:
        make_client(hub, tmp_path).fetch(refs_of(files), progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, len(files))
    assert seen[-1] == (len(files), len(files))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_cancel_before_start_makes_no_request(repos, tmp_path):
    root, files = repos
    cancel = threading.Event()
    cancel.set()
    with LocalHub(root) as hub:
        result = make_client(hub, tmp_path).fetch(refs_of(files), cancel=cancel)
        assert hub.requests == []
    assert result.unknown == set(refs_of(files))


def test_reset_cache_forgets_everything(repos, tmp_path):
    root, files = repos
    with LocalHub(root) as hub:
        client = make_client(hub, tmp_path)
        client.fetch(refs_of(files))
        client.reset_cache()
        hub.clear_requests()
        client.fetch(refs_of(files))
        assert len(hub.requests) == 4  # two repos: revision + paths-info each


def test_export_import_moves_metadata_to_an_offline_machine(repos, tmp_path):
    root, files = repos
    exported = tmp_path / "exported.json"
    with LocalHub(root) as hub:
        online = make_client(hub, tmp_path)
        expected = online.fetch(refs_of(files)).files
        assert online.export_metadata(exported) == len(files) + 2
        elsewhere = MetadataClient(
            HubSettings(endpoint=hub.url, offline=True), cache_path=tmp_path / "other.json"
        )
    assert elsewhere.import_metadata(exported) == len(files) + 2
    assert elsewhere.fetch(refs_of(files)).files == expected


def test_corrupt_cache_is_reported_once_and_replaced(repos, tmp_path):
    root, files = repos
    cache_path = tmp_path / "cache" / "metadata.json"
    cache_path.parent.mkdir()
    cache_path.write_text("garbage")
    with LocalHub(root) as hub:
        client = make_client(hub, tmp_path)
        first = client.fetch(refs_of(files))
        second = client.fetch(refs_of(files))
    assert len(first.files) == len(files)
    assert len(first.warnings) == 1 and "unreadable" in first.warnings[0]
    assert second.warnings == []
    assert "wandown-metadata" in cache_path.read_text()


def _refuse_connection(*args, **kwargs):
    raise AssertionError("offline mode tried to open a connection")
