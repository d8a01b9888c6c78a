"""Several endpoints end to end: a caching proxy, failover, lying and missing mirrors, the token.

The source of truth is a LocalHub on loopback; mirrors are a real nginx proxy_cache in front
of it (tests/nginx.py) or second LocalHubs over other trees.
"""

from __future__ import annotations

import _thread
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.nginx import VIA_PROXY, CachingProxy, find_nginx
from tests.world import BIG, LORA, REPO, SMALL, World, build_world, run_cli
from wandown import cli
from wandown.engine.ranges import RangeSet
from wandown.localhub import Fault, LocalHub

needs_nginx = pytest.mark.skipif(
    find_nginx() is None, reason="needs nginx (apt-get install nginx) for the caching proxy"
)


@pytest.fixture
def world(tmp_path: Path, localhub: LocalHub) -> World:
    return build_world(tmp_path / "first", localhub)


@pytest.fixture
def proxy(tmp_path: Path, localhub: LocalHub, request) -> Iterator[CachingProxy]:
    """nginx proxy_cache in front of localhub; a test marked slow_proxy gets 1 MB/s a connection."""
    if find_nginx() is None:
        pytest.skip("needs nginx (apt-get install nginx) for the caching proxy")
    rate = "1m" if "slow" in request.node.name else None
    running = CachingProxy(localhub, tmp_path / "nginx", rate)
    yield running
    running.stop()


def mirror_of(tmp_path: Path, world: World, name: str) -> LocalHub:
    """Return a second LocalHub over the truth's tree: the same commit (start it with `with`).

    A plain folder's commit id comes from its files' identities, so a copy would be another
    commit; faults make this one lie or miss a file.
    """
    return LocalHub(world.served, hash_cache=tmp_path / f"{name}-hashes.json")


def set_endpoints(world: World, endpoints: list) -> None:
    config_file = world.workdir / "config.json"
    config = json.loads(config_file.read_text())
    config["endpoints"] = endpoints
    config_file.write_text(json.dumps(config))


def second_client(tmp_path: Path, world: World) -> World:
    """Another machine: its own Wan2GP folder and config, the same catalog."""
    root = tmp_path / "second" / "Wan2GP"
    shutil.copytree(world.root / "defaults", root / "defaults")
    workdir = tmp_path / "second" / "work"
    workdir.mkdir(parents=True)
    config = json.loads((world.workdir / "config.json").read_text())
    config["wan2gp_directory"] = str(root / "ckpts")
    config["hub_directory"] = ""
    (workdir / "config.json").write_text(json.dumps(config))
    return World(root, world.served, tmp_path / "none", workdir, world.endpoint)


def bodies(hub: LocalHub, name: str) -> list:
    """Return the requests to hub that asked for the bytes of file `name`."""
    return [
        r
        for r in hub.requests
        if r.method == "GET" and name in r.path and (r.server == "cdn" or "/resolve/" in r.path)
    ]


def direct_ranges(hub: LocalHub, size: int) -> RangeSet:
    """Return the bytes the client asked of hub's CDN itself (not through the proxy).

    Each byte counts once: a range split at the tail or asked again after an error is the
    same bytes, not more of them.
    """
    asked = RangeSet()
    for record in hub.requests:
        if record.server != "cdn" or record.method != "GET" or VIA_PROXY in record.headers:
            continue
        first, _, last = record.headers.get("range", "bytes=0-").partition("=")[2].partition("-")
        asked.add(int(first), int(last) + 1 if last else size)
    return asked


