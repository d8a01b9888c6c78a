"""--serve: one machine's proven files feed other wandowns (and huggingface_hub) over loopback.

The serving machine is the real program in a subprocess; the machines it feeds run wandown's
CLI in-process (and once as a subprocess), each with its own Wan2GP folder and cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.localhub_fixtures import fetch, git_blob_sha1, write_repo
from tests.world import BIG, LORA, PROJECT, REPO, SMALL, World, build_world
from wandown import cli
from wandown.errors import UsageError
from wandown.hub.sidecar import FileStat
from wandown.localhub import LocalHub, RequestRecord
from wandown.localhub.access import AccessPolicy
from wandown.localhub.server import LocalHubError
from wandown.proving import ProvenFile
from wandown.remote import RemoteFile
from wandown.serve import (
    ASKED_REMEMBERED,
    LOG_BURST,
    LOG_WINDOW,
    AccessLog,
    ProvenStore,
    endpoint_lines,
    exposure_warning,
    is_loopback,
    parse_address,
    public_url,
)

DOWNLOAD = ("--download", "missing")
SERVING = re.compile(r"serving (\d+) files read-only on (http://\S+) ")


@pytest.fixture
def world(tmp_path, localhub, monkeypatch) -> World:
    """A Wan2GP folder made complete from the world's Hub, as the serving machine has it."""
    built = build_world(tmp_path, localhub)
    monkeypatch.setenv("HF_ENDPOINT", localhub.url)
    assert run_cli(built.workdir / "config.json", "--download", "missing") == 0
    return built


def run_cli(config: Path, *args: str) -> int:
    return cli.main(["--config-file", str(config), *args])


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    count: int
    stderr: list[str]

    def resolve(self, repo: str, path: str, method: str = "HEAD", **headers: str):
        return fetch(f"{self.url}/{repo}/resolve/main/{path}", method, headers=headers)


@contextmanager
def serving(world: World, *flags: str, stop=signal.SIGTERM) -> Iterator[Served]:
    """Run `wandown.py --serve 127.0.0.1:0` on world's folder until the block ends."""
    process = subprocess.Popen(
        [sys.executable, str(PROJECT / "wandown.py"), "--serve", "127.0.0.1:0", *flags],
        cwd=world.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=world.env(),
    )
    lines: list[str] = []
    errors: list[str] = []
    readers = [
        threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True),
        threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any(SERVING.search(line) for line in lines):
            assert process.poll() is None, "".join(errors)
            assert time.monotonic() < deadline, "".join(lines + errors)
            time.sleep(0.05)
        found = next(m for m in map(SERVING.search, lines) if m)
        yield Served(process, found.group(2), int(found.group(1)), errors)
    finally:
        process.send_signal(stop)
        code = process.wait(timeout=15)
        for reader in readers:
            reader.join(timeout=5)
        process.stdout.close()
        process.stderr.close()
    text = "".join(lines + errors)
    assert code == 0, text
    assert "Traceback" not in text
    assert "stopped serving" in text


def second_machine(base: Path, world: World) -> Path:
    """Lay out another Wan2GP folder with the same definitions; return its config file."""
    root = base / "Wan2GP"
    shutil.copytree(world.root / "defaults", root / "defaults")
    (base / "modelhub").mkdir()
    config = base / "config.json"
    settings = {
        "wan2gp_directory": str(root / "ckpts"),
        "hub_directory": str(base / "modelhub"),
        "bandwidth_limit_kb": 0,
    }
    config.write_text(json.dumps(settings))
    return config


