"""--serve: this machine's proven files, read-only, over the Hub's protocol, for the others.

The files come from proving.prove (only bytes that hash to the Hub's metadata); the protocol is
wandown.localhub's, given a store of those files instead of a folder scan and no CDN port, so
one port serves the API, HEAD with the Hub's headers, and ranged downloads.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

from wandown.errors import UsageError, WandownError
from wandown.hub.sidecar import FileStat
from wandown.hubhttp.urls import resolve_parts
from wandown.loaded import Loaded
from wandown.localhub import LocalHub, RequestRecord
from wandown.localhub.repos import RepoFile, Snapshot
from wandown.proving import Notice, ProvenFile, describe, hashes_path, prove
from wandown.remote.cache import is_commit

DEFAULT_HOST = "127.0.0.1"
DEFAULT_HUB = "https://huggingface.co"
ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})
MAX_CONNECTIONS = 64  # peers served at once; more are answered 503 with Retry-After
KEPT_RECORDS = 100  # the access log reads requests as they come; a flood keeps no more
ADDRESS_HELP = "--serve takes [HOST:]PORT, e.g. 8080, 0.0.0.0:8080 or [::1]:8080"


def parse_address(text: str) -> tuple[str, int]:
    """Read ``[HOST:]PORT`` (an IPv6 host in brackets); the host is loopback when left out."""
    text = text.strip()
    host, port_text = DEFAULT_HOST, text
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise UsageError(f"{ADDRESS_HELP}; not {text!r}")
        host, port_text = inside, rest[1:]
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
        if ":" in host:
            raise UsageError(f"{ADDRESS_HELP} (an IPv6 address goes in brackets); not {text!r}")
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise UsageError(f"{ADDRESS_HELP}; the port must be 0 to 65535, not {port_text!r}")
    if not host:
        raise UsageError(f"{ADDRESS_HELP}; the host before ':' is empty")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """Tell whether only this machine can reach an address (a name other than localhost: no)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_url(host: str, port: int) -> str:
    """Return the URL the other machines use: this machine's name when bound to every address."""
    shown = socket.gethostname() if host in ANY_ADDRESS else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def endpoint_lines(url: str, token: bool, truth: str = DEFAULT_HUB) -> list[str]:
    """Return what to paste on the other machines: the environment form and the config form.

    The config form ends with this machine's own source of truth (a lab's proxy or mirror, or
    the Hub), so the others verify against the same metadata.

    A serve token travels as HF_TOKEN, the one token a client has: in an endpoints list it would
    go to the Hub as well, so with a token only the one-endpoint form is offered.
    """
    if token:
        return [
            "On the other machines:",
            f"  HF_ENDPOINT={url} HF_TOKEN=<the serve token> python wandown.py",
        ]
    return [
        "On the other machines:",
        f"  HF_ENDPOINT={url} python wandown.py",
        f'  or in their config.json: "endpoints": ["{url}", "{truth}"]',
    ]


def exposure_warning(host: str, token: bool) -> str | None:
    """Warn when anyone on the network may read the files; say so for loopback too."""
    if is_loopback(host):
        return f"bound to {host}: only this machine can connect (serve 0.0.0.0:PORT for others)"
    if not token:
        return (
            f"bound to {host} without a token: anyone who can reach this machine can read "
            "these files; set --serve-token TOKEN (or serve_token in config.json) to require one"
        )
    return None