@needs_nginx
def test_a_second_client_is_served_from_the_proxys_cache(
    tmp_path, world, localhub, proxy, monkeypatch, capsys
):
    set_endpoints(world, [proxy.url, localhub.url])
    assert run_cli(world, monkeypatch, "--download", BIG, SMALL) == 0
    out = capsys.readouterr().out
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()
    assert f"Complete    ckpts/{BIG}" in out and "failed over" not in out
    assert bodies(localhub, BIG), "the first client's bytes came from the Hub through the proxy"

    other = second_client(tmp_path, world)
    localhub.clear_requests()
    assert run_cli(other, monkeypatch, "--download", BIG, SMALL) == 0
    assert other.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()
    assert other.path(f"ckpts/{SMALL}").read_bytes() == world.served_file(SMALL).read_bytes()
    assert bodies(localhub, BIG) == [] and bodies(localhub, SMALL) == []

    capsys.readouterr()
    assert run_cli(other, monkeypatch, "--list", "--json") == 0
    listed = {item["dest"]: item for item in json.loads(capsys.readouterr().out)}
    assert listed[f"ckpts/{BIG}"]["endpoint"] == proxy.url
    assert listed[f"ckpts/{SMALL}"]["endpoint"] == proxy.url
    assert listed[f"loras/{LORA}"]["endpoint"] is None  # never downloaded
    assert run_cli(other, monkeypatch, "--list") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[-1] == "From"
    assert next(line for line in table if BIG in line).split()[-2:] == ["ckpts/", proxy.url]


@pytest.mark.slow
@needs_nginx
def test_stopping_a_slow_proxy_mid_download_resumes_the_file_from_the_next_endpoint(
    tmp_path, world, localhub, proxy, monkeypatch, capsys
):
    set_endpoints(world, [proxy.url, localhub.url])
    size = world.served_file(BIG).stat().st_size
    state = world.path("ckpts/.wandown") / f"{BIG}.state"
    stopped = threading.Event()
    stopped_at = []

    def stop_proxy_once_started() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                done = json.loads(state.read_text())["done"]
            except (OSError, ValueError, KeyError):
                done = []
            if sum(end - start for start, end in done) >= size // 4:
                stopped_at.append(done)
                proxy.stop()
                stopped.set()
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=stop_proxy_once_started, daemon=True)
    watcher.start()
    status = run_cli(world, monkeypatch, "--download", BIG, "--connections", "2")
    watcher.join()
    out = capsys.readouterr().out
    assert stopped.is_set(), out
    assert status == 0, out
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()
    assert f"failed over ckpts/{BIG} from {proxy.url} to {localhub.url}" in out
    asked = direct_ranges(localhub, size)
    assert 0 < asked.total() <= size - size // 4, (asked, size)
    # Nothing the proxy had served by the time it stopped was asked again of the next endpoint.
    assert RangeSet(stopped_at[0]).within(asked).total() == 0, (stopped_at, asked)


def test_a_mirror_serving_wrong_bytes_is_caught_reported_and_skipped(
    tmp_path, world, localhub, monkeypatch, capsys
):
    with mirror_of(tmp_path, world, "liar") as liar:
        liar.set_fault(REPO, BIG, Fault(corrupt_at=1000, server="cdn"))
        set_endpoints(world, [liar.url, localhub.url])
        assert run_cli(world, monkeypatch, "--download", BIG, "--jobs", "1") == 0
        out = capsys.readouterr().out
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()
    line = next((x for x in out.splitlines() if x.startswith("failed over")), out)
    assert line.startswith(f"failed over ckpts/{BIG} from {liar.url} to {localhub.url}: "), out
    assert "served bytes whose sha256 is not the source of truth's" in line
    assert "not using it again this run" in line
    assert f"Complete    ckpts/{BIG}" in out


