"""LocalHub over raw HTTP: resolve, ranges, API shapes, errors, access rules, keep-alive."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import threading
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest

from tests.localhub_fixtures import (
    fetch,
    git_blob_sha1,
    lfs_pointer_oid,
    payload,
    write_hf_cache,
    write_repo,
)
from wandown.localhub import LocalHub, LocalHubError
from wandown.localhub import http as localhub_http

CONFIG = b'{"model_type": "wan"}\n'
WEIGHTS = payload(300_000, seed=1)
README = b"# tiny\n"


@pytest.fixture
def hub(localhub: LocalHub) -> LocalHub:
    """The shared localhub with acme/tiny: a small file, an LFS file and a nested file."""
    write_repo(
        localhub.root,
        "acme/tiny",
        {"config.json": CONFIG, "model.safetensors": WEIGHTS, "docs/README.md": README},
    )
    return localhub


def resolve(hub: LocalHub, path: str, revision: str = "main", repo: str = "acme/tiny") -> str:
    return f"{hub.url}/{repo}/resolve/{revision}/{path}"


# -- resolve: small files ---------------------------------------------------------------------


def test_small_file_is_served_by_the_hub_with_git_blob_etag(hub: LocalHub) -> None:
    answer = fetch(resolve(hub, "config.json"))
    assert answer.status == 200
    assert answer.body == CONFIG
    assert answer.headers["etag"] == f'"{git_blob_sha1(CONFIG)}"'
    assert answer.headers["x-repo-commit"] == hub.commit_of("acme/tiny")
    assert answer.headers["content-length"] == str(len(CONFIG))
    assert answer.headers["accept-ranges"] == "bytes"
    assert not [name for name in answer.headers if name.startswith("x-xet")]


def test_head_gives_the_same_headers_without_a_body(hub: LocalHub) -> None:
    answer = fetch(resolve(hub, "docs/README.md"), method="HEAD")
    assert answer.status == 200
    assert answer.body == b""
    assert answer.headers["content-length"] == str(len(README))
    assert answer.headers["etag"] == f'"{git_blob_sha1(README)}"'


def test_resolve_accepts_models_prefix_commit_ids_and_encoded_revisions(hub: LocalHub) -> None:
    commit = hub.commit_of("acme/tiny")
    for url in (
        f"{hub.url}/models/acme/tiny/resolve/main/config.json",
        resolve(hub, "config.json", revision=commit),
        resolve(hub, "config.json", revision="%6Dain"),
    ):
        answer = fetch(url)
        assert (answer.status, answer.body) == (200, CONFIG), url
        assert answer.headers["x-repo-commit"] == commit


# -- resolve: LFS files -----------------------------------------------------------------------


def test_lfs_file_redirects_to_the_cdn_with_linked_etag_and_size(hub: LocalHub) -> None:
    answer = fetch(resolve(hub, "model.safetensors"), method="HEAD")
    assert answer.status == 302
    location = answer.headers["location"]
    assert location.startswith(hub.cdn_url + "/")
    assert answer.headers["x-linked-etag"] == f'"{hashlib.sha256(WEIGHTS).hexdigest()}"'
    assert answer.headers["x-linked-size"] == str(len(WEIGHTS))
    assert answer.headers["x-repo-commit"] == hub.commit_of("acme/tiny")
    assert not [name for name in answer.headers if name.startswith("x-xet")]
    cdn = fetch(location)
    assert cdn.status == 200
    assert cdn.body == WEIGHTS
    assert cdn.headers["etag"] == f'"{hashlib.sha256(WEIGHTS).hexdigest()}"'
    assert 'filename="model.safetensors";' in cdn.headers["content-disposition"]


def test_large_files_are_lfs_whatever_their_extension(localhub: LocalHub) -> None:
    folder = write_repo(localhub.root, "acme/big", {"notes.txt": b"x"})
    with open(folder / "notes.txt", "r+b") as handle:
        handle.truncate(10 * 1024 * 1024)  # sparse: 10 MiB without writing them
    answer = fetch(resolve(localhub, "notes.txt", repo="acme/big"), method="HEAD")
    assert answer.status == 302
    assert answer.headers["x-linked-size"] == str(10 * 1024 * 1024)


def test_a_tampered_cdn_link_is_refused(hub: LocalHub) -> None:
    location = fetch(resolve(hub, "model.safetensors"), method="HEAD").headers["location"]
    assert fetch(location.replace("path=model", "path=xmodel")).status == 403
    assert fetch(location.replace("sig=", "sig=0")).status == 403


def test_cdn_serves_parallel_ranges_on_many_connections(hub: LocalHub) -> None:
    location = fetch(resolve(hub, "model.safetensors"), method="HEAD").headers["location"]
    size, parts = len(WEIGHTS), 8
    bounds = [(i * size // parts, (i + 1) * size // parts - 1) for i in range(parts)]
    pieces: dict[int, bytes] = {}

    def get(index: int) -> None:
        first, last = bounds[index]
        answer = fetch(location, headers={"Range": f"bytes={first}-{last}"})
        assert answer.status == 206
        assert answer.headers["content-range"] == f"bytes {first}-{last}/{size}"
        pieces[index] = answer.body

    threads = [threading.Thread(target=get, args=(i,)) for i in range(parts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert b"".join(pieces[i] for i in range(parts)) == WEIGHTS


# -- ranges -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "status", "first", "last"),
    [
        ("bytes=0-0", 206, 0, 0),
        ("bytes=10-19", 206, 10, 19),
        ("bytes=100-", 206, 100, len(WEIGHTS) - 1),
        ("bytes=-5", 206, len(WEIGHTS) - 5, len(WEIGHTS) - 1),
        ("bytes=5-99999999", 206, 5, len(WEIGHTS) - 1),
        ("bytes=0-1,5-6", 200, 0, len(WEIGHTS) - 1),  # several ranges: whole file is allowed
        ("pages=1-2", 200, 0, len(WEIGHTS) - 1),
    ],
)
def test_range_requests(hub: LocalHub, header: str, status: int, first: int, last: int) -> None:
    location = fetch(resolve(hub, "model.safetensors"), method="HEAD").headers["location"]
    answer = fetch(location, headers={"Range": header})
    assert answer.status == status
    assert answer.body == WEIGHTS[first : last + 1]
    assert answer.headers["content-length"] == str(last - first + 1)
    if status == 206:
        assert answer.headers["content-range"] == f"bytes {first}-{last}/{len(WEIGHTS)}"
    else:
        assert "content-range" not in answer.headers


@pytest.mark.parametrize("header", ["bytes=300000-", "bytes=400000-400010", "bytes=-0"])
def test_range_past_the_end_is_416_with_the_size(hub: LocalHub, header: str) -> None:
    location = fetch(resolve(hub, "model.safetensors"), method="HEAD").headers["location"]
    answer = fetch(location, headers={"Range": header})
    assert answer.status == 416
    assert answer.headers["content-range"] == f"bytes */{len(WEIGHTS)}"


def test_ranges_on_small_files_and_empty_files(hub: LocalHub) -> None:
    write_repo(hub.root, "acme/tiny", {"empty.txt": b""})
    answer = fetch(resolve(hub, "config.json"), headers={"Range": "bytes=2-5"})
    assert (answer.status, answer.body) == (206, CONFIG[2:6])
    assert fetch(resolve(hub, "empty.txt"), headers={"Range": "bytes=0-"}).status == 416
    empty = fetch(resolve(hub, "empty.txt"))
    assert (empty.status, empty.body, empty.headers["content-length"]) == (200, b"", "0")


def test_head_with_range_answers_206_headers_only(hub: LocalHub) -> None:
    answer = fetch(resolve(hub, "config.json"), method="HEAD", headers={"Range": "bytes=1-3"})
    assert answer.status == 206
    assert answer.headers["content-range"] == f"bytes 1-3/{len(CONFIG)}"
    assert answer.body == b""


# -- errors -----------------------------------------------------------------------------------


def assert_hub_error(answer, status: int, code: str | None) -> None:
    assert answer.status == status
    assert answer.headers.get("x-error-code") == code
    assert answer.headers["x-error-message"]
    assert answer.json() == {"error": answer.headers["x-error-message"]}


def test_missing_repo_revision_and_entry(hub: LocalHub) -> None:
    assert_hub_error(fetch(resolve(hub, "config.json", repo="acme/none")), 401, "RepoNotFound")
    assert_hub_error(fetch(resolve(hub, "config.json", revision="v9")), 404, "RevisionNotFound")
    assert_hub_error(fetch(resolve(hub, "nope.bin")), 404, "EntryNotFound")
    assert_hub_error(fetch(f"{hub.url}/api/models/acme/none"), 401, "RepoNotFound")
    assert_hub_error(fetch(f"{hub.url}/api/models/acme/tiny/revision/v9"), 404, "RevisionNotFound")
    assert fetch(f"{hub.url}/api/spaces").status == 404


def test_commit_follows_the_files_and_old_commits_serve_only_unchanged_files(
    hub: LocalHub,
) -> None:
    before = hub.commit_of("acme/tiny")
    assert len(before) == 40
    assert before == hub.commit_of("acme/tiny")
    write_repo(hub.root, "acme/tiny", {"added.txt": b"new"})
    after = hub.commit_of("acme/tiny")
    assert after != before
    # A client that listed the repo before the change still gets the files that did not change.
    assert fetch(resolve(hub, "config.json", revision=before)).status == 200
    assert_hub_error(fetch(resolve(hub, "added.txt", revision=before)), 404, "EntryNotFound")
    write_repo(hub.root, "acme/tiny", {"config.json": b"{}"})
    changed = fetch(resolve(hub, "config.json", revision=before))
    assert_hub_error(changed, 404, "EntryNotFound")
    assert "changed on disk since commit" in changed.headers["x-error-message"]
    with pytest.raises(LocalHubError):
        hub.commit_of("acme/tiny", "0" * 40)


# -- API --------------------------------------------------------------------------------------


def test_model_info_with_blobs(hub: LocalHub) -> None:
    info = fetch(f"{hub.url}/api/models/acme/tiny?blobs=true").json()
    assert info["id"] == "acme/tiny"
    assert info["sha"] == hub.commit_of("acme/tiny")
    siblings = {s["rfilename"]: s for s in info["siblings"]}
    assert set(siblings) == {"config.json", "model.safetensors", "docs/README.md"}
    assert siblings["config.json"] == {
        "rfilename": "config.json",
        "size": len(CONFIG),
        "blobId": git_blob_sha1(CONFIG),
    }
    pointer_oid, pointer_size = lfs_pointer_oid(WEIGHTS)
    assert siblings["model.safetensors"] == {
        "rfilename": "model.safetensors",
        "size": len(WEIGHTS),
        "blobId": pointer_oid,
        "lfs": {
            "sha256": hashlib.sha256(WEIGHTS).hexdigest(),
            "size": len(WEIGHTS),
            "pointerSize": pointer_size,
        },
    }


def test_model_info_without_blobs_hashes_nothing(hub: LocalHub) -> None:
    info = fetch(f"{hub.url}/api/models/acme/tiny/revision/main").json()
    assert {s["rfilename"] for s in info["siblings"]} == {
        "config.json",
        "model.safetensors",
        "docs/README.md",
    }
    assert hub.hashes.hashed == 0


def test_tree_lists_one_level_or_everything(hub: LocalHub) -> None:
    top = fetch(f"{hub.url}/api/models/acme/tiny/tree/main").json()
    assert [(e["type"], e["path"]) for e in top] == [
        ("directory", "docs"),
        ("file", "config.json"),
        ("file", "model.safetensors"),
    ]
    everything = fetch(f"{hub.url}/api/models/acme/tiny/tree/main?recursive=true").json()
    assert [e["path"] for e in everything] == [
        "config.json",
        "docs",
        "docs/README.md",
        "model.safetensors",
    ]
    weights = next(e for e in everything if e["path"] == "model.safetensors")
    assert weights["lfs"]["oid"] == hashlib.sha256(WEIGHTS).hexdigest()
    assert weights["oid"] == lfs_pointer_oid(WEIGHTS)[0]
    inside = fetch(f"{hub.url}/api/models/acme/tiny/tree/main/docs").json()
    assert [(e["path"], e["oid"]) for e in inside] == [("docs/README.md", git_blob_sha1(README))]


def test_tree_accepts_encoded_paths_and_refuses_missing_ones(hub: LocalHub) -> None:
    write_repo(hub.root, "acme/tiny", {"docs/deep/x.txt": b"x"})
    inside = fetch(f"{hub.url}/api/models/acme/tiny/tree/main/docs%2Fdeep").json()
    assert [e["path"] for e in inside] == ["docs/deep/x.txt"]
    assert_hub_error(
        fetch(f"{hub.url}/api/models/acme/tiny/tree/main/nothing"), 404, "EntryNotFound"
    )


def test_tree_expand_adds_last_commit_and_security(hub: LocalHub) -> None:
    entries = fetch(f"{hub.url}/api/models/acme/tiny/tree/main?expand=True").json()
    commit = hub.commit_of("acme/tiny")
    for entry in entries:
        assert entry["lastCommit"]["id"] == commit
        assert entry["lastCommit"]["date"].endswith("Z")
    assert next(e for e in entries if e["type"] == "file")["securityFileStatus"]["status"] == "safe"


def test_tree_pages_follow_link_headers(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_repo(root, "acme/many", {f"f{i:02d}.txt": b"%d" % i for i in range(7)})
    with LocalHub(root, page_size=3, hash_cache=tmp_path / "h.json") as hub:
        url = f"{hub.url}/api/models/acme/many/tree/main?recursive=1"
        pages = []
        while url:
            answer = fetch(url)
            assert answer.status == 200
            pages.append([e["path"] for e in answer.json()])
            link = answer.headers.get("link")
            if link is None:
                break
            assert link.endswith('>; rel="next"') and link.startswith(f"<{hub.url}/api/")
            url = link[1 : link.index(">")]
            assert "recursive=1" in url
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [path for page in pages for path in page] == [f"f{i:02d}.txt" for i in range(7)]


def test_paths_info_form_and_json_bodies(hub: LocalHub) -> None:
    url = f"{hub.url}/api/models/acme/tiny/paths-info/main"
    form = urlencode(
        [("paths", "config.json"), ("paths", "docs"), ("paths", "gone"), ("expand", "1")]
    ).encode()
    answer = fetch(url, "POST", {"Content-Type": "application/x-www-form-urlencoded"}, form)
    entries = answer.json()
    assert [(e["type"], e["path"]) for e in entries] == [
        ("file", "config.json"),
        ("directory", "docs"),
    ]
    assert entries[0]["oid"] == git_blob_sha1(CONFIG)
    assert "lastCommit" in entries[0]
    body = json.dumps({"paths": ["model.safetensors"], "expand": False}).encode()
    answer = fetch(url, "POST", {"Content-Type": "application/json"}, body)
    [entry] = answer.json()
    assert entry["lfs"]["size"] == len(WEIGHTS)
    assert "lastCommit" not in entry
    bad = fetch(url, "POST", {"Content-Type": "application/json"}, b"{nope")
    assert bad.status == 400


def test_refs_lists_the_branch(hub: LocalHub) -> None:
    refs = fetch(f"{hub.url}/api/models/acme/tiny/refs").json()
    assert refs["branches"] == [
        {"name": "main", "ref": "refs/heads/main", "targetCommit": hub.commit_of("acme/tiny")}
    ]


# -- access -----------------------------------------------------------------------------------


@pytest.fixture
def guarded(tmp_path: Path):
    root = tmp_path / "root"
    for repo in ("open/a", "gate/a", "priv/a"):
        write_repo(root, repo, {"config.json": CONFIG})
    tokens = {"hf_all": "*", "hf_gate": ["gate/a"], "hf_none": []}
    with LocalHub(
        root, gated=["gate/a"], private=["priv/a"], tokens=tokens, hash_cache=tmp_path / "h.json"
    ) as hub:
        yield hub


@pytest.mark.parametrize(
    ("repo", "token", "status", "code"),
    [
        ("open/a", None, 200, None),
        ("gate/a", None, 401, "GatedRepo"),
        ("gate/a", "hf_none", 403, "GatedRepo"),
        ("gate/a", "hf_gate", 200, None),
        ("gate/a", "hf_all", 200, None),
        ("priv/a", None, 401, "RepoNotFound"),
        ("priv/a", "hf_gate", 404, "RepoNotFound"),
        ("priv/a", "hf_all", 200, None),
        ("none/a", "hf_all", 404, "RepoNotFound"),
        ("open/a", "hf_bad", 401, None),
    ],
)
def test_access_rules(
    guarded: LocalHub, repo: str, token: str | None, status: int, code: str | None
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = fetch(resolve(guarded, "config.json", repo=repo), headers=headers)
    assert answer.status == status
    assert answer.headers.get("x-error-code") == code
    if token == "hf_bad":
        assert answer.headers["x-error-message"] == "Invalid credentials in Authorization header"


def test_gated_metadata_stays_public_but_private_does_not(guarded: LocalHub) -> None:
    info = fetch(f"{guarded.url}/api/models/gate/a").json()
    assert info["gated"] == "manual"
    assert fetch(f"{guarded.url}/api/models/priv/a").status == 401
    answer = fetch(f"{guarded.url}/api/models/priv/a", headers={"Authorization": "Bearer hf_all"})
    assert answer.json()["private"] is True


def test_whoami(guarded: LocalHub) -> None:
    assert fetch(f"{guarded.url}/api/whoami-v2").status == 401
    ok = fetch(f"{guarded.url}/api/whoami-v2", headers={"Authorization": "Bearer hf_gate"})
    assert ok.status == 200 and ok.json()["type"] == "user"


def test_tokens_are_ignored_when_none_are_configured(hub: LocalHub) -> None:
    answer = fetch(resolve(hub, "config.json"), headers={"Authorization": "Bearer hf_real"})
    assert answer.status == 200


# -- connections ------------------------------------------------------------------------------


def test_keep_alive_carries_many_answers_on_one_connection(hub: LocalHub) -> None:
    parts = urlsplit(hub.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        for method, path, status in [
            ("HEAD", "/acme/tiny/resolve/main/config.json", 200),
            ("GET", "/acme/tiny/resolve/main/config.json", 200),
            ("GET", "/acme/tiny/resolve/main/missing", 404),
            ("HEAD", "/acme/tiny/resolve/main/model.safetensors", 302),
            ("GET", "/api/models/acme/tiny", 200),
        ]:
            connection.request(method, path)
            response = connection.getresponse()
            response.read()
            assert response.status == status
            assert response.getheader("Content-Length") is not None
            assert not response.will_close
    finally:
        connection.close()
    assert len({r.headers.get("host") for r in hub.requests}) == 1


def test_stop_closes_idle_kept_alive_connections(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_repo(root, "acme/tiny", {"config.json": CONFIG})
    hub = LocalHub(root, hash_cache=tmp_path / "h.json").start()
    parts = urlsplit(hub.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    connection.request("GET", "/acme/tiny/resolve/main/config.json")
    assert connection.getresponse().read() == CONFIG
    hub.stop()
    with pytest.raises((OSError, http.client.HTTPException)):
        connection.request("GET", "/acme/tiny/resolve/main/config.json")
        connection.getresponse()
    connection.close()


def test_requests_are_recorded_with_lower_case_headers(hub: LocalHub) -> None:
    location = fetch(resolve(hub, "model.safetensors"), headers={"X-Probe": "1"}).headers[
        "location"
    ]
    fetch(location, headers={"Range": "bytes=0-9"})
    hub_record, cdn_record = hub.requests[-2:]
    assert (hub_record.server, hub_record.method) == ("hub", "GET")
    assert hub_record.path == "/acme/tiny/resolve/main/model.safetensors"
    assert hub_record.headers["x-probe"] == "1"
    assert cdn_record.server == "cdn" and "?" in cdn_record.path
    assert cdn_record.headers["range"] == "bytes=0-9"
    hub.clear_requests()
    assert hub.requests == []


# -- Hugging Face cache folders ---------------------------------------------------------------

MAIN = "a" * 40
PR = "b" * 40


@pytest.fixture
def cache_hub(tmp_path: Path):
    root = tmp_path / "root"
    write_hf_cache(
        root / "hub",
        "org/cached",
        {"main": MAIN, "pr/1": PR},
        {
            MAIN: {"config.json": (CONFIG, False), "model.safetensors": (WEIGHTS, True)},
            PR: {"config.json": (b"{}", False)},
        },
    )
    with LocalHub(root, hash_cache=tmp_path / "h.json") as hub:
        yield hub


def test_cache_folders_are_served_with_their_refs(cache_hub: LocalHub) -> None:
    assert cache_hub.commit_of("org/cached") == MAIN
    small = fetch(resolve(cache_hub, "config.json", repo="org/cached"))
    assert small.body == CONFIG
    assert small.headers["etag"] == f'"{git_blob_sha1(CONFIG)}"'
    assert small.headers["x-repo-commit"] == MAIN
    big = fetch(resolve(cache_hub, "model.safetensors", repo="org/cached"))
    assert big.headers["x-linked-etag"] == f'"{hashlib.sha256(WEIGHTS).hexdigest()}"'
    assert fetch(big.headers["location"]).body == WEIGHTS
    pull = fetch(resolve(cache_hub, "config.json", revision="refs%2Fpr%2F1", repo="org/cached"))
    assert (pull.body, pull.headers["x-repo-commit"]) == (b"{}", PR)
    by_commit = fetch(resolve(cache_hub, "config.json", revision=PR, repo="org/cached"))
    assert by_commit.body == b"{}"
    assert cache_hub.hashes.hashed == 0  # blob names already are the digests


def test_cache_folder_revisions_that_are_not_there(cache_hub: LocalHub) -> None:
    missing = fetch(resolve(cache_hub, "config.json", revision="c" * 40, repo="org/cached"))
    assert_hub_error(missing, 404, "RevisionNotFound")
    assert_hub_error(
        fetch(resolve(cache_hub, "config.json", revision=PR[:-1] + "x", repo="org/cached")),
        404,
        "RevisionNotFound",
    )


# -- hash cache -------------------------------------------------------------------------------


def test_hash_cache_survives_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "models"
    folder = write_repo(root, "acme/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    with LocalHub(root) as hub:
        fetch(f"{hub.url}/api/models/acme/tiny?blobs=1")
        assert hub.hashes.hashed == 2
        fetch(f"{hub.url}/api/models/acme/tiny?blobs=1")
        assert hub.hashes.hashed == 2
    saved = tmp_path / ".models.localhub-hashes.json"
    assert saved.is_file()
    with LocalHub(root) as hub:
        info = fetch(f"{hub.url}/api/models/acme/tiny?blobs=1").json()
        assert hub.hashes.hashed == 0
        assert {s["rfilename"]: s["blobId"] for s in info["siblings"]}["config.json"] == (
            git_blob_sha1(CONFIG)
        )
        (folder / "config.json").write_bytes(b"{}")
        info = fetch(f"{hub.url}/api/models/acme/tiny?blobs=1").json()
        assert hub.hashes.hashed == 1
        assert {s["rfilename"]: s["blobId"] for s in info["siblings"]}["config.json"] == (
            git_blob_sha1(b"{}")
        )


def test_hash_cache_falls_back_to_the_wandown_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDOWN_CACHE_DIR", str(tmp_path / "wcache"))
    root = tmp_path / "models"
    write_repo(root, "acme/tiny", {"config.json": CONFIG})
    (tmp_path / ".models.localhub-hashes.json").mkdir()  # the beside-root spot is unusable
    with LocalHub(root) as hub:
        fetch(resolve(hub, "config.json"))
        assert hub.hashes.path is not None
        assert hub.hashes.path.is_relative_to(tmp_path / "wcache")
        assert hub.hashes.path.is_file()
    with LocalHub(root) as hub:
        fetch(resolve(hub, "config.json"))
        assert hub.hashes.hashed == 0


def test_a_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LocalHubError, match="is not a folder"):
        LocalHub(tmp_path / "nowhere")


def test_symlinked_files_in_plain_folders_are_served(hub: LocalHub) -> None:
    elsewhere = hub.root / "store" / "elsewhere.bin"  # in the served root, not in the repo
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"linked")
    os.symlink(elsewhere, hub.root / "acme" / "tiny" / "linked.txt")
    assert fetch(resolve(hub, "linked.txt")).body == b"linked"


def test_oversized_request_bodies_are_refused_without_reading_them(hub: LocalHub) -> None:
    parts = urlsplit(hub.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("POST", "/api/models/acme/tiny/paths-info/main")
        connection.putheader("Content-Length", str(50 * 1024 * 1024))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert response.will_close
    finally:
        connection.close()


# -- hostile and non-ASCII requests ----------------------------------------------------------


def raw_request(hub: LocalHub, request: bytes) -> bytes:
    """Send request bytes as they are and return everything the server answers."""
    with socket.create_connection((hub.host, hub.port), timeout=10) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while piece := connection.recv(65536):
            answer += piece
    return answer


def test_a_cr_lf_in_the_path_cannot_add_headers(hub: LocalHub, capfd) -> None:
    answer = fetch(resolve(hub, "x%0D%0ASet-Cookie:%20evil=1"))
    assert "set-cookie" not in answer.headers
    assert_hub_error(answer, 404, "EntryNotFound")
    assert answer.headers["x-error-message"] == r'Entry not found: "x\r\nSet-Cookie: evil=1"'
    assert answer.json()["error"] == answer.headers["x-error-message"]
    tree = fetch(f"{hub.url}/api/models/acme/tiny/tree/main/a%0D%0AX-Evil:%201")
    assert tree.status == 404 and "x-evil" not in tree.headers
    assert "Traceback" not in capfd.readouterr().err


def test_non_ascii_names_in_refusals_are_percent_encoded_in_headers(hub: LocalHub, capfd) -> None:
    answer = fetch(resolve(hub, "%E2%82%AC.bin"))
    assert answer.status == 404
    assert answer.headers["x-error-message"] == 'Entry not found: "%E2%82%AC.bin"'
    assert answer.json() == {"error": 'Entry not found: "€.bin"'}
    revision = fetch(resolve(hub, "config.json", revision="v%C3%A9"))
    assert revision.json() == {"error": 'Invalid rev id: "vé"'}
    assert revision.headers["x-error-message"] == 'Invalid rev id: "v%C3%A9"'
    # A raw latin-1 byte in the request line (http.server reads it as "é") is refused too.
    raw = raw_request(hub, b"GET /acme/tiny/resolve/main/\xe9.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 404 ")
    assert b'X-Error-Message: Entry not found: "%C3%A9.bin"\r\n' in raw
    assert capfd.readouterr().err == ""


def test_non_ascii_file_names_are_served_by_hub_and_cdn(hub: LocalHub) -> None:
    weights = payload(200_000, seed=9)
    write_repo(hub.root, "acme/tiny", {"说明.txt": README, "big€.safetensors": weights})
    small = fetch(resolve(hub, quote("说明.txt")))
    assert (small.status, small.body) == (200, README)
    assert small.headers["content-disposition"] == (
        "inline; filename*=UTF-8''%E8%AF%B4%E6%98%8E.txt; filename=\"__.txt\";"
    )
    redirect = fetch(resolve(hub, quote("big€.safetensors")), method="HEAD")
    assert redirect.status == 302
    cdn = fetch(redirect.headers["location"])
    assert (cdn.status, cdn.body) == (200, weights)
    disposition = cdn.headers["content-disposition"]
    assert "filename*=UTF-8''big%E2%82%AC.safetensors;" in disposition
    assert 'filename="big_.safetensors";' in disposition


def test_a_bug_answers_500_and_logs_one_line_without_a_traceback(
    hub: LocalHub, capfd, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(file):
        raise RuntimeError("hash table\non fire")

    monkeypatch.setattr(hub, "meta", broken)
    answer = fetch(resolve(hub, "config.json"))
    assert (answer.status, answer.json()) == (500, {"error": "Internal error in localhub"})
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines() == [
        "localhub: internal error answering GET '/acme/tiny/resolve/main/config.json': "
        "RuntimeError: hash table on fire"
    ]


def test_a_bug_while_writing_headers_still_answers_500(
    hub: LocalHub, capfd, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = localhub_http.header_value

    def header_value(value: object) -> str:
        if str(value).startswith("inline;"):
            raise UnicodeEncodeError("latin-1", str(value), 0, 1, "cannot encode")
        return real(value)

    monkeypatch.setattr(localhub_http, "header_value", header_value)
    answer = fetch(resolve(hub, "config.json"))
    assert (answer.status, answer.json()) == (500, {"error": "Internal error in localhub"})
    assert "content-disposition" not in answer.headers and "etag" not in answer.headers
    assert len(capfd.readouterr().err.splitlines()) == 1


def test_odd_request_targets_and_lengths_get_clean_answers(hub: LocalHub, capfd) -> None:
    absolute = f"http://{hub.host}:{hub.port}/acme/tiny/resolve/main/config.json".encode()
    assert raw_request(hub, b"GET " + absolute + b" HTTP/1.1\r\nHost: x\r\n\r\n").endswith(CONFIG)
    broken = raw_request(hub, b"GET http://[::1/x HTTP/1.1\r\nHost: x\r\n\r\n")
    assert broken.startswith(b"HTTP/1.1 404 ")
    superscript = raw_request(
        hub, b"POST /api/models/acme/tiny/paths-info/main HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n"
    )
    assert superscript.startswith(b"HTTP/1.1 400 ")
    assert capfd.readouterr().err == ""


def test_a_file_link_leading_outside_the_served_root_is_never_served(
    hub: LocalHub, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"  # beside the served root, as /etc/passwd would be
    secret.write_bytes(b"root:x:0:0\n")
    folder = hub.root / "acme" / "tiny"
    (folder / "pw.txt").symlink_to(secret)
    (folder / "again.json").symlink_to(folder / "config.json")  # inside the root: served
    assert fetch(resolve(hub, "pw.txt")).status == 404
    assert fetch(resolve(hub, "again.json")).body == CONFIG
    listing = json.loads(fetch(f"{hub.url}/api/models/acme/tiny/tree/main").body)
    assert "pw.txt" not in [entry["path"] for entry in listing]

    weights = {"w.safetensors": (WEIGHTS, True), "config.json": (CONFIG, False)}
    write_hf_cache(hub.root / "caches", "acme/cached", {"main": "c" * 40}, {"c" * 40: weights})
    redirect = fetch(resolve(hub, "w.safetensors", repo="acme/cached"))
    assert redirect.status == 302
    assert fetch(redirect.headers["location"]).body == WEIGHTS  # snapshot link into its blobs/
    assert fetch(resolve(hub, "config.json", repo="acme/cached")).body == CONFIG
