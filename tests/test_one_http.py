"""Both Hub clients follow the one HTTP layer: the same waits, redirects and failure sentences.

The engine (file downloads) and the metadata client (listings) used to have a copy each of the
retry rules, the Retry-After reading, the redirect policy and the failure wording; these drive
each of them against a server on loopback and check they now say and do the same.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.test_engine_support import (
    REPO,
    NapClock,
    blob_sha1,
    job_for,
    payload,
    put_file,
    small_engine,
)
from tests.test_remote_foreign import REPOS, WANTED, ForeignHub, assert_matches_bytes, client_for
from tests.test_remote_support import FakeClock
from wandown.engine import DownloadJob
from wandown.localhub import Fault, LocalHub

NAME = "model.safetensors"
REVISION = "/api/models/acme/one/revision/main"


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


class RedirectChain:
    """A Hub whose /resolve/ URL redirects `hops` times on its own origin before the file."""

    BODY = b'{"redirected": true}\n'

    def __init__(self, hops: int) -> None:
        body = self.BODY

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                hop = int(parse_qs(urlsplit(self.path).query).get("hop", ["0"])[0])
                if hop < hops:
                    self.send_response(302)
                    self.send_header("Location", f"{urlsplit(self.path).path}?hop={hop + 1}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", f'"{blob_sha1(body)}"')
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(body)

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RedirectChain:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("hops", "state"), [(6, "complete"), (11, "failed")])
def test_a_download_follows_as_many_redirects_as_a_listing(tmp_path, hops, state):
    body = RedirectChain.BODY
    with RedirectChain(hops) as hub:
        job = DownloadJob(
            key="f",
            url=f"{hub.url}/o/r/resolve/main/f.json",
            dest=tmp_path / "f.json",
            size=len(body),
            sha256=None,
            blob_sha1=blob_sha1(body),
        )
        with small_engine() as engine:
            engine.submit(job)
            result = engine.wait(timeout=30)["f"]
    assert result.state == state, result.message
    if state == "complete":
        assert job.dest.read_bytes() == body
    else:
        assert "the Hub redirected o/r/f.json more than 10 times; not following it" in (
            result.message
        )


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
