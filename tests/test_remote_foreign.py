"""The client against a Hub that is not ours: a small fake written from the Hub's documented API.

It differs from LocalHub on purpose: it can lack paths-info (only the paginated tree API) or
lack the tree API, writes `lfs.sha256` instead of `lfs.oid`, and replays scripted failures on
API calls (429 with a RateLimit header, 5xx, dropped connections, stalls).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import urllib3

import wandown
from tests.test_remote_support import FakeClock
from wandown.hubhttp import messages
from wandown.hubhttp.retry import RetryPolicy
from wandown.remote import FileRef, HubError, HubSettings, MetadataClient
from wandown.remote.http import HubHttp

DROP = "drop"
REPO_ROOT = Path(wandown.__file__).resolve().parent.parent


class ForeignHub:
    """A loopback server answering revision, paths-info and tree like huggingface.co."""

    def __init__(
        self,
        repos,
        *,
        paths_info=True,
        tree=True,
        page_size=1000,
        lfs_key="oid",
        relative_links=False,
        next_host=None,
    ):
        self.repos = repos
        self.paths_info, self.tree = paths_info, tree
        self.page_size, self.lfs_key = page_size, lfs_key
        self.relative_links, self.next_host = relative_links, next_host
        self.script: dict[str, list] = defaultdict(list)
        self.requests: list[tuple[str, str, dict]] = []
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                try:
                    hub.handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (timeout tests)

            do_POST = do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def commit(repo: str) -> str:
        return hashlib.sha1(repo.encode()).hexdigest()

    def actions(self) -> list[str]:
        return [path.split("?")[0].split("/")[5] for _, path, _ in self.requests]

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length) if length else b""
        parts = urlsplit(request.path)
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        with self.lock:
            self.requests.append(
                (request.command, request.path, {k.lower(): v for k, v in request.headers.items()})
            )
        if segments[:2] != ["api", "models"] or len(segments) < 6:
            return self.reply(request, 404, {}, b"Not Found")
        repo, action, revision = "/".join(segments[2:4]), segments[4], segments[5]
        with self.lock:
            canned = self.script[action].pop(0) if self.script[action] else None
        if canned == DROP:
            request.close_connection = True
            request.connection.close()
            return None
        if isinstance(canned, tuple) and canned[0] == "stall":
            time.sleep(canned[1])
        elif canned is not None:
            return self.reply(request, *canned)
        files = self.repos.get(repo)
        if files is None:
            return self.error(request, 401, "RepoNotFound")
        if revision not in ("main", self.commit(repo)):
            return self.error(request, 404, "RevisionNotFound")
        if action == "revision" and request.command == "GET":
            return self.json(request, {"id": repo, "sha": self.commit(repo)})
        if action == "paths-info" and request.command == "POST" and self.paths_info:
            form = parse_qs(body.decode())
            return self.json(request, [self.entry(files, p) for p in form["paths"] if p in files])
        if action == "tree" and request.command == "GET" and self.tree:
            return self.tree_page(request, files, parts)
        return self.reply(request, 404, {}, b"Not Found")

    def entry(self, files, path):
        data = files[path]
        entry = {"type": "file", "path": path, "size": len(data)}
        if path.endswith(".safetensors"):
            pointer = (
                f"version https://git-lfs.github.com/spec/v1\noid sha256:x\nsize {len(data)}\n"
            )
            entry["oid"] = hashlib.sha1(pointer.encode()).hexdigest()
            entry["lfs"] = {
                self.lfs_key: hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pointerSize": len(pointer),
            }
        else:
            entry["oid"] = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        return entry

    def tree_page(self, request, files, parts):
        listing = []
        for path in sorted(files):
            folder = path.rsplit("/", 1)[0] if "/" in path else None
            if (
                folder
                and {"type": "directory", "path": folder, "oid": "0" * 40, "size": 0} not in listing
            ):
                listing.append({"type": "directory", "path": folder, "oid": "0" * 40, "size": 0})
            listing.append(self.entry(files, path))
        start = int(parse_qs(parts.query).get("cursor", ["0"])[0])
        page = listing[start : start + self.page_size]
        headers = {}
        if start + self.page_size < len(listing):
            query = f"recursive=true&cursor={start + self.page_size}"
            base = "" if self.relative_links else (self.next_host or self.url)
            headers["Link"] = f'<{base}{parts.path}?{query}>; rel="next"'
        return self.json(request, page, headers)

    def error(self, request, status, code):
        headers = {"X-Error-Code": code, "X-Error-Message": code}
        return self.reply(request, status, headers, json.dumps({"error": code}).encode())

    def json(self, request, value, headers=None):
        headers = {"Content-Type": "application/json", **(headers or {})}
        return self.reply(request, 200, headers, json.dumps(value).encode())

    @staticmethod
    def reply(request, status, headers, body=b""):
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)


REPOS = {
    "acme/one": {
        "model.safetensors": b"\x01" * 500,
        "config.json": b'{"x": 1}',
        "text_encoder/model.safetensors": b"\x02" * 70,
        "text_encoder/config.json": b"{}",
        "a.txt": b"a",
        "b.txt": b"bb",
        "c.txt": b"ccc",
    },
    "acme/two": {"weights.safetensors": b"\x03" * 99, "readme.md": b"# two\n"},
}
WANTED = [
    FileRef("acme/one", "main", "text_encoder/model.safetensors"),
    FileRef("acme/one", "main", "config.json"),
    FileRef("acme/one", "main", "c.txt"),
    FileRef("acme/two", "main", "weights.safetensors"),
]


def client_for(hub, tmp_path, **kwargs):
    token = kwargs.pop("token", None)
    kwargs.setdefault("cache_path", tmp_path / "metadata.json")
    return MetadataClient(HubSettings(endpoint=hub.url, token=token), **kwargs)


def assert_matches_bytes(result, refs):
    assert result.errors == {}
    for ref in refs:
        data = REPOS[ref.repo][ref.path]
        remote = result.files[ref]
        assert remote.size == len(data)
        assert remote.commit == ForeignHub.commit(ref.repo)
        if ref.path.endswith(".safetensors"):
            assert remote.sha256 == hashlib.sha256(data).hexdigest()
            assert remote.blob_sha1 is None
        else:
            assert remote.blob_sha1 == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            assert remote.sha256 is None


def test_tree_listing_with_pagination_when_paths_info_is_missing(tmp_path):
    with ForeignHub(REPOS, paths_info=False, page_size=2) as hub:
        result = client_for(hub, tmp_path, max_workers=1).fetch(WANTED)
        actions = hub.actions()
        tree_queries = [p for _, p, _ in hub.requests if "/tree/" in p]
    assert_matches_bytes(result, WANTED)
    assert actions.count("paths-info") == 1  # learnt once, not asked again for the second repo
    assert len(tree_queries) > 3
    assert any("cursor=" in query for query in tree_queries)
    # Listings are pinned to the resolved commit, never to the moving branch name.
    assert all(f"/tree/{ForeignHub.commit('acme/' + q.split('/')[4])}" in q for q in tree_queries)


def test_tree_pages_stop_once_every_wanted_file_is_seen(tmp_path):
    early = [FileRef("acme/one", "main", "a.txt")]
    with ForeignHub(REPOS, paths_info=False, page_size=1) as hub:
        result = client_for(hub, tmp_path).fetch(early)
        pages = hub.actions().count("tree")
    assert_matches_bytes(result, early)
    assert pages == 1


def test_relative_next_links_are_followed(tmp_path):
    with ForeignHub(REPOS, paths_info=False, page_size=3, relative_links=True) as hub:
        result = client_for(hub, tmp_path).fetch(WANTED)
    assert_matches_bytes(result, WANTED)


def test_next_link_to_another_host_is_refused(tmp_path):
    with ForeignHub(REPOS, paths_info=False, page_size=1, next_host="http://127.0.0.2:1") as hub:
        result = client_for(hub, tmp_path, token="hf_secret").fetch(WANTED[:1])
    assert "continues on another host" in result.errors[WANTED[0]]


def test_paths_info_only_with_lfs_sha256_key(tmp_path):
    with ForeignHub(REPOS, tree=False, lfs_key="sha256") as hub:
        result = client_for(hub, tmp_path).fetch(WANTED)
        assert "tree" not in hub.actions()
    assert_matches_bytes(result, WANTED)


def test_429_with_ratelimit_header_waits_what_it_says(tmp_path):
    clock = FakeClock()
    limited = (
        429,
        {"RateLimit": '"api";r=0;t=7', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'},
        b"",
    )
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [limited, limited]
        result = client_for(hub, tmp_path, wait=clock.wait, clock=clock).fetch(WANTED[:1])
    assert_matches_bytes(result, WANTED[:1])
    assert clock.sleeps == [7, 7]


def test_503_with_retry_after_and_a_dropped_connection_are_survived(tmp_path):
    clock = FakeClock()
    with ForeignHub(REPOS) as hub:
        hub.script["paths-info"] += [(503, {"Retry-After": "3"}, b"busy"), DROP, (502, {}, b"")]
        result = client_for(hub, tmp_path, wait=clock.wait, clock=clock).fetch(WANTED[:2])
    assert_matches_bytes(result, WANTED[:2])
    assert clock.sleeps[0] == 3
    assert len(clock.sleeps) == 3


def test_rate_limit_longer_than_the_budget_fails_at_once_with_the_wait(tmp_path):
    clock = FakeClock()
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [(429, {"RateLimit": '"api";r=0;t=3600'}, b"")]
        result = client_for(hub, tmp_path, wait=clock.wait, clock=clock).fetch(WANTED[:1])
    message = result.errors[WANTED[0]]
    assert "rate limiting" in message and "try again in 3600 s" in message
    assert clock.sleeps == []


def test_endless_server_errors_stop_at_the_retry_budget(tmp_path):
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=50, budget=20.0)
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [(500, {}, b"")] * 60
        client = client_for(
            hub, tmp_path, wait=clock.wait, clock=clock, retry=policy, jitter=lambda: 0.0
        )
        result = client.fetch(WANTED[:1])
    assert result.errors[WANTED[0]] == "The Hub failed with HTTP 500 after 19 s of retries."
    # 75 % of 0.5, 1, 2, 4, 8, 10...: the sixth wait would pass the 20 s budget.
    assert clock.sleeps == [0.375, 0.75, 1.5, 3.0, 6.0, 7.5]


def test_gated_answer_on_metadata_names_the_page_and_the_token(tmp_path):
    gated = (403, {"X-Error-Code": "GatedRepo", "X-Error-Message": "restricted"}, b"{}")
    with ForeignHub(REPOS) as hub:
        hub.script["paths-info"] += [gated]
        result = client_for(hub, tmp_path, token="hf_ok", max_workers=1).fetch(WANTED[:1])
    assert f"{hub.url}/acme/one" in result.errors[WANTED[0]]
    assert "granted access" in result.errors[WANTED[0]]


def test_unknown_repo_without_token_is_not_found_with_a_login_hint(tmp_path):
    ref = FileRef("acme/ghost", "main", "x.json")
    with ForeignHub(REPOS) as hub:
        result = client_for(hub, tmp_path).fetch([ref])
    assert result.errors[ref] == (
        f"Repository acme/ghost not found on {hub.url} (if it is private or gated, set a "
        "token with HF_TOKEN=... or `hf auth login`)."
    )


def test_stale_commit_is_used_when_the_hub_fails_to_answer(tmp_path):
    clock = FakeClock(start=1_000_000.0)
    wall = FakeClock(start=1_700_000_000.0)
    with ForeignHub(REPOS) as hub:
        first = client_for(hub, tmp_path, now=wall).fetch(WANTED[:1])
        wall.now += 3 * 86400
        hub.script["revision"] += [(503, {}, b"")] * 20
        client = client_for(hub, tmp_path, now=wall, wait=clock.wait, clock=clock)
        again = client.fetch(WANTED[:1])
    assert again.files == first.files
    assert len(again.warnings) == 1 and "last known commit" in again.warnings[0]


def test_read_timeout_is_retried(tmp_path):
    clock = FakeClock()
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [("stall", 4.0)]
        http = HubHttp(
            HubSettings(endpoint=hub.url),
            retry=RetryPolicy(sleep=clock.wait, clock=clock),
            timeout=urllib3.Timeout(connect=2.0, read=1.0),
        )
        response = http.request("GET", f"{hub.url}/api/models/acme/one/revision/main")
    assert response.status == 200
    assert len(clock.sleeps) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_token_rejected_by_a_foreign_hub(tmp_path, status):
    answer = (401, {"X-Error-Message": "Invalid credentials in Authorization header"}, b"{}")
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [answer if status == 401 else (403, {}, b"{}")]
        result = client_for(hub, tmp_path, token="hf_bad").fetch(WANTED[:1])
    message = result.errors[WANTED[0]]
    if status == 401:
        assert message.startswith("The Hub rejected your token (HTTP 401)")
    else:
        assert "refused access to acme/one (HTTP 403)" in message
    assert "hf_bad" not in message


def test_malformed_next_link_is_an_error_for_that_repo_only(tmp_path):
    wanted = [WANTED[0], WANTED[3]]  # the first is not on the first page of its tree
    with ForeignHub(REPOS, paths_info=False, page_size=2, next_host="http://[oops") as hub:
        result = client_for(hub, tmp_path, max_workers=1).fetch(wanted)
    assert result.errors[WANTED[0]].endswith("the Link header names a malformed next page.")
    assert WANTED[3] not in result.errors and WANTED[3] in result.files


def test_malformed_redirect_location_is_an_unexpected_answer(tmp_path):
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [(302, {"Location": "http://[oops/x"}, b"")]
        http = HubHttp(HubSettings(endpoint=hub.url))
        with pytest.raises(HubError) as raised:
            http.request("GET", f"{hub.url}/api/models/acme/one/revision/main")
    assert raised.value.kind == messages.UNEXPECTED
    assert "redirect location is malformed" in raised.value.message


def test_retry_after_date_is_read_against_the_injected_wall_clock(tmp_path):
    clock = FakeClock()
    wall = 1_700_000_000.0
    when = email.utils.formatdate(wall + 30, usegmt=True)
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [(503, {"Retry-After": when}, b"")]
        client = client_for(hub, tmp_path, wait=clock.wait, clock=clock, now=lambda: wall)
        result = client.fetch(WANTED[:1])
    assert_matches_bytes(result, WANTED[:1])
    assert clock.sleeps == [30.0]


def cancel_on_first_wait(cancel: threading.Event) -> None:
    cancel.set()  # the user presses Ctrl-C while wandown waits out a rate limit


def test_cancel_during_a_rate_limit_wait_stops_retrying(tmp_path):
    clock = FakeClock(on_wait=cancel_on_first_wait)
    cancel = threading.Event()
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [(429, {"Retry-After": "20"}, b"")] * 5
        client = client_for(hub, tmp_path, wait=clock.wait, clock=clock, max_workers=1)
        result = client.fetch(WANTED, cancel=cancel)
        asked = hub.actions()
    assert clock.sleeps == [20]
    assert asked.count("revision") == 1  # neither repo is asked again once cancelled
    assert result.errors == {} and result.files == {}
    assert result.unknown == set(WANTED)


def test_cancel_keeps_the_batches_already_fetched(tmp_path, monkeypatch):
    # The worker hands its batch in at once; a loaded machine must not make it miss the grace.
    monkeypatch.setattr("wandown.remote.client.CANCEL_GRACE", 10.0)
    clock = FakeClock(on_wait=cancel_on_first_wait)
    wanted = WANTED[:3]  # one repo, three paths-info batches of one path
    with ForeignHub(REPOS) as hub:
        hub.script["paths-info"] += [None, (429, {"Retry-After": "20"}, b"")]
        client = client_for(
            hub, tmp_path, wait=clock.wait, clock=clock, paths_per_request=1, max_workers=1
        )
        result = client.fetch(wanted, cancel=threading.Event())
        asked = hub.actions()
    assert asked == ["revision", "paths-info", "paths-info"]
    assert set(result.files) == {wanted[0]}
    assert result.unknown == set(wanted[1:])
    assert result.errors == {}


def cancel_once_asked(hub: ForeignHub, cancel: threading.Event, after: float) -> threading.Thread:
    """Set cancel a moment after the hub saw its first request (a timer could fire before it)."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while not hub.actions() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(after)
        cancel.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_cancel_wakes_a_real_wait(tmp_path):
    cancel = threading.Event()
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [(429, {"Retry-After": "50"}, b"")] * 3
        client = client_for(hub, tmp_path)
        watcher = cancel_once_asked(hub, cancel, after=0.3)
        result = client.fetch(WANTED[:1], cancel=cancel)
        watcher.join()
        assert hub.actions() == ["revision"]
    assert result.unknown == {WANTED[0]}