def needed_files(config: Path, capsys) -> dict[str, str]:
    """Return {dest: status} of every needed file, from --list --json."""
    capsys.readouterr()
    assert run_cli(config, "--list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    return {row["dest"]: row["status"] for row in rows if row["needed_by"]}


def test_serve_feeds_a_second_machine_to_complete_without_the_hub(
    world, localhub, tmp_path, monkeypatch, capsys
):
    served_here = needed_files(world.workdir / "config.json", capsys)
    assert set(served_here.values()) == {"exists"}
    with serving(world) as served:
        assert served.count == len(served_here)
        localhub.clear_requests()
        config = second_machine(tmp_path / "machine-b", world)
        monkeypatch.setenv("WANDOWN_CACHE_DIR", str(tmp_path / "machine-b-cache"))
        monkeypatch.setenv("HF_ENDPOINT", served.url)
        capsys.readouterr()
        assert run_cli(config, "--download", "missing") == 0
        out = capsys.readouterr().out
        assert localhub.requests == []  # every byte and every answer came from the peer
    root_b = config.parent / "Wan2GP"
    assert f"done: {len(served_here)} files: {len(served_here)} complete" in out
    for dest in served_here:
        assert f"Complete    {dest}" in out
        assert (root_b / dest).read_bytes() == world.path(dest).read_bytes()
    assert set(needed_files(config, capsys).values()) == {"exists"}
    log = "".join(served.stderr)
    assert f"127.0.0.1 asks for {REPO}/{BIG}\n" in log
    assert log.count(f"asks for {REPO}/{BIG}\n") == 1  # once, however many ranges it took
    assert re.search(r"stopped serving; answered \d+ requests from 1 machine\n", log)


@pytest.mark.slow
def test_air_gapped_client_needs_no_hub_when_the_server_has_everything(world, localhub, tmp_path):
    localhub.stop()  # the Hub is gone: the serving machine's metadata and files are all there is
    with serving(world) as served:
        config = second_machine(tmp_path / "lab-box", world)
        lab = {"HF_ENDPOINT": served.url, "WANDOWN_CACHE_DIR": str(tmp_path / "lab-cache")}
        result = subprocess.run(
            [sys.executable, str(PROJECT / "wandown.py"), "--config-file", str(config), *DOWNLOAD],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **lab},
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"done: {served.count} files: {served.count} complete" in result.stdout
    big = config.parent / "Wan2GP" / "ckpts" / BIG
    assert big.read_bytes() == world.served_file(BIG).read_bytes()
    assert "to prove them; their hashes are kept for the next start" in "".join(served.stderr)
    with serving(world) as again:  # what was read is remembered: the next start reads nothing
        assert again.count == served.count
    assert "to prove them" not in "".join(again.stderr)


def corrupt(path: Path) -> bytes:
    """Flip one byte of a file (same size, other bytes) by writing a new file; return the old."""
    good = path.read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0xFF
    path.unlink()
    path.write_bytes(bytes(data))
    return good


@pytest.mark.skipif(
    "--endpoint" not in cli.build_parser().format_help(),
    reason="needs --endpoint (issue 15, part 1)",
)
def test_a_peer_first_in_the_endpoints_list_leaves_only_what_it_lacks_to_the_hub(
    world, localhub, tmp_path, monkeypatch, capsys
):
    world.path(f"ckpts/{BIG}").unlink()  # the peer lacks one file
    with serving(world) as served:
        config = second_machine(tmp_path / "machine-b", world)
        monkeypatch.setenv("WANDOWN_CACHE_DIR", str(tmp_path / "machine-b-cache"))
        localhub.clear_requests()
        peer_first = ("--endpoint", served.url, "--endpoint", localhub.url)
        assert run_cli(config, *peer_first, "--download", "missing") == 0
    bodies = {r.path.partition("?")[2] for r in localhub.requests if r.server == "cdn"}
    assert bodies and all(f"path={BIG}" in query for query in bodies)  # only BIG from the Hub
    assert (config.parent / "Wan2GP" / "ckpts" / BIG).read_bytes() == world.served_file(
        BIG
    ).read_bytes()
    everything = served.count + 1
    assert f"done: {everything} files: {everything} complete" in capsys.readouterr().out


def test_only_files_proven_here_are_served(world, tmp_path):
    lora = world.path(f"loras/{LORA}")
    corrupt(lora)  # not the Hub's file, and no other copy here
    hub_copy = world.hub_dir / "some" / "renamed.bin"
    hub_copy.parent.mkdir()
    hub_copy.write_bytes(corrupt(world.path(f"ckpts/{BIG}")))  # a wrong destination, a good copy
    outside = tmp_path / "elsewhere" / SMALL
    outside.parent.mkdir()
    small = world.path(f"ckpts/{SMALL}")
    outside.write_bytes(small.read_bytes())  # the right bytes, but outside every served root
    small.unlink()
    small.symlink_to(outside)
    with serving(world) as served:
        assert served.resolve(REPO, LORA).status == 404
        assert served.resolve(REPO, SMALL).status == 404
        assert served.resolve(REPO, "../../../etc/passwd").status == 404
        head = served.resolve(REPO, BIG)
        assert head.status == 200, head.headers
        good = hub_copy.read_bytes()
        sha = hashlib.sha256(good).hexdigest()
        assert head.headers["x-linked-etag"] == f'"{sha}"'
        assert head.headers["x-linked-size"] == str(len(good))
        assert head.headers["etag"] == f'"{sha}"'
        assert head.headers["accept-ranges"] == "bytes"
        commit = head.headers["x-repo-commit"]
        assert re.fullmatch(r"[0-9a-f]{40}", commit)
        assert served.resolve(REPO, BIG, "GET").body == good
        part = served.resolve(REPO, BIG, "GET", Range="bytes=100-199")
        assert part.status == 206 and part.body == good[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(good)}"
        listing = fetch(f"{served.url}/api/models/{REPO}/tree/main?recursive=1").json()
        assert [entry["path"] for entry in listing] == [BIG]

        hub_copy.write_bytes(good)  # rewritten: no longer the file that was proven
        assert served.resolve(REPO, BIG).status == 404
    log = "".join(served.stderr)
    assert f"loras/{LORA} is not the Hub's file (sha256 differs); not served" in log
    assert f"ckpts/{SMALL} leads to {outside}, outside the Wan2GP folder" in log
    assert f"{hub_copy} changed on disk since it was proven; no longer served" in log


def test_the_token_is_required_when_set(world, tmp_path, monkeypatch, capsys):
    config = world.workdir / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "serve_token": "s3cret"}))
    with serving(world) as served:
        anonymous = served.resolve(REPO, LORA)
        assert anonymous.status == 401
        assert "needs a token" in anonymous.headers["x-error-message"]
        assert served.resolve(REPO, LORA, Authorization="Bearer wrong").status == 401
        metadata = fetch(f"{served.url}/api/models/{REPO}/revision/main")
        assert metadata.status == 401
        assert served.resolve(REPO, LORA, Authorization="Bearer s3cret").status == 200

        client = second_machine(tmp_path / "machine-b", world)
        monkeypatch.setenv("WANDOWN_CACHE_DIR", str(tmp_path / "machine-b-cache"))
        monkeypatch.setenv("HF_ENDPOINT", served.url)
        assert run_cli(client, "--download", LORA) == 1  # no token: nothing comes
        monkeypatch.setenv("HF_TOKEN", "s3cret")
        assert run_cli(client, "--reset-cache", "--download", LORA) == 0
    assert (client.parent / "Wan2GP" / "loras" / LORA).read_bytes() == world.path(
        f"loras/{LORA}"
    ).read_bytes()
    assert "s3cret" not in "".join(served.stderr) + capsys.readouterr().out


