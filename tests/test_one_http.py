"""Both Hub clients follow the one HTTP layer: the same waits, redirects and failure sentences.

The engine (file downloads) and the metadata client (listings) used to have a copy each of the
retry rules, the Retry-After reading, the redirect policy and the failure wording; these drive
each of them against a server on loopback and check they now say and do the same.
"""

from __future__ import annotations

import threading

from tests.test_engine_support import REPO, job_for, payload, put_file, small_engine
from tests.test_remote_foreign import REPOS, WANTED, ForeignHub, assert_matches_bytes, client_for
from tests.test_remote_support import FakeClock
from wandown.localhub import Fault, LocalHub

NAME = "model.safetensors"
REVISION = "/api/models/acme/one/revision/main"


class NapClock:
    """A monotonic clock for the engine that only moves when it naps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0.0

    def clock(self) -> float:
        with self._lock:
            return self.now

    def nap(self, flag: threading.Event, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def download(hub: LocalHub, tmp_path, data: bytes, **engine_options):
    job = job_for(hub, NAME, tmp_path / "models", data)
    with small_engine(**engine_options) as engine:
        engine.submit(job)
        return engine.wait(timeout=30)[job.key]


# -- the engine ---------------------------------------------------------------------------------


def test_a_download_asked_to_wait_hours_gives_up_at_once_and_says_why(localhub, tmp_path):
    data = payload(64 * 1024, seed=80)
    put_file(localhub, NAME, data)
    localhub.set_fault(REPO, NAME, Fault(status=429, retry_after=99999))
    clock = NapClock()
    result = download(localhub, tmp_path, data, clock=clock.clock, nap=clock.nap)
    assert result.state == "failed"
    assert "the server asks to wait 99999 s; try again later" in result.message
    assert clock.now == 0  # no 300 s sleeps on the way to giving up
    assert len([r for r in localhub.requests if r.method == "HEAD"]) == 1


def test_a_download_survives_5xx_and_429_bursts_waiting_what_is_asked(localhub, tmp_path):
    data = payload(64 * 1024, seed=81)
    put_file(localhub, NAME, data)
    localhub.set_fault(REPO, NAME, Fault(status=503, times=2, retry_after=1, server="hub"))
    clock = NapClock()
    result = download(localhub, tmp_path, data, clock=clock.clock, nap=clock.nap)
    assert result.state == "complete", result.message
    assert 2.0 <= clock.now < 2.5


def test_a_gated_download_names_the_licence_page_and_the_token(tmp_path):
    root = tmp_path / "hub"
    data = payload(64 * 1024, seed=82)
    (root / REPO).mkdir(parents=True)
    (root / REPO / NAME).write_bytes(data)
    with LocalHub(root, gated=[REPO], tokens={"hf_other": ["someone/else"]}) as hub:
        anonymous = download(hub, tmp_path / "a", data)
        refused = download(
            hub, tmp_path / "b", data, headers_for=lambda url: {"Authorization": "Bearer hf_other"}
        )
    assert anonymous.state == refused.state == "failed"
    assert f"{REPO} is gated: accept its licence at {hub.url}/{REPO}" in anonymous.message
    assert "HF_TOKEN" in anonymous.message and "hf auth login" in anonymous.message
    assert "your token's account has not been granted access" in refused.message
    assert f"{hub.url}/{REPO}" in refused.message


# -- the metadata client ------------------------------------------------------------------------


def test_a_listing_waits_a_fractional_retry_after(tmp_path):
    clock = FakeClock()
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [(503, {"Retry-After": "1.5"}, b"")]
        result = client_for(hub, tmp_path, wait=clock.wait, clock=clock).fetch(WANTED[:1])
    assert_matches_bytes(result, WANTED[:1])
    assert clock.sleeps == [1.5]


def test_a_listing_reads_the_older_ratelimit_reset(tmp_path):
    clock = FakeClock()
    limited = (429, {"RateLimit": "limit=100, remaining=0, reset=12"}, b"")
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [limited]
        result = client_for(hub, tmp_path, wait=clock.wait, clock=clock).fetch(WANTED[:1])
    assert_matches_bytes(result, WANTED[:1])
    assert clock.sleeps == [12]


def test_a_listing_follows_a_redirect_and_the_token_stays_home(tmp_path):
    with ForeignHub(REPOS) as hub:
        elsewhere = hub.url.replace("127.0.0.1", "localhost") + REVISION
        hub.script["revision"] += [(307, {"Location": elsewhere}, b"")]
        result = client_for(hub, tmp_path, token="hf_secret").fetch(WANTED[:1])
    assert_matches_bytes(result, WANTED[:1])
    first, second = hub.requests[0][2], hub.requests[1][2]
    assert first["authorization"] == "Bearer hf_secret"
    assert "authorization" not in second


def test_a_listing_stops_after_ten_redirects(tmp_path):
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [(302, {"Location": hub.url + REVISION}, b"")] * 12
        result = client_for(hub, tmp_path).fetch(WANTED[:1])
        asked = len(hub.requests)
    assert result.errors[WANTED[0]].endswith(": more than 10 redirects.")
    assert asked == 11
