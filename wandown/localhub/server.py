"""LocalHub: a Hugging Face Hub look-alike on loopback, with a second port playing the CDN."""

from __future__ import annotations

import os
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from wandown.errors import WandownError
from wandown.localhub.access import AccessPolicy
from wandown.localhub.faults import Fault, FaultBoard
from wandown.localhub.hashes import HashCache
from wandown.localhub.http import MAX_CONNECTIONS, Request, Server
from wandown.localhub.protocol import FileMeta, lfs_meta, plain_meta
from wandown.localhub.repos import RepoFile, RepoStore, Store
from wandown.localhub.routes import CdnRoutes, HubRoutes, make_cdn_link

MAX_RECORDS = 100_000


class LocalHubError(WandownError):
    """The local hub cannot start or cannot find what it was asked about."""

    exit_code = 2


@dataclass(frozen=True)
class RequestRecord:
    """One request as a server saw it."""

    server: str  # "hub" or "cdn"
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    client: str = ""  # the client's address


class LocalHub:
    """Serve the repos under root like huggingface.co does, until stop().

    Use as a context manager. ``url`` is the Hub endpoint (for HF_ENDPOINT); LFS files redirect
    to ``cdn_url``, or with ``cdn=False`` are served by the Hub port itself (one port to open, as
    a mirror does). ``store`` replaces the scan of root with repos a caller built (``wandown
    --serve``). ``token_required`` refuses every request without one of ``tokens``. Faults are
    armed per file with set_fault(); every request is recorded in ``requests``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        cdn_port: int = 0,
        gated: Iterable[str] = (),
        private: Iterable[str] = (),
        tokens: Mapping[str, Iterable[str] | str] | None = None,
        page_size: int = 1000,
        hash_cache: str | os.PathLike[str] | None = None,
        store: Store | None = None,
        cdn: bool = True,
        token_required: bool = False,
        on_request: Callable[[RequestRecord], None] | None = None,
        max_connections: int = MAX_CONNECTIONS,
        max_records: int = MAX_RECORDS,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise LocalHubError(f"{self.root} is not a folder")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.host = host
        self.port = port
        self.cdn_port = cdn_port
        self.page_size = page_size
        self.policy = AccessPolicy(gated, private, tokens, required=token_required)
        self.store: Store = store if store is not None else RepoStore(self.root)
        self.cdn = cdn
        self.on_request = on_request  # called on the serving thread, before the answer
        self.max_connections = max_connections  # per port; more at once are answered 503
        self.hashes = HashCache(self.root, Path(hash_cache) if hash_cache else None)
        self.faults = FaultBoard()
        self.secret = secrets.token_bytes(16)
        self.stopping = threading.Event()
        # Bounded, so a CLI server left running for days does not grow without end.
        self._records: deque[RequestRecord] = deque(maxlen=max_records)
        self._records_lock = threading.Lock()
        self._servers: list[Server] = []
        self._threads: list[threading.Thread] = []

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> LocalHub:
        """Bind both ports (unless bind() did) and serve in background threads."""
        if self._threads:
            return self
        self.bind()
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"localhub-{server.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def bind(self) -> LocalHub:
        """Take the ports without answering yet, so a port in use is told before a long setup.

        Clients that connect meanwhile wait in the listen queue until start().
        """
        if self._servers:
            return self
        self.stopping.clear()
        limit = self.max_connections
        try:
            hub = Server((self.host, self.port), "hub", HubRoutes(self), self._record, limit)
        except OSError as err:
            raise LocalHubError(
                f"cannot listen on {_address(self.host, self.port)}: {err.strerror}"
            ) from None
        self._servers = [hub]
        if self.cdn:
            try:
                cdn = Server(
                    (self.host, self.cdn_port), "cdn", CdnRoutes(self), self._record, limit
                )
            except OSError as err:
                hub.server_close()
                self._servers = []
                raise LocalHubError(
                    f"cannot listen on {_address(self.host, self.cdn_port)}: {err.strerror}"
                ) from None
            self._servers.append(cdn)
            self.cdn_port = cdn.server_address[1]
        self.port = hub.server_address[1]
        return self

    def stop(self) -> None:
        """Stop serving and close every connection, idle or not; save new hashes."""
        self.stopping.set()
        self.hashes.flush()
        # Both servers wind down at once: each shutdown() waits out one poll interval. Only
        # servers that run are shut down: shutdown() waits for serve_forever() to end.
        running = self._servers if self._threads else []
        stoppers = [threading.Thread(target=server.shutdown) for server in running]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self._servers:
            server.close_connections()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The Hub endpoint, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def cdn_url(self) -> str:
        """The CDN endpoint LFS downloads are redirected to."""
        return f"http://{_url_host(self.host)}:{self.cdn_port}"

    # -- tests' controls ----------------------------------------------------------------------

    def set_fault(self, repo_id: str, path: str, fault: Fault) -> None:
        """Arm a fault for one file (replacing the one it had)."""
        self.faults.set(repo_id, path, fault)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self.faults.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the requests received so far (the latest max_records), oldest first."""
        with self._records_lock:
            return list(self._records)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._records_lock:
            self._records.clear()

    def commit_of(self, repo_id: str, revision: str = "main") -> str:
        """Return the commit id revision resolves to (LocalHubError if it does not)."""
        repo = self.store.find(repo_id)
        snapshot = repo.resolve(revision) if repo is not None else None
        if snapshot is None:
            raise LocalHubError(f"no revision {revision!r} in repo {repo_id!r} under {self.root}")
        return snapshot.commit

    # -- used by the routes -------------------------------------------------------------------

    def meta(self, file: RepoFile) -> FileMeta:
        """Describe a file, hashing it on first need (cache blob names spare that)."""
        if file.known_digest is not None:
            if file.lfs:
                return lfs_meta(file, file.known_digest)
            return plain_meta(file, file.known_digest)
        # Only the digest the Hub shows is computed: sha256 for LFS files, blob sha1 otherwise.
        kind = "sha256" if file.lfs else "blob_sha1"
        digest = self.hashes.digest(
            file.local, file.size, file.mtime_ns, kind, ctime_ns=file.ctime_ns, inode=file.inode
        )
        return lfs_meta(file, digest) if file.lfs else plain_meta(file, digest)

    def cdn_link(self, request: Request, repo_id: str, commit: str, meta: FileMeta) -> str:
        """Return a signed CDN link, on the host name the client used to reach the hub."""
        host = (request.headers.get("Host") or "").rsplit(":", 1)[0] or _url_host(self.host)
        return make_cdn_link(f"http://{host}:{self.cdn_port}", self.secret, repo_id, commit, meta)

    def _record(self, server: str, request: Request) -> None:
        record = RequestRecord(
            server,
            request.command,
            request.path,
            {k.lower(): v for k, v in request.headers.items()},
            str(request.client_address[0]),
        )
        with self._records_lock:
            self._records.append(record)
        if self.on_request is not None:
            self.on_request(record)


def _address(host: str, port: int) -> str:
    """Write host:port as people and URLs do, an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
