"""A server that answers nonsense ends the file in a clear failure, soon: never a busy loop."""

from __future__ import annotations

import functools
import time

import pytest

from tests.test_engine_support import (
    KIB,
    MIB,
    REPO,
    NapClock,
    drain,
    job_for,
    payload,
    put_file,
    small_engine,
)
from tests.world import BIG, build_world
from tests.world import REPO as WORLD_REPO
from tests.world import run_cli as world_cli
from wandown import engine
from wandown.engine import Engine
from wandown.hubhttp.messages import HubError
from wandown.hubhttp.retry import RetryPolicy
from wandown.localhub import Fault
from wandown.remote.http import HubHttp
from wandown.remote.settings import HubSettings

BACKWARDS = "bytes {first}-{before}/{size}"  # a 206 whose range ends before it starts


def gets(localhub, name: str, server: str = "cdn") -> list:
    return [
        r for r in localhub.requests if r.method == "GET" and name in r.path and r.server == server
    ]


def run_cli(world, monkeypatch, *args: str, clock: NapClock | None = None, limit: float = 20):
    """Run wandown.cli.main in-process with the engine on clock; interrupted after limit seconds."""
    if clock is not None:
        # The session makes its engine on first use, from wandown.engine's Engine.
        monkeypatch.setattr(
            engine, "Engine", functools.partial(Engine, clock=clock.clock, nap=clock.nap)
        )
    return world_cli(world, monkeypatch, *args, limit=limit)


def test_a_206_ending_before_it_starts_fails_the_cli_download_after_few_requests(
    tmp_path, localhub, monkeypatch, capsys
):
    world = build_world(tmp_path, localhub)
    localhub.set_fault(WORLD_REPO, BIG, Fault(content_range=BACKWARDS, server="cdn"))
    clock = NapClock()
    status = run_cli(world, monkeypatch, "--download", BIG, clock=clock)
    out = capsys.readouterr().out
    assert status == 1, out
    assert f"Failed      ckpts/{BIG}" in out
    assert "giving up after 8 retries" in out
    assert "the server answered " in out and " for bytes " in out
    # 8 connections of 9 tries at most, not the thousands a second of a loop without failures.
    assert 9 <= len(gets(localhub, BIG)) <= 8 * 9
    assert clock.naps > 0 and clock.now >= 8 * 0.5 * 0.5  # it backed off, on the fake clock
    assert not world.path(f"ckpts/{BIG}").exists()


@pytest.mark.parametrize(
    "content_range",
    [BACKWARDS, "bytes {first}-{last}", "bytes {last}-{last}/{size}", "bytes */{size}"],
    ids=["backwards", "no-total", "wrong-start", "no-range"],
)
def test_a_206_that_does_not_match_the_request_is_a_bounded_failure(
    localhub, tmp_path, content_range
):
    data = payload(1 * MIB, seed=70)
    put_file(localhub, "model.safetensors", data)
    localhub.set_fault(REPO, "model.safetensors", Fault(content_range=content_range, server="cdn"))
    job = job_for(localhub, "model.safetensors", tmp_path / "models", data)
    clock = NapClock()
    with small_engine(retries=3, clock=clock.clock, nap=clock.nap) as eng:
        eng.submit(job)
        result = eng.wait(timeout=15)[job.key]
        drain(eng.events)
    assert result.state == "failed", result.message
    assert "giving up after 3 retries" in result.message
    assert "the server answered" in result.message
    assert len(gets(localhub, "model.safetensors")) <= 4 * 4


def test_a_206_with_an_empty_body_counts_as_a_failure_too(localhub, tmp_path):
    data = payload(256 * KIB, seed=71)
    put_file(localhub, "model.safetensors", data)
    fault = Fault(content_range="bytes {first}-{last}/{size}", server="cdn")
    localhub.set_fault(REPO, "model.safetensors", fault)
    job = job_for(localhub, "model.safetensors", tmp_path / "models", data)
    with small_engine(retries=2) as eng:
        eng.submit(job)
        result = eng.wait(timeout=15)[job.key]
    assert result.state == "failed"
    assert "giving up after 2 retries" in result.message


def test_retries_still_heal_a_server_that_recovers(localhub, tmp_path):
    data = payload(1 * MIB, seed=72)
    put_file(localhub, "model.safetensors", data)
    fault = Fault(content_range=BACKWARDS, server="cdn", times=3)
    localhub.set_fault(REPO, "model.safetensors", fault)
    job = job_for(localhub, "model.safetensors", tmp_path / "models", data)
    with small_engine(connections=1) as eng:
        eng.submit(job)
        result = eng.wait(timeout=15)[job.key]
    assert result.state == "complete", result.message
    assert (tmp_path / "models" / "model.safetensors").read_bytes() == data


SCHEMES = ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher:", "https:///no-host"]


@pytest.mark.parametrize("location", SCHEMES, ids=["file", "ftp", "gopher", "no-host"])
def test_a_redirect_off_http_fails_the_cli_download_at_once(tmp_path, localhub, location):
    world = build_world(tmp_path, localhub)
    started = time.monotonic()
    # The metadata was fetched before the Hub turned bad: the engine meets the redirect.
    assert world.run("--download", BIG, "--dry-run").returncode == 0
    localhub.set_fault(WORLD_REPO, BIG, Fault(redirect_to=location, server="hub"))
    localhub.clear_requests()
    result = world.run("--download", BIG, timeout=30)
    assert result.returncode == 1
    assert f"Failed      ckpts/{BIG}: the Hub redirected " in result.stdout
    assert "not following it" in result.stdout
    assert time.monotonic() - started < 25
    heads = [r for r in localhub.requests if r.method == "HEAD" and BIG in r.path]
    assert len(heads) == 1  # refused at once, never retried


@pytest.mark.parametrize("location", SCHEMES, ids=["file", "ftp", "gopher", "no-host"])
def test_the_metadata_client_refuses_a_redirect_off_http_at_once(localhub, location):
    put_file(localhub, "model.safetensors", b"x" * 100)
    localhub.set_fault(REPO, "model.safetensors", Fault(redirect_to=location))
    http = HubHttp(HubSettings(endpoint=localhub.url), retry=RetryPolicy(sleep=pytest.fail))
    url = f"{localhub.url}/{REPO}/resolve/main/model.safetensors"
    with pytest.raises(HubError) as caught:
        http.request("HEAD", url)
    assert "not following it" in str(caught.value) or "names no host" in str(caught.value)
    assert len([r for r in localhub.requests if r.method == "HEAD"]) == 1