def test_huggingface_hub_downloads_from_serve(world, tmp_path, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        pytest.skip("huggingface_hub was imported in offline mode")
    world.path(f"ckpts/{BIG}").unlink()
    cache = tmp_path / "hf-cache"
    with serving(world, stop=signal.SIGINT) as served:
        for name, source in ((LORA, f"loras/{LORA}"), (SMALL, f"ckpts/{SMALL}")):
            got = hf_hub_download(REPO, name, endpoint=served.url, cache_dir=cache)
            assert Path(got).read_bytes() == world.path(source).read_bytes()
        with pytest.raises(EntryNotFoundError):
            hf_hub_download(REPO, BIG, endpoint=served.url, cache_dir=cache)
        info = HfApi(endpoint=served.url).get_paths_info(REPO, [LORA, SMALL])
        small = served.resolve(REPO, SMALL)  # a file kept in git: the Hub's ETag is its blob id
        assert (
            small.headers["etag"] == f'"{git_blob_sha1(world.path(f"ckpts/{SMALL}").read_bytes())}"'
        )
        assert "x-linked-etag" not in small.headers
        assert small.headers["x-repo-commit"] == served.resolve(REPO, LORA).headers["x-repo-commit"]
    by_path = {entry.path: entry for entry in info}
    lora = world.path(f"loras/{LORA}").read_bytes()
    assert by_path[LORA].lfs.sha256 == hashlib.sha256(lora).hexdigest()
    assert by_path[SMALL].size == world.path(f"ckpts/{SMALL}").stat().st_size


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--serve", "eighty"], "--serve takes [HOST:]PORT"),
        (["--serve", "70000"], "the port must be 0 to 65535"),
        (["--serve", "::1:8080"], "an IPv6 address goes in brackets"),
        (["--serve-token", "x"], "--serve-token goes with --serve"),
        (["--serve", "8080", "--list"], "choose one of --list and --serve"),
    ],
)
def test_bad_serve_flags_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert run_cli(tmp_path / "config.json", *args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) <= 2, err


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path, localhub, monkeypatch, capsys):
    bare = build_world(tmp_path, localhub)
    monkeypatch.setenv("HF_ENDPOINT", localhub.url)
    bare.path(f"ckpts/{SMALL}").parent.mkdir(parents=True)
    shutil.copy(bare.served_file(SMALL), bare.path(f"ckpts/{SMALL}"))  # one file to serve
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run_cli(bare.workdir / "config.json", "--serve", f"127.0.0.1:{port}") == 2
    err = capsys.readouterr().err
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in err