class ProvenRepo:
    """One repo as proven files: a branch -> commit map and each commit's files.

    A snapshot holds only the files whose identity is still the one they were proven with: a file
    rewritten, replaced or relinked since is dropped (and named once), so it answers 404.
    """

    def __init__(
        self, repo_id: str, files: Iterable[ProvenFile], changed: Callable[[Path], None]
    ) -> None:
        self.repo_id = repo_id
        self._branches: dict[str, str] = {}
        self._commits: dict[str, list[ProvenFile]] = {}
        for file in files:
            remote = file.remote
            if not is_commit(remote.revision):
                self._branches.setdefault(remote.revision, remote.commit)
            self._commits.setdefault(remote.commit, []).append(file)
        self._changed = changed

    def branches(self) -> dict[str, str]:
        """Return branch name -> commit, as the serving machine's metadata has them."""
        return dict(self._branches)

    def resolve(self, revision: str) -> Snapshot | None:
        """Return the proven files at a branch or commit that are still as they were proven."""
        commit = self._branches.get(revision.removeprefix("refs/heads/"), revision)
        proven = self._commits.get(commit)
        if proven is None:
            return None
        files: dict[str, RepoFile] = {}
        for file in proven:
            served = self._still_proven(file)
            if served is not None:
                files[file.remote.path] = served
        newest = max((f.mtime_ns for f in files.values()), default=0)
        return Snapshot(self.repo_id, commit, dict(sorted(files.items())), newest)

    def _still_proven(self, file: ProvenFile) -> RepoFile | None:
        try:
            now = FileStat.of(os.stat(file.local))
        except OSError:
            now = None
        if now != file.identity:
            self._changed(file.local)
            return None
        identity = file.identity
        return RepoFile(
            path=file.remote.path,
            local=file.local,
            size=identity.size,
            mtime_ns=identity.mtime_ns,
            lfs=file.remote.sha256 is not None,
            known_digest=file.digest,
            ctime_ns=identity.ctime_ns,
            inode=identity.ino,
        )


class ProvenStore:
    """The repos --serve answers for: only what the proof holds."""

    def __init__(self, files: Iterable[ProvenFile], notice: Notice) -> None:
        by_repo: dict[str, list[ProvenFile]] = {}
        for file in files:
            by_repo.setdefault(file.remote.repo, []).append(file)
        self._notice = notice
        self._lock = threading.Lock()
        self._gone: set[Path] = set()
        self._repos = {
            repo_id: ProvenRepo(repo_id, group, self._changed) for repo_id, group in by_repo.items()
        }

    def _changed(self, local: Path) -> None:
        """Say once that a proven file changed (route threads may find it at the same time)."""
        with self._lock:
            if local in self._gone:
                return
            self._gone.add(local)
            self._notice(
                f"{local} changed on disk since it was proven; no longer served "
                "(start --serve again to prove it again)"
            )

    def find(self, repo_id: str) -> ProvenRepo | None:
        return self._repos.get(repo_id)

    def repo_ids(self) -> list[str]:
        return sorted(self._repos)


ASKED_REMEMBERED = 4096  # (machine, file) pairs remembered so each is said once
LOG_BURST = 20  # "asks for" lines said at most per LOG_WINDOW seconds; the rest are counted
LOG_WINDOW = 10.0


