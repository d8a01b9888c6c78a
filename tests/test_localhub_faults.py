"""Each LocalHub fault, observed with plain http.client and urllib3."""

from __future__ import annotations

import time

import pytest
import urllib3

from tests.localhub_fixtures import fetch, payload, read_until_failure, write_repo
from wandown.localhub import Fault, LocalHub
from wandown.localhub.faults import FaultBoard

WEIGHTS = payload(200_000, seed=2)
CONFIG = b'{"dim": 16}\n'
REPO = "acme/flaky"


@pytest.fixture
def hub(localhub: LocalHub) -> LocalHub:
    write_repo(localhub.root, REPO, {"model.safetensors": WEIGHTS, "config.json": CONFIG})
    return localhub


def resolve(hub: LocalHub, path: str) -> str:
    return f"{hub.url}/{REPO}/resolve/main/{path}"


def cdn_link(hub: LocalHub) -> str:
    answer = fetch(resolve(hub, "model.safetensors"), method="HEAD")
    assert answer.status == 302
    return answer.headers["location"]


def test_drop_after_resets_the_connection_mid_body(hub: LocalHub) -> None:
    link = cdn_link(hub)
    hub.set_fault(REPO, "model.safetensors", Fault(drop_after=50_000, times=1))
    response, received, failure = read_until_failure(link)
    assert response.status == 200
    assert isinstance(failure, ConnectionResetError)
    assert len(received) <= 50_000
    assert received == WEIGHTS[: len(received)]
    assert fetch(link).body == WEIGHTS  # times=1: the next request is clean


def test_drop_after_applies_to_range_answers_too(hub: LocalHub) -> None:
    link = cdn_link(hub)
    hub.set_fault(REPO, "model.safetensors", Fault(drop_after=1000))
    response, received, failure = read_until_failure(link, {"Range": "bytes=100000-"})
    assert response.status == 206
    assert failure is not None
    assert received == WEIGHTS[100_000 : 100_000 + len(received)]


def test_short_body_closes_cleanly_before_content_length(hub: LocalHub) -> None:
    hub.set_fault(REPO, "config.json", Fault(short_body=5))
    response, received, failure = read_until_failure(resolve(hub, "config.json"))
    assert response.getheader("Content-Length") == str(len(CONFIG))
    assert failure is None  # a FIN, not a reset
    assert received == CONFIG[:5]
    with pytest.raises(urllib3.exceptions.ProtocolError):
        urllib3.request("GET", resolve(hub, "config.json"), retries=False)


def test_stall_pauses_after_some_bytes(hub: LocalHub) -> None:
    hub.set_fault(REPO, "config.json", Fault(stall_after=4, stall_seconds=0.5))
    started = time.monotonic()
    _response, received, failure = read_until_failure(resolve(hub, "config.json"))
    assert (received, failure) == (CONFIG, None)
    assert time.monotonic() - started >= 0.45  # a lower bound: the pause really happened


def test_stall_hits_a_client_read_timeout(hub: LocalHub) -> None:
    link = cdn_link(hub)
    hub.set_fault(REPO, "model.safetensors", Fault(stall_after=1000, stall_seconds=5))
    http = urllib3.PoolManager()
    response = http.request(
        "GET",
        link,
        preload_content=False,
        retries=False,
        timeout=urllib3.Timeout(connect=2, read=1.5),
    )
    assert response.read(1000) == WEIGHTS[:1000]
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        response.read(1000)
    response.release_conn()
    http.clear()


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_for_the_next_requests(hub: LocalHub, status: int) -> None:
    hub.set_fault(REPO, "config.json", Fault(status=status, times=2))
    first = fetch(resolve(hub, "config.json"))
    second = fetch(resolve(hub, "config.json"), method="HEAD")
    third = fetch(resolve(hub, "config.json"))
    assert (first.status, second.status, third.status) == (status, status, 200)
    assert "retry-after" not in first.headers
    assert third.body == CONFIG


def test_rate_limit_answers_429_with_retry_headers(hub: LocalHub) -> None:
    link = cdn_link(hub)
    hub.set_fault(
        REPO, "model.safetensors", Fault(status=429, retry_after=7, times=1, server="cdn")
    )
    assert fetch(resolve(hub, "model.safetensors"), method="HEAD").status == 302  # hub spared
    limited = fetch(link)
    assert limited.status == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.headers["ratelimit"] == '"api";r=0;t=7'
    assert fetch(link).body == WEIGHTS


def test_status_faults_can_be_limited_to_the_hub(hub: LocalHub) -> None:
    link = cdn_link(hub)
    hub.set_fault(REPO, "model.safetensors", Fault(status=503, retry_after=2, server="hub"))
    answer = fetch(resolve(hub, "model.safetensors"), method="HEAD")
    assert (answer.status, answer.headers["retry-after"]) == (503, "2")
    assert fetch(link).status == 200