def test_a_port_in_use_is_told_before_any_file_is_proven(tmp_path, localhub, monkeypatch, capsys):
    """Binding comes first: on a real machine proving can take hours."""
    bare = build_world(tmp_path, localhub)
    monkeypatch.setenv("HF_ENDPOINT", localhub.url)
    bare.path(f"ckpts/{SMALL}").parent.mkdir(parents=True)
    shutil.copy(bare.served_file(SMALL), bare.path(f"ckpts/{SMALL}"))
    proved = []
    monkeypatch.setattr("wandown.serve.prove", lambda *args: proved.append(args))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run_cli(bare.workdir / "config.json", "--serve", f"127.0.0.1:{port}") == 2
    assert proved == []
    assert "Address already in use" in capsys.readouterr().err


def test_an_ipv6_address_it_cannot_listen_on_is_written_in_brackets(tmp_path, capsys):
    hub = LocalHub(tmp_path, host="fe80::1", hash_cache=tmp_path / "h.json", cdn=False)
    with pytest.raises(LocalHubError, match=r"^cannot listen on \[fe80::1\]:0: "):
        hub.bind()


@pytest.mark.parametrize(
    ("flag", "env", "config", "used"),
    [
        (None, "from-env", "from-config", "from-env"),
        ("from-flag", "from-env", None, "from-flag"),
        (None, None, "from-config", "from-config"),
    ],
)
def test_the_serve_token_comes_from_the_flag_the_environment_or_the_config(
    tmp_path, localhub, monkeypatch, flag, env, config, used
):
    bare = build_world(tmp_path, localhub)
    config_file = bare.workdir / "config.json"
    settings = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**settings, "serve_token": config}))
    monkeypatch.setenv("HF_ENDPOINT", localhub.url)
    if env is not None:
        monkeypatch.setenv("WANDOWN_SERVE_TOKEN", env)
    seen = []
    monkeypatch.setattr(
        "wandown.serve.serve", lambda loaded, address, token, *rest: seen.append(token) or 0
    )
    args = ["--serve", "0", *(["--serve-token", flag] if flag else [])]
    assert run_cli(config_file, *args) == 0
    assert seen == [used]
    help_text = " ".join(cli.build_parser().format_help().split())
    assert "Other users of this machine can see it in ps: prefer WANDOWN_SERVE_TOKEN" in help_text


def test_nothing_to_serve_is_said(tmp_path, localhub, monkeypatch, capsys):
    bare = build_world(tmp_path, localhub)  # metadata from the Hub, but no file downloaded yet
    monkeypatch.setenv("HF_ENDPOINT", localhub.url)
    assert run_cli(bare.workdir / "config.json", "--serve", "127.0.0.1:0") == 1
    assert "error: nothing to serve: no file here is proven" in capsys.readouterr().err