@pytest.mark.slow
def test_an_honest_mirror_is_not_blamed_for_the_bytes_a_liar_served_before_failing_over(
    tmp_path, world, localhub, monkeypatch, capsys
):
    """The liar serves a wrong first part, then goes away; the honest peer resumes the partial.

    The mixed partial does not verify: only the liar's bytes are fetched again (from the
    honest peer), the file verifies, and the liar alone is reported and skipped.
    """
    with mirror_of(tmp_path, world, "liar") as liar, mirror_of(tmp_path, world, "honest") as honest:
        liar.set_fault(
            REPO, BIG, Fault(corrupt_at=1000, stall_after=2_000_000, stall_seconds=30, server="cdn")
        )
        set_endpoints(world, [liar.url, honest.url, localhub.url])

        def stop_the_liar_once_it_stalls() -> None:
            deadline = time.monotonic() + 20
            while not bodies(liar, BIG) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.5)  # 2 MB on loopback: sent long before this
            liar.stop()

        stopper = threading.Thread(target=stop_the_liar_once_it_stalls, daemon=True)
        stopper.start()
        status = run_cli(world, monkeypatch, "--download", BIG, "--connections", "1")
        stopper.join()
        out = capsys.readouterr().out
        honest_bytes = bodies(honest, BIG)
    assert status == 0, out
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()
    assert f"failed over ckpts/{BIG} from {liar.url} to {honest.url}: " in out
    assert f"from {honest.url} to" not in out, out  # the honest peer kept the file
    complete = next(line for line in out.splitlines() if line.startswith("Complete"))
    assert f"{liar.url} served bytes of it that are not the source of truth's" in complete
    assert f"not using {liar.url} again this run" in complete
    assert honest.url not in complete.partition("fetched again from")[0]
    assert len(honest_bytes) >= 2  # the rest, then the liar's part again
    assert bodies(localhub, BIG) == []


def test_a_trickling_mirror_is_left_and_what_it_sent_is_kept(
    tmp_path, world, localhub, monkeypatch, capsys
):
    """No other endpoint's rate is known: the floor alone leaves it, its bytes resumed."""
    monkeypatch.setattr("wandown.engine.sources.SLOW_AFTER", 1.0)
    size = world.served_file(BIG).stat().st_size
    with mirror_of(tmp_path, world, "trickle") as mirror:
        mirror.set_fault(REPO, BIG, Fault(trickle=40_000, server="cdn"))
        set_endpoints(world, [mirror.url, localhub.url])
        status = run_cli(world, monkeypatch, "--download", BIG, "--connections", "1", limit=20)
    out = capsys.readouterr().out
    assert status == 0, out
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()
    line = next((x for x in out.splitlines() if x.startswith("failed over")), out)
    assert line.startswith(f"failed over ckpts/{BIG} from {mirror.url} to {localhub.url}: "), out
    assert "is far too slow (" in line and "below the 300 kB/s a mirror must keep" in line
    # Bytes that trickled in were written as they came (not held back till a full read) and
    # the truth resumed after them.
    assert 0 < direct_ranges(localhub, size).total() < size


def test_a_mirror_answering_404_fails_over_without_an_error(
    tmp_path, world, localhub, monkeypatch, capsys
):
    with mirror_of(tmp_path, world, "partial") as mirror:
        mirror.set_fault(REPO, LORA, Fault(status=404))
        set_endpoints(world, [mirror.url, localhub.url])
        assert run_cli(world, monkeypatch, "--download", LORA, SMALL) == 0
        out = capsys.readouterr().out
        assert bodies(mirror, SMALL), "the file the mirror has came from the mirror"
    assert world.path(f"loras/{LORA}").read_bytes() == world.served_file(LORA).read_bytes()
    assert f"failed over loras/{LORA} from {mirror.url} to {localhub.url}" in out
    assert "HTTP 404" in out or "not found" in out
    assert "Failed" not in out and "error" not in out.lower()


def test_a_mirror_redirecting_to_a_host_it_cannot_reach_fails_over(
    tmp_path, world, localhub, monkeypatch, capsys
):
    with mirror_of(tmp_path, world, "far") as mirror:
        mirror.set_fault(REPO, BIG, Fault(redirect_to="http://127.0.0.1:9/blocked/here"))
        set_endpoints(world, [mirror.url, localhub.url])
        assert run_cli(world, monkeypatch, "--download", BIG) == 0
    out = capsys.readouterr().out
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()
    assert f"failed over ckpts/{BIG} from {mirror.url} to {localhub.url}: " in out
    assert "cannot reach 127.0.0.1:9" in out