class AccessLog:
    """Say once per machine and file who was served it; count every request for the last word.

    Only admitted requests for files it serves are named (any other would let anyone write the
    log; `served(repo, path)` says which files those are), the pairs remembered are bounded,
    and the lines said are rate-limited: a flood of requests fills neither log nor memory.
    """

    def __init__(
        self,
        notice: Notice,
        admitted: Callable[[str | None], bool],
        served: Callable[[str, str], bool] = lambda repo, path: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notice = notice
        self._admitted = admitted
        self._served = served
        self._clock = clock
        self._lock = threading.Lock()
        self._asked: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._clients: OrderedDict[str, None] = OrderedDict()
        self._machines = 0
        self._window_start = clock()
        self._said = 0
        self._unsaid = 0
        self.requests = 0

    def __call__(self, record: RequestRecord) -> None:
        parts = resolve_parts(f"http://peer{record.path.partition('?')[0]}")
        with self._lock:
            self.requests += 1
            self._note_client(record.client)
            if record.method != "GET" or parts is None:
                return
            if not self._admitted(record.headers.get("authorization")):
                return
            if not self._served(parts[1], parts[3]):
                return
            asked = (record.client, parts[1], parts[3])
            if asked in self._asked:
                self._asked.move_to_end(asked)
                return
            self._asked[asked] = None
            if len(self._asked) > ASKED_REMEMBERED:
                self._asked.popitem(last=False)
            self._say(f"{record.client} asks for {parts[1]}/{parts[3]}")

    def _note_client(self, client: str) -> None:
        if client in self._clients:
            self._clients.move_to_end(client)
            return
        self._clients[client] = None
        self._machines += 1
        if len(self._clients) > ASKED_REMEMBERED:
            self._clients.popitem(last=False)  # counted already; may be counted again

    def _say(self, line: str) -> None:
        now = self._clock()
        if now - self._window_start >= LOG_WINDOW:
            if self._unsaid:
                self._notice(f"... and {self._unsaid} more files asked for (not shown)")
            self._window_start, self._said, self._unsaid = now, 0, 0
        if self._said >= LOG_BURST:
            self._unsaid += 1
            return
        self._said += 1
        self._notice(line)

    def summary(self) -> str:
        with self._lock:
            requests, machines = self.requests, self._machines
        if requests == 0:
            return "stopped serving; no machine asked for anything"
        what = "1 request" if requests == 1 else f"{requests} requests"
        who = "1 machine" if machines == 1 else f"{machines} machines"
        return f"stopped serving; answered {what} from {who}"


def serve(
    loaded: Loaded,
    address: str,
    token: str | None,
    notice: Notice,
    out: Callable[[str], None],
    truth: str = DEFAULT_HUB,
) -> int:
    """Bind, prove, print the endpoint lines, and serve until Ctrl-C or SIGTERM.

    The port is taken first: a port in use or an address not of this machine is told at once,
    not after hours of hashing.
    """
    host, port = parse_address(address)
    hub = LocalHub(
        loaded.catalog.root,
        host=host,
        port=port,
        tokens={token: "*"} if token else None,
        token_required=bool(token),
        hash_cache=hashes_path(),
        store=ProvenStore([], notice),
        cdn=False,
        max_connections=MAX_CONNECTIONS,
        max_records=KEPT_RECORDS,
    )
    hub.bind()  # LocalHubError (port taken, address not here) is a message and exit status 2
    try:
        return _prove_and_serve(hub, loaded, token, notice, out, truth)
    finally:
        hub.stop()


def _prove_and_serve(
    hub: LocalHub,
    loaded: Loaded,
    token: str | None,
    notice: Notice,
    out: Callable[[str], None],
    truth: str,
) -> int:
    try:
        proof = prove(loaded, notice)
    except KeyboardInterrupt:
        notice("interrupted while proving files; nothing was served")
        return 130
    notice(describe(proof))
    if not proof.files:
        raise WandownError(
            "nothing to serve: no file here is proven against Hub metadata (download some "
            "first, or bring metadata with --import-metadata FILE)"
        )
    policy = hub.policy
    proven = {(file.remote.repo, file.remote.path) for file in proof.files}
    log = AccessLog(
        notice,
        lambda auth: not token or policy.known_token(auth) is not None,
        lambda repo, path: (repo, path) in proven,
    )
    hub.store = ProvenStore(proof.files, notice)
    hub.on_request = log
    hub.start()
    try:
        _announce(hub, len(proof.files), bool(token), truth, notice, out)
        stop = threading.Event()
        while not stop.wait(0.5):  # Ctrl-C and SIGTERM arrive as KeyboardInterrupt
            pass
    except KeyboardInterrupt:
        pass
    notice(log.summary())
    return 0


def _announce(
    hub: LocalHub, count: int, token: bool, truth: str, notice: Notice, out: Callable[[str], None]
) -> None:
    """Print where the files are served and the lines to paste; warn about who may connect."""
    url = public_url(hub.host, hub.port)
    out(f"serving {count} files read-only on {url} (Ctrl-C stops)")
    for line in endpoint_lines(url, token, truth):
        out(line)
    warning = exposure_warning(hub.host, token)
    if warning is not None:
        notice(warning)