def test_a_serve_token_of_the_wrong_type_is_a_config_error(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text('{"serve_token": 5}')
    assert run_cli(config, "--serve", "8080") == 2
    assert "'serve_token' must be a string" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("lab-box.local:80", ("lab-box.local", 80)),
        ("[::1]:8080", ("::1", 8080)),
        (" 0 ", ("127.0.0.1", 0)),
    ],
)
def test_parse_address(text, address):
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["", ":8080", "host:", "[::1]8080", "[::1", "8080x", "-1", "٣"])
def test_parse_address_refuses(text):
    with pytest.raises(UsageError, match=r"--serve takes \[HOST:\]PORT"):
        parse_address(text)


def test_who_can_connect_is_said():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert not is_loopback("lab-box")  # a name may resolve anywhere
    assert "only this machine can connect" in (exposure_warning("127.0.0.1", token=False) or "")
    assert "without a token" in (exposure_warning("0.0.0.0", token=False) or "")
    assert exposure_warning("192.168.1.5", token=True) is None


def test_endpoint_lines_to_paste():
    assert endpoint_lines("http://lab:8080", token=False) == [
        "On the other machines:",
        "  HF_ENDPOINT=http://lab:8080 python wandown.py",
        '  or in their config.json: "endpoints": ["http://lab:8080", "https://huggingface.co"]',
    ]
    assert endpoint_lines("http://lab:8080", token=True) == [
        "On the other machines:",
        "  HF_ENDPOINT=http://lab:8080 HF_TOKEN=<the serve token> python wandown.py",
    ]
    assert endpoint_lines("http://lab:8080", False, "http://proxy.lab:3128")[-1] == (
        '  or in their config.json: "endpoints": ["http://lab:8080", "http://proxy.lab:3128"]'
    )
    assert public_url("::1", 8080) == "http://[::1]:8080"
    assert public_url("0.0.0.0", 80) == f"http://{socket.gethostname()}:80"


# -- the pieces: the proven store, and what localhub does for --serve ----------------------------


def asked(path: str, client: str = "10.0.0.5", token: str | None = None) -> RequestRecord:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return RequestRecord("hub", "GET", f"/{REPO}/resolve/main/{path}", headers, client)


def test_the_access_log_names_only_admitted_requests():
    said: list[str] = []
    log = AccessLog(
        said.append, lambda auth: auth == "Bearer s3cret", lambda repo, path: path == "a.bin"
    )
    log(asked("a.bin"))  # refused: 401
    log(asked("not-here.bin", token="s3cret"))  # 404
    log(asked("a.bin", token="wrong"))
    log(asked("a.bin", token="s3cret"))
    log(asked("a.bin", token="s3cret"))
    assert said == [f"10.0.0.5 asks for {REPO}/a.bin"]
    assert log.summary() == "stopped serving; answered 5 requests from 1 machine"


def test_a_flood_of_requests_neither_fills_the_log_nor_the_memory():
    said: list[str] = []
    now = [0.0]
    log = AccessLog(said.append, lambda auth: True, clock=lambda: now[0])
    for number in range(3 * ASKED_REMEMBERED):
        log(asked(f"{number}.bin", client=f"10.0.{number % 250}.{number % 7}"))
    assert len(said) == LOG_BURST
    assert len(log._asked) == ASKED_REMEMBERED and len(log._clients) <= ASKED_REMEMBERED
    now[0] += LOG_WINDOW
    log(asked("late.bin"))
    assert said[LOG_BURST:] == [
        f"... and {3 * ASKED_REMEMBERED - LOG_BURST} more files asked for (not shown)",
        f"10.0.0.5 asks for {REPO}/late.bin",
    ]