def test_ignore_range_answers_200_with_everything(hub: LocalHub) -> None:
    link = cdn_link(hub)
    hub.set_fault(REPO, "model.safetensors", Fault(ignore_range=True))
    answer = fetch(link, headers={"Range": "bytes=10-20"})
    assert answer.status == 200
    assert "content-range" not in answer.headers
    assert answer.body == WEIGHTS


def test_corrupt_flips_one_byte_at_a_file_offset(hub: LocalHub) -> None:
    link = cdn_link(hub)
    hub.set_fault(REPO, "model.safetensors", Fault(corrupt_at=150_000))
    whole = fetch(link).body
    differing = [i for i in range(len(WEIGHTS)) if whole[i] != WEIGHTS[i]]
    assert differing == [150_000]
    assert whole[150_000] == WEIGHTS[150_000] ^ 0xFF
    ranged = fetch(link, headers={"Range": "bytes=149990-150009"}).body
    assert ranged[10] == WEIGHTS[150_000] ^ 0xFF
    assert ranged[:10] == WEIGHTS[149_990:150_000]
    assert fetch(link, headers={"Range": "bytes=0-99"}).body == WEIGHTS[:100]


def test_expired_links_are_refused_by_the_cdn(hub: LocalHub) -> None:
    old_link = cdn_link(hub)
    time.sleep(0.05)
    hub.set_fault(REPO, "model.safetensors", Fault(expire_after=0.01))
    refused = fetch(old_link)
    assert refused.status == 403
    assert b"AccessDenied" in refused.body
    hub.set_fault(REPO, "model.safetensors", Fault(expire_after=60))
    assert fetch(cdn_link(hub)).status == 200
    assert fetch(old_link).status == 200


def test_expire_for_the_next_requests_only(hub: LocalHub) -> None:
    link = cdn_link(hub)
    hub.set_fault(REPO, "model.safetensors", Fault(expire_after=0, times=2))
    statuses = [fetch(link, headers={"Range": "bytes=0-9"}).status for _ in range(3)]
    assert statuses == [403, 403, 206]


def test_faults_are_per_file_and_can_be_cleared(hub: LocalHub) -> None:
    hub.set_fault(REPO, "config.json", Fault(status=500))
    assert fetch(cdn_link(hub)).body == WEIGHTS
    assert fetch(resolve(hub, "config.json")).status == 500
    hub.clear_faults()
    assert fetch(resolve(hub, "config.json")).body == CONFIG


def test_stop_ends_a_stall_promptly(tmp_path) -> None:
    root = tmp_path / "root"
    write_repo(root, REPO, {"config.json": CONFIG})
    hub = LocalHub(root, hash_cache=tmp_path / "h.json").start()
    hub.set_fault(REPO, "config.json", Fault(stall_after=1, stall_seconds=60))
    http = urllib3.PoolManager()
    response = http.request(
        "GET",
        resolve(hub, "config.json"),
        preload_content=False,
        retries=False,
        timeout=urllib3.Timeout(connect=2, read=10),
    )
    assert response.read(1) == CONFIG[:1]
    hub.stop()  # must not wait the stall out; the client sees the connection end
    with pytest.raises(urllib3.exceptions.ProtocolError):
        response.read()
    http.clear()


# -- the fault board itself -------------------------------------------------------------------


def test_board_counts_only_the_requests_a_fault_applies_to() -> None:
    board = FaultBoard()
    board.set("a/b", "f.bin", Fault(drop_after=10, times=1))
    assert board.take("a/b", "f.bin", server="hub", sends_body=False) is None  # a redirect
    assert board.take("a/b", "f.bin", server="cdn", sends_body=True).drop_after == 10
    assert board.take("a/b", "f.bin", server="cdn", sends_body=True) is None


def test_board_strips_the_parts_that_do_not_apply() -> None:
    board = FaultBoard()
    board.set("a/b", "f.bin", Fault(status=503, corrupt_at=3, expire_after=100))
    fault = board.take("a/b", "f.bin", server="cdn", sends_body=False, link_age=1.0)
    assert (fault.status, fault.corrupt_at, fault.expire_after) == (503, None, None)
    fault = board.take("a/b", "f.bin", server="cdn", sends_body=True, link_age=500.0)
    assert (fault.corrupt_at, fault.expire_after) == (3, 100)


@pytest.mark.parametrize(
    "bad",
    [
        {"drop_after": -1},
        {"times": 1.5},
        {"status": 42},
        {"server": "edge"},
        {"stall_seconds": -1},
    ],
)
def test_fault_rejects_nonsense(bad: dict) -> None:
    with pytest.raises(ValueError):
        Fault(**bad)