def test_the_real_program_fails_over_with_endpoint_flags(tmp_path, world, localhub):
    with mirror_of(tmp_path, world, "flags") as mirror:
        mirror.set_fault(REPO, SMALL, Fault(status=404))
        result = world.run(
            "--endpoint", mirror.url, "--endpoint", localhub.url, "--download", SMALL
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert world.path(f"ckpts/{SMALL}").read_bytes() == world.served_file(SMALL).read_bytes()
    assert f"failed over ckpts/{SMALL} from {mirror.url} to {localhub.url}: " in result.stdout
    bad = world.run("--endpoint", "http://peer:99999", "--list")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "wandown: error: --endpoint='http://peer:99999' is not a valid http:// or https:// URL."
    )


@pytest.mark.parametrize("mirror_gets_token", [False, True], ids=["default", "token-true"])
def test_the_token_reaches_only_the_truth_and_peers_configured_to_get_it(
    tmp_path, world, localhub, monkeypatch, capsys, mirror_gets_token
):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_of_the_lab")
    with mirror_of(tmp_path, world, "peer") as peer:
        set_endpoints(world, [{"url": peer.url, "token": mirror_gets_token}, localhub.url])
        assert run_cli(world, monkeypatch, "--download", BIG, SMALL) == 0
    assert world.path(f"ckpts/{BIG}").read_bytes() == world.served_file(BIG).read_bytes()
    seen = {
        (name, record.server)
        for name, hub in (("peer", peer), ("truth", localhub))
        for record in hub.requests
        if record.headers.get("authorization") == "Bearer hf_secret_of_the_lab"
    }
    assert ("truth", "hub") in seen  # the metadata
    assert ("peer", "cdn") not in seen and ("truth", "cdn") not in seen  # redirects drop it
    assert (("peer", "hub") in seen) is mirror_gets_token
    assert bodies(peer, BIG), "the bytes came from the peer"


STALLED = Fault(stall_after=1_000_000, stall_seconds=30, server="cdn")
EMPTY = Fault(content_range="bytes {first}-{before}/{size}", server="cdn")  # never a byte


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (EMPTY, "no partial download is kept (nothing had arrived yet)"),
        (STALLED, "the partial download is kept, run again to resume"),
    ],
    ids=["nothing-arrived", "some-arrived"],
)
def test_ctrl_c_says_whether_a_partial_download_is_kept(
    world, localhub, monkeypatch, capsys, fault, said
):
    localhub.set_fault(REPO, BIG, fault)
    monkeypatch.chdir(world.workdir)
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)

    def interrupt_once_asked() -> None:
        deadline = time.monotonic() + 10
        while not bodies(localhub, BIG) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_once_asked, daemon=True).start()
    assert cli.main(["--download", BIG, "--connections", "1"]) == 130
    err = capsys.readouterr().err
    assert f"wandown: interrupted; {said}" in err, err


def test_failover_lines_name_the_mirror_and_give_no_advice_the_failover_made_moot(
    tmp_path, world, localhub, monkeypatch, capsys
):
    with mirror_of(tmp_path, world, "odd") as mirror:
        loop = f"{mirror.url}/{REPO}/resolve/main/{BIG}"
        mirror.set_fault(REPO, BIG, Fault(redirect_to=loop, server="hub"))
        mirror.set_fault(REPO, LORA, Fault(status=429, retry_after=3600))
        set_endpoints(world, [mirror.url, localhub.url])
        assert run_cli(world, monkeypatch, "--download", BIG, LORA) == 0
    out = capsys.readouterr().out
    moved = [line for line in out.splitlines() if line.startswith("failed over")]
    big = next(line for line in moved if BIG in line)
    assert f"{mirror.url} redirected {REPO}/{BIG} more than 10 times" in big, big
    lora = next(line for line in moved if LORA in line)
    assert "asks to wait 3600 s" in lora and "try again" not in lora, lora


def test_a_truth_out_of_reach_says_the_mirrors_need_its_metadata(
    world, localhub, monkeypatch, capsys
):
    set_endpoints(world, [localhub.url, "http://127.0.0.1:9"])
    assert run_cli(world, monkeypatch, "--list") == 0
    err = capsys.readouterr().err
    assert (
        "files without metadata from the source of truth (http://127.0.0.1:9) cannot come from "
        "the other endpoints either" in err
    )
    assert "--import-metadata FILE" in err