def test_connections_over_the_cap_are_answered_503(tmp_path):
    write_repo(tmp_path / "root", "wan/tiny", {"a.txt": b"a"})
    with LocalHub(tmp_path / "root", hash_cache=tmp_path / "h.json", max_connections=2) as hub:
        idle = [socket.create_connection(("127.0.0.1", hub.port)) for _ in range(2)]
        try:
            for held in idle:  # half a request, as a slowloris sends it
                held.sendall(b"GET /api/models/wan/tiny HTTP/1.1\r\nHost: x\r\n")
            deadline = time.monotonic() + 5
            while fetch(f"{hub.url}/api/models/wan/tiny").status != 503:
                assert time.monotonic() < deadline, "the third connection was served"
                time.sleep(0.05)
            busy = fetch(f"{hub.url}/api/models/wan/tiny")
            assert busy.status == 503 and busy.headers["retry-after"] == "5"
        finally:
            for held in idle:
                held.close()
        deadline = time.monotonic() + 5
        while fetch(f"{hub.url}/api/models/wan/tiny").status != 200:  # slots come back
            assert time.monotonic() < deadline
            time.sleep(0.05)


def proven(tmp_path: Path, name: str, data: bytes, revision: str = "main") -> ProvenFile:
    local = tmp_path / name
    local.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    remote = RemoteFile(REPO, revision, "c" * 40, f"dir/{name}", len(data), sha, None)
    return ProvenFile(remote, local, FileStat.of(os.stat(local)))


def test_the_proven_store_answers_branches_commits_and_drops_changed_files(tmp_path):
    said: list[str] = []
    store = ProvenStore(
        [proven(tmp_path, "a.bin", b"a" * 10), proven(tmp_path, "b.bin", b"b")], said.append
    )
    repo = store.find(REPO)
    assert store.repo_ids() == [REPO] and store.find("other/repo") is None
    assert repo.branches() == {"main": "c" * 40}
    for revision in ("main", "refs/heads/main", "c" * 40):
        assert list(repo.resolve(revision).files) == ["dir/a.bin", "dir/b.bin"]
    assert repo.resolve("dev") is None and repo.resolve("d" * 40) is None
    entry = repo.resolve("main").files["dir/a.bin"]
    assert entry.lfs and entry.known_digest == hashlib.sha256(b"a" * 10).hexdigest()

    (tmp_path / "b.bin").write_bytes(b"BB")  # another size: a sure change, any clock
    for _ in range(2):
        assert list(repo.resolve("main").files) == ["dir/a.bin"]
    assert len(said) == 1  # named once, however often it is asked for
    assert said[0].startswith(f"{tmp_path / 'b.bin'} changed on disk since it was proven")


def test_a_pinned_commit_is_no_branch(tmp_path):
    pinned = proven(tmp_path, "a.bin", b"a", revision="c" * 40)
    repo = ProvenStore([pinned], print).find(REPO)
    assert repo.branches() == {} and repo.resolve("main") is None
    assert list(repo.resolve("c" * 40).files) == ["dir/a.bin"]


def test_localhub_without_a_cdn_serves_lfs_files_itself(tmp_path):
    data = b"x" * 5000
    write_repo(tmp_path / "root", "wan/tiny", {"model.safetensors": data})
    with LocalHub(tmp_path / "root", cdn=False, hash_cache=tmp_path / "h.json") as hub:
        url = f"{hub.url}/wan/tiny/resolve/main/model.safetensors"
        head = fetch(url, "HEAD")
        assert head.status == 200 and "location" not in head.headers
        sha = hashlib.sha256(data).hexdigest()
        assert head.headers["x-linked-etag"] == f'"{sha}"'
        assert head.headers["x-linked-size"] == "5000"
        assert fetch(url).body == data
        assert {r.server for r in hub.requests} == {"hub"}


def test_a_required_token_refuses_anonymous_and_unknown_requests():
    policy = AccessPolicy(tokens={"s3cret": "*"}, required=True)
    anonymous = policy.denial("wan/tiny", None, files=False)
    assert (
        anonymous is not None and anonymous.status == 401 and "needs a token" in anonymous.message
    )
    assert policy.denial("wan/tiny", "Bearer nope", files=True).status == 401
    assert policy.denial("wan/tiny", "Bearer s3cret", files=True) is None
    assert AccessPolicy(tokens={"s3cret": "*"}).denial("wan/tiny", None, files=True) is None