def test_cancel_returns_while_a_request_is_still_in_flight(tmp_path):
    cancel = threading.Event()
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [("stall", 8.0)]
        client = client_for(hub, tmp_path)
        watcher = cancel_once_asked(hub, cancel, after=0.1)
        result = client.fetch(WANTED[:1], cancel=cancel)
        watcher.join()
        # The worker still waits for the stalled answer; fetch() did not wait for it, and it
        # is a daemon, so it cannot hold the program open either.
        still_asking = [t for t in threading.enumerate() if t.name.startswith("hub-meta")]
    assert result.unknown == {WANTED[0]}
    assert result.files == {}
    assert still_asking
    assert all(worker.daemon for worker in still_asking)


INTERRUPTED = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from wandown.remote import FileRef, HubSettings, MetadataClient
    client = MetadataClient(HubSettings(endpoint=sys.argv[1]), cache_path=Path(sys.argv[2]))
    client.fetch([FileRef("acme/one", "main", "config.json")])
    """
)


def test_ctrl_c_during_a_rate_limit_wait_ends_the_process(tmp_path):
    with ForeignHub(REPOS) as hub:
        hub.script["revision"] += [(429, {"Retry-After": "59"}, b"")] * 3
        child = subprocess.Popen(
            [sys.executable, "-c", INTERRUPTED, hub.url, str(tmp_path / "metadata.json")],
            cwd=REPO_ROOT,
            stderr=subprocess.PIPE,
        )
        try:
            while not hub.actions() and child.poll() is None:
                time.sleep(0.02)
            time.sleep(0.1)  # let the client reach its wait
            child.send_signal(signal.SIGINT)
            # Waiting out the whole 59 s rate limit would mean a worker held the process open.
            _, stderr = child.communicate(timeout=30)
        finally:
            child.kill()
            child.wait()
    assert child.returncode != 0
    assert b"KeyboardInterrupt" in stderr
