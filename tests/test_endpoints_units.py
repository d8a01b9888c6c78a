"""The pieces of several endpoints: parsing and messages, the token rule, failover order, log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import urllib3

from tests.test_engine_support import REPO, job_for, payload, put_file
from wandown import cli
from wandown.config import load_config
from wandown.endpoints import Endpoint, from_config, from_flags
from wandown.engine.cancel import CancelFlag
from wandown.engine.download import FileDownload
from wandown.engine.events import Reporter
from wandown.engine.fetch import Resolver
from wandown.engine.partial import UNKNOWN_SOURCE, PartialState, load_state, save_state
from wandown.engine.ranges import RangeSet
from wandown.engine.ratelimit import RateLimiter
from wandown.engine.sources import (
    MIRROR_FLOOR,
    SLOW_AFTER,
    EndpointPlan,
    PaceWatch,
    Sources,
    pace_floor,
)
from wandown.errors import ConfigError
from wandown.hubhttp.urls import request_headers, timeout
from wandown.localhub import LocalHub
from wandown.plain import PlainReporter
from wandown.remote.http import HubHttp
from wandown.remote.settings import HubSettings, with_endpoints
from wandown.state import FileView
from wandown.status import Status

PEER, PROXY, HUB = "http://10.0.0.5:8080", "http://proxy.lab:3128/hf", "https://huggingface.co"


def test_the_last_endpoint_is_the_truth_and_gets_the_token_by_default():
    assert from_config([PEER, PROXY + "/", HUB], "c.json") == (
        Endpoint(PEER),
        Endpoint(PROXY),
        Endpoint(HUB, token=True, truth=True),
    )
    marked = from_config([{"url": PEER, "truth": True}, {"url": PROXY, "token": True}], "c")
    assert marked == (Endpoint(PEER, token=True, truth=True), Endpoint(PROXY, token=True))
    assert from_config([], "c.json") == ()
    assert from_flags([PEER, HUB])[-1].truth


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (PEER, "c.json: 'endpoints' must be a list of URLs, not \"http://10.0.0.5:8080\""),
        ([PEER, "ftp://x"], "c.json: 'endpoints'[1]='ftp://x' is not a valid http:// or https://"),
        ([PEER, PEER], "c.json: 'endpoints' names http://10.0.0.5:8080 twice"),
        ([{"url": PEER, "tokn": True}], "'endpoints'[0] has unknown key 'tokn'"),
        ([{"url": PEER, "token": "yes"}], "'endpoints'[0]: 'token' must be true or false"),
        ([{"token": True}], "'endpoints'[0] needs a 'url' string"),
        ([3], "'endpoints'[0] must be a URL or an object like"),
        (["http://me:pw@peer"], "'endpoints'[0] must not contain a user name or password."),
        (["http://Peer.Lab:1", "http://peer.lab:1"], "names http://peer.lab:1 twice"),
        (
            ["http://a b:1"],
            "'endpoints'[0]='http://a b:1': 'a b' is not a host name (letters, digits, dots and",
        ),
        (["http://peer<x>:1"], "'peer<x>' is not a host name"),
        (
            [{"url": PEER, "truth": True}, {"url": HUB, "truth": True}],
            "marks 2 endpoints as the source of truth; mark one at most",
        ),
    ],
)
def test_a_bad_endpoints_value_is_one_clear_message(raw, message):
    with pytest.raises(ConfigError) as raised:
        from_config(raw, "c.json")
    assert message in str(raised.value)
    assert "pw" not in str(raised.value)


def test_the_config_file_names_itself_and_the_flags_override_it(tmp_path, monkeypatch, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"endpoints": [PEER, "nonsense"]}))
    with pytest.raises(ConfigError, match=r"config.json: 'endpoints'\[1\]='nonsense'"):
        load_config(config)
    config.write_text(json.dumps({"endpoints": [PEER, HUB]}))
    assert [e.url for e in load_config(config).endpoints] == [PEER, HUB]
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--endpoint", "nowhere", "--list"]) == 2
    assert "error: --endpoint='nowhere' is not a valid http:// or https:// URL" in (
        capsys.readouterr().err
    )


def test_the_truth_is_the_metadata_endpoint_and_the_token_goes_only_to_its_homes():
    settings = with_endpoints(
        HubSettings(endpoint="http://ignored", token="t"),
        from_config([PEER, {"url": PROXY, "token": True}, HUB], "c"),
    )
    assert settings.endpoint == HUB
    http = HubHttp(settings)
    assert http.auth_headers(HUB + "/api/models/x") == {"authorization": "Bearer t"}
    assert http.auth_headers("http://proxy.lab:3128/other") != {}  # the origin is the unit
    assert http.auth_headers(PEER + "/x/resolve/main/a") == {}
    assert http.auth_headers("https://cdn-lfs.hf.co/x") == {}


def test_the_http_layer_drops_the_token_for_every_url_off_its_homes_whatever_it_is_given():
    token = {"Authorization": "Bearer t"}
    homes = (HUB, PROXY)
    assert "Authorization" in request_headers(HUB + "/a", homes, token)
    assert "Authorization" in request_headers("http://proxy.lab:3128/b", homes, token)
    assert "Authorization" not in request_headers(PEER + "/a", homes, token)
    # A careless caller that hands the token for any URL still cannot leak it to a peer.
    pool = urllib3.PoolManager()
    careless = Resolver(pool, PEER + "/r/resolve/c/f", lambda url: token, timeout())
    careless.token_homes = (HUB,)
    assert "Authorization" not in careless.headers(careless.url)
    assert "Authorization" not in careless.elsewhere(PEER + "/other").headers(PEER + "/other")
    assert "Authorization" in careless.elsewhere(HUB + "/x").headers(HUB + "/x")


def test_a_file_goes_to_the_endpoints_in_order_and_a_liar_is_skipped_for_the_rest_of_the_run():
    sources = Sources(EndpointPlan((PEER, PROXY, HUB), HUB, (HUB,)))
    path = "/owner/model/resolve/abc/w.safetensors"
    first = sources.for_url(HUB + path)
    assert (first.url, first.several, first.is_truth) == (PEER + path, True, False)
    assert first.advance() and first.url == PROXY + path
    sources.lied(PROXY, "bad bytes")
    assert first.advance() and first.is_truth and not first.advance()
    later = sources.for_url(HUB + path)
    assert later.url == PEER + path and later.advance() and later.url == HUB + path
    sources.lied(PEER, "bad bytes")
    assert sources.for_url(HUB + path).url == HUB + path
    elsewhere = sources.for_url("https://other.example/o/m/resolve/main/x")
    assert not elsewhere.several and elsewhere.is_truth  # not on the truth: as it was


def test_a_rate_far_below_another_endpoints_is_named():
    sources = Sources(EndpointPlan((PEER, HUB), HUB, (HUB,)))
    assert sources.far_below_others(PEER, 1e5) is None
    sources.note_rate(HUB, 50e6)
    assert sources.far_below_others(PEER, 10e6) is None
    assert sources.far_below_others(PEER, 1e6) == (
        "1.00 MB/s here, 50.00 MB/s seen from huggingface.co"
    )


def test_a_pass_far_slower_than_another_endpoint_is_left_after_a_few_seconds():
    sources = Sources(EndpointPlan((PEER, HUB), HUB, (HUB,)))
    now, done, left = [0.0], [0], []
    on_peer = sources.for_url(HUB + "/o/m/resolve/c/f")
    watch = PaceWatch(on_peer, lambda: done[0], left.append, clock=lambda: now[0])
    sources.note_rate(HUB, 20e6)
    for second in range(1, 10):
        now[0], done[0] = float(second), second * 1_000_000  # 1 MB/s, 20 times slower
        if watch.check():
            break
    assert now[0] == SLOW_AFTER
    assert left == [
        f"{PEER} is far slower than another endpoint "
        "(1.00 MB/s here, 20.00 MB/s seen from huggingface.co)"
    ]
    on_truth = sources.for_url(HUB + "/o/m/resolve/c/g")
    assert on_truth.advance() and on_truth.is_truth
    last = PaceWatch(on_truth, lambda: done[0], left.append, clock=lambda: now[0])
    now[0] += 10.0
    assert not last.check()  # the last endpoint is never left for being slow
    sources.note_rate(HUB, 0.0)
    fast = PaceWatch(
        sources.for_url(HUB + "/o/m/resolve/c/h"),
        lambda: done[0],
        left.append,
        clock=lambda: now[0],
    )
    now[0] += 10.0
    done[0] += 150_000_000  # 15 MB/s: within a factor of 10
    assert not fast.check() and len(left) == 1


def test_the_plain_log_says_a_failover_once_in_one_line():
    view = FileView("ckpts/a.bin", "a.bin", "ckpts", "model", ("m",), ("m",), "u")
    moved = FileView(
        **{
            **view.__dict__,
            "status": Status.DOWNLOADING,
            "endpoint": HUB,
            "failover": f"from {PEER} to {HUB}: a.bin (HTTP 404): not found\x1b[2J",
        }
    )
    reporter = PlainReporter()
    snapshot = type("S", (), {"files": {view.dest: moved}})()
    lines = reporter.lines(snapshot, 0.0, {view.dest})  # type: ignore[arg-type]
    assert lines[0] == (
        f"failed over ckpts/a.bin from {PEER} to {HUB}: a.bin (HTTP 404): not found\\x1b[2J"
    )
    assert reporter.lines(snapshot, 1.0, {view.dest}) == []  # type: ignore[arg-type]


def test_a_lying_mirror_fails_the_file_over_and_it_is_verified_from_the_truth(
    tmp_path: Path, localhub: LocalHub
):
    from wandown.localhub import Fault

    data = payload(300_000, seed=15)
    put_file(localhub, "w.safetensors", data)
    with LocalHub(localhub.root, hash_cache=tmp_path / "liar.json") as liar:
        liar.set_fault(REPO, "w.safetensors", Fault(corrupt_at=5))
        job = job_for(localhub, "w.safetensors", tmp_path / "out", data)
        sources = Sources(EndpointPlan((liar.url, localhub.url), localhub.url, (localhub.url,)))
        download = make_download(job, sources)
        final = download.run()
    assert final.state is Status.COMPLETE, final.message
    assert (tmp_path / "out" / "w.safetensors").read_bytes() == data
    assert final.endpoint == localhub.url
    assert final.failover.startswith(f"from {liar.url} to {localhub.url}: {liar.url} served")
    assert not sources.trusted(liar.url)


def make_download(job, sources: Sources) -> FileDownload:
    from wandown.engine import Engine

    engine = Engine(jobs=1, connections=2, backoff=0.01)
    source = sources.for_url(job.url)
    pool = engine.pool
    resolver = Resolver(pool, source.url, lambda url: {}, engine.settings.timeout)
    reporter = Reporter(job.key, engine.events)
    return FileDownload(
        job, engine.settings, pool, RateLimiter(None), resolver, reporter, CancelFlag(), source
    )


def test_the_header_counts_files_per_endpoint_and_the_status_line_names_the_rows():
    from wandown.state import Header, StatusStore
    from wandown.tui.render import endpoints_text, status_line
    from wandown.tui.rows import Row
    from wandown.tui.view import ViewState

    def view(name: str, endpoint: str | None, failover: str = "") -> FileView:
        return FileView(
            f"ckpts/{name}", name, "ckpts", "model", ("m",), ("m",), "u",
            status=Status.COMPLETE, endpoint=endpoint, failover=failover,
        )  # fmt: skip

    files = {
        v.dest: v
        for v in (
            view("a", PEER),
            view("b", HUB, f"from {PEER} to {HUB}: gone"),
            view("c", PEER),
            view("d", None),
        )
    }
    snapshot = StatusStore(files, Header(), {}).snapshot()
    assert endpoints_text(snapshot) == "from 10.0.0.5:8080 (2), huggingface.co (1)"
    rows = [Row(config="m", dest="ckpts/b")]
    # something ticked: with nothing ticked the status line says how to pick models instead
    text, _ = status_line(ViewState(selected={"ckpts/a"}), snapshot, rows)
    assert (
        text == f"ckpts/b  from {HUB} (failed over from {PEER} to {HUB}: gone)  (needed by 1 model)"
    )


def test_the_record_of_origins_forgets_a_file_replaced_since(tmp_path: Path):
    from wandown.origins import Origins

    book = Origins(tmp_path / "cache" / "fetched-from.json")
    kept, replaced = tmp_path / "kept.bin", tmp_path / "replaced.bin"
    kept.write_bytes(b"one")
    replaced.write_bytes(b"two")
    book.record(kept, PEER)
    book.record(replaced, HUB)
    replaced.unlink()
    replaced.write_bytes(b"other bytes")  # another file at the same name
    dests = {"kept": kept, "replaced": replaced, "never": tmp_path / "never.bin"}
    assert Origins(book.path).endpoints(dests) == {"kept": PEER}
    book.path.write_text("{broken")
    assert book.endpoints(dests) == {}  # a damaged record is a note lost, never an error


def test_a_partial_remembers_which_endpoint_served_each_range_across_a_stop(tmp_path: Path):
    state = PartialState("u", 100, "a" * 64, None, done=RangeSet([(0, 40)]))
    state.credit("http://liar")
    state.done.add(40, 100)
    state.fetching = "http://honest"  # a stop mid-pass: its bytes are not credited yet
    save_state(tmp_path / "x.state", state)
    back = load_state(tmp_path / "x.state")
    assert back is not None
    assert back.sources == {
        "http://liar": RangeSet([(0, 40)]),
        "http://honest": RangeSet([(40, 100)]),
    }
    assert back.others("http://honest") == ["http://liar"]
    back.keep_only("http://honest")
    assert back.done == RangeSet([(40, 100)]) and back.others("http://honest") == []
    old = PartialState("u", 100, None, None, done=RangeSet([(0, 10)]))
    old.sources = {}
    save_state(tmp_path / "old.state", old)  # without "fetching": nobody known
    assert load_state(tmp_path / "old.state").others("http://x") == [UNKNOWN_SOURCE]


def test_asking_who_else_served_a_partial_changes_nothing_in_it():
    state = PartialState("u", 100, "a" * 64, None, done=RangeSet([(0, 60)]))
    state.sources = {"http://a": RangeSet([(0, 20)]), "http://gone": RangeSet([(80, 90)])}
    before = {name: ranges.ranges() for name, ranges in state.sources.items()}
    # 20-60 is credited to nobody; "gone" served only bytes that are no longer done.
    assert state.others("http://a") == [UNKNOWN_SOURCE]
    assert state.others("http://b") == sorted(["http://a", UNKNOWN_SOURCE])
    assert {name: ranges.ranges() for name, ranges in state.sources.items()} == before


def test_range_sets_subtract_and_intersect():
    a, b = RangeSet([(0, 10), (20, 30)]), RangeSet([(5, 25)])
    assert a.without(b) == RangeSet([(0, 5), (25, 30)])
    assert a.within(b) == RangeSet([(5, 10), (20, 25)])
    assert b.without(a) == RangeSet([(10, 20)]) and RangeSet().without(a) == RangeSet()


def test_a_mirror_below_the_floor_is_left_unless_the_truth_is_slower_still():
    sources = Sources(EndpointPlan((PEER, HUB), HUB, (HUB,)))
    assert sources.below_floor(PEER, 20_000, MIRROR_FLOOR) == (
        "20.0 kB/s here, below the 300 kB/s a mirror must keep"
    )
    assert sources.below_floor(PEER, 2e6, MIRROR_FLOOR) is None
    assert sources.below_floor(HUB, 1.0, MIRROR_FLOOR) is None  # the truth is never "a mirror"
    sources.note_rate(HUB, 10_000)
    assert sources.below_floor(PEER, 20_000, MIRROR_FLOOR) is None  # leaving would not help
    assert pace_floor(None) == MIRROR_FLOOR and pace_floor(50_000) == 5_000  # the user's limit


def test_a_mirror_that_turns_to_a_trickle_midway_is_judged_on_its_recent_rate():
    sources = Sources(EndpointPlan((PEER, HUB), HUB, (HUB,)))
    now, done, left = [0.0], [0], []
    watch = PaceWatch(
        sources.for_url(HUB + "/o/m/resolve/c/f"), lambda: done[0], left.append, lambda: now[0]
    )
    for tick in range(1, 41):
        now[0] = tick * 0.5
        done[0] += 5_000_000 if tick <= 20 else 1_000  # 10 MB/s for 10 s, then 2 kB/s
        if watch.check():
            break
    assert 10 < now[0] <= 10 + SLOW_AFTER + 0.5
    assert left and left[0].startswith(f"{PEER} is far too slow (")


def test_endpoint_urls_have_one_spelling_of_scheme_and_host():
    assert from_flags(["HTTP://Peer.LAB:8080/HF/", "http://[::1]:9"])[0].url == (
        "http://peer.lab:8080/HF"
    )
    assert from_flags(["http://例え.jp"])[0].url == "http://例え.jp"


def test_an_empty_endpoints_list_is_said_to_fall_back(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"endpoints": []}))
    loaded = load_config(config)
    assert loaded.endpoints == ()
    assert any(
        "'endpoints' is an empty list, so files come from HF_ENDPOINT (or https://huggingface.co)"
        in line
        for line in loaded.notices
    ), loaded.notices
