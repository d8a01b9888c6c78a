"""Sizes and hashes of catalog files from the Hub, in a few requests per repo, cached."""

from __future__ import annotations

import dataclasses
import queue
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urljoin

from wandown.hubhttp import messages
from wandown.hubhttp.messages import HubError
from wandown.hubhttp.retry import RetryPolicy, Sleep, sleep_unless_cancelled
from wandown.huburl import NO_ORIGIN, FileRef, is_valid_repo_id, origin
from wandown.lazy import OnFirstUse
from wandown.remote.cache import (
    FileMeta,
    MetadataCache,
    MetadataFileError,
    is_commit,
    parse_file_meta,
)
from wandown.remote.settings import HubSettings

if TYPE_CHECKING:
    import urllib3

    from wandown.remote.http import HubHttp

DAY = 24 * 3600.0
PATHS_PER_REQUEST = 200
MAX_TREE_PAGES = 1000
# How often fetch() looks at its cancel event while the workers are busy, and how long it then
# still takes answers from them.
CANCEL_POLL = 0.05
CANCEL_GRACE = 0.5
# RFC 8288 Link header: <target>; rel="next", <target>; rel="prev"
_LINK = re.compile(r"<([^>]*)>\s*((?:;[^,;]*)*)")
_REL = re.compile(r'rel\s*=\s*"?([^";]*)"?', re.IGNORECASE)
# Errors after which the last known commit of a branch is better than nothing.
_TRANSIENT = frozenset(
    {messages.UNREACHABLE, messages.TIMEOUT, messages.SERVER, messages.RATE_LIMITED}
)

Progress = Callable[[int, int], None]
GroupKey = tuple[str, str]  # repo, revision


@dataclass(frozen=True)
class RemoteFile:
    """One file as the Hub has it at a fixed commit: size and content identity.

    `sha256` is set for LFS files; small files stored in git have only `blob_sha1`, the git
    blob id (sha1 of "blob <size>\\0" + content).
    """

    repo: str
    revision: str
    commit: str
    path: str
    size: int
    sha256: str | None
    blob_sha1: str | None

    @property
    def lfs(self) -> bool:
        """Tell whether the Hub stores this file in LFS (and so gives its sha256)."""
        return self.sha256 is not None


@dataclass
class MetadataResult:
    """Per catalog file: metadata, a user-facing error, or unknown (offline and not cached)."""

    files: dict[FileRef, RemoteFile] = field(default_factory=dict)
    errors: dict[FileRef, str] = field(default_factory=dict)
    unknown: set[FileRef] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


class _PathsInfoUnavailable(Exception):
    """The endpoint has no paths-info API; list the tree instead."""


class MetadataClient:
    """Fetch and cache Hub metadata for catalog files; build download URLs and auth headers.

    One revision lookup per (repo, branch), then paths-info in batches (or a paginated tree
    listing where paths-info is missing), repos in parallel on a few daemon threads sharing one
    urllib3 pool. With `settings.offline` no request is ever made, and the connection (which
    loads urllib3) is made only for the first request.
    """

    def __init__(
        self,
        settings: HubSettings,
        cache_path: Path | None = None,
        pool: urllib3.PoolManager | None = None,
        max_workers: int = 8,
        wait: Sleep = sleep_unless_cancelled,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        branch_ttl: float = DAY,
        retry: RetryPolicy | None = None,
        paths_per_request: int = PATHS_PER_REQUEST,
    ) -> None:
        self.settings = settings
        self.endpoint = settings.endpoint.rstrip("/")
        self.cache = MetadataCache(cache_path, now=now)
        policy = dataclasses.replace(
            retry or RetryPolicy(), clock=clock, now=now, sleep=wait, jitter=jitter
        )
        self._policy = policy
        self._pool = pool
        self._http = OnFirstUse(self._connect)
        self.max_workers = max(1, max_workers)
        self.branch_ttl = branch_ttl
        self.paths_per_request = max(1, paths_per_request)
        self._now = now
        self._no_paths_info = False
        self._problems_reported = 0

    # -- the main job ---------------------------------------------------------------------

    def fetch(
        self,
        refs: Iterable[FileRef],
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> MetadataResult:
        """Return metadata for every ref; progress(done, total) is called on this thread.

        Setting `cancel` stops further requests and waits; fetch() then returns within a moment,
        and files not fetched by then come back unknown. The worker threads are daemons, and one
        still inside a request when cancel comes finishes it on its own, so neither Ctrl-C nor
        the end of the program waits for it.
        """
        refs = list(dict.fromkeys(refs))
        groups: dict[GroupKey, list[FileRef]] = defaultdict(list)
        for ref in refs:
            groups[(ref.repo, ref.revision)].append(ref)
        result = MetadataResult()
        total, done = len(refs), 0
        if progress:
            progress(0, total)
        cancel = cancel or threading.Event()
        jobs: queue.SimpleQueue[GroupKey] = queue.SimpleQueue()
        for key in groups:
            jobs.put(key)
        answers: queue.SimpleQueue[tuple[GroupKey, MetadataResult | Exception]]
        answers = queue.SimpleQueue()
        workers = 1 if self.settings.offline else min(self.max_workers, len(groups))
        for number in range(workers):
            threading.Thread(
                target=self._work,
                args=(groups, jobs, answers, cancel),
                name=f"hub-meta-{number}",
                daemon=True,
            ).start()
        pending = set(groups)
        give_up_at: float | None = None
        while pending:
            try:
                key, outcome = answers.get(timeout=CANCEL_POLL)
            except queue.Empty:
                if not cancel.is_set():
                    continue
                # Workers that were waiting hand in what they have at once; one still inside
                # a request may take up to the read timeout, so it is left behind.
                give_up_at = give_up_at or time.monotonic() + CANCEL_GRACE
                if time.monotonic() >= give_up_at:
                    break
                continue
            if isinstance(outcome, Exception):
                raise outcome  # a bug in a worker: let it surface here, not vanish with the thread
            pending.discard(key)
            result.files.update(outcome.files)
            result.errors.update(outcome.errors)
            result.unknown.update(outcome.unknown)
            result.warnings.extend(outcome.warnings)
            done += len(groups[key])
            if progress:
                progress(done, total)
        for key in pending:
            result.unknown.update(groups[key])
        if not self.settings.offline:
            try:
                self.cache.save()
            except OSError as exc:
                result.warnings.append(f"Could not save metadata cache {self.cache.path}: {exc}")
        result.warnings.extend(self._new_cache_problems())
        return result

    def _work(
        self,
        groups: dict[GroupKey, list[FileRef]],
        jobs: queue.SimpleQueue[GroupKey],
        answers: queue.SimpleQueue[tuple[GroupKey, MetadataResult | Exception]],
        cancel: threading.Event,
    ) -> None:
        """Fetch groups until none is left; runs on a worker thread of fetch()."""
        while True:
            try:
                key = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                answers.put((key, self._fetch_group(*key, groups[key], cancel)))
            except Exception as exc:
                answers.put((key, exc))

    def _fetch_group(
        self, repo: str, revision: str, refs: list[FileRef], cancel: threading.Event
    ) -> MetadataResult:
        outcome = MetadataResult()
        if not is_valid_repo_id(repo):
            outcome.errors.update(dict.fromkeys(refs, messages.bad_repo_id(repo).message))
            return outcome
        try:
            commit = self._commit_for(repo, revision, outcome, cancel)
        except HubError as exc:
            _record_failure(outcome, refs, exc)
            return outcome
        if commit is None:
            outcome.unknown.update(refs)
            return outcome
        missing: list[FileRef] = []
        for ref in refs:
            meta = self.cache.file((self.endpoint, repo, commit, ref.path))
            if meta is None:
                missing.append(ref)
            else:
                outcome.files[ref] = _remote_file(ref, commit, meta)
        if not missing:
            return outcome
        if self.settings.offline or cancel.is_set():
            outcome.unknown.update(missing)
            return outcome
        try:
            entries = self._lookup(repo, revision, commit, [ref.path for ref in missing], cancel)
        except HubError as exc:
            _record_failure(outcome, missing, exc)
            return outcome
        for ref in missing:
            entry = entries.get(ref.path)
            if entry is None:
                if cancel.is_set():
                    outcome.unknown.add(ref)
                else:
                    outcome.errors[ref] = messages.file_not_found(repo, revision, ref.path).message
                continue
            try:
                meta = _file_meta(entry, repo, revision, ref.path)
            except HubError as exc:
                outcome.errors[ref] = exc.message
                continue
            self.cache.add_file((self.endpoint, repo, commit, ref.path), meta)
            outcome.files[ref] = _remote_file(ref, commit, meta)
        return outcome

    # -- revisions ------------------------------------------------------------------------

    def _commit_for(
        self, repo: str, revision: str, outcome: MetadataResult, cancel: threading.Event
    ) -> str | None:
        """Return the commit a revision points at: as given, from the cache, or asked once."""
        if is_commit(revision):
            return revision
        known = self.cache.branch((self.endpoint, repo, revision))
        if self.settings.offline or cancel.is_set():
            return known.commit if known else None
        if known is not None and 0 <= self._now() - known.checked < self.branch_ttl:
            return known.commit
        url = f"{self.endpoint}/api/models/{repo}/revision/{quote(revision, safe='')}"
        try:
            response = self.http.request("GET", url, cancel=cancel)
            if response.status != 200:
                raise self._failure(response, repo, revision)
            answer = _json(response, url)
            commit = answer.get("sha") if isinstance(answer, dict) else None
            if not isinstance(commit, str) or not is_commit(commit):
                raise messages.unexpected(url, "no commit id (sha) in the answer")
        except HubError as exc:
            if known is None or exc.kind not in _TRANSIENT:
                raise
            outcome.warnings.append(
                f"{exc.message} Using the last known commit {known.commit[:10]} of "
                f"{repo}@{revision}."
            )
            return known.commit
        self.cache.add_branch((self.endpoint, repo, revision), commit)
        return commit

    # -- file entries ---------------------------------------------------------------------

    def _lookup(
        self, repo: str, revision: str, commit: str, paths: list[str], cancel: threading.Event
    ) -> dict[str, dict[str, Any]]:
        """Return the Hub's entries for paths (missing ones absent), by paths-info or tree."""
        if not self._no_paths_info:
            try:
                return self._paths_info(repo, revision, commit, paths, cancel)
            except _PathsInfoUnavailable:
                self._no_paths_info = True
        return self._tree(repo, revision, commit, set(paths), cancel)

    def _paths_info(
        self, repo: str, revision: str, commit: str, paths: list[str], cancel: threading.Event
    ) -> dict[str, dict[str, Any]]:
        url = f"{self.endpoint}/api/models/{repo}/paths-info/{commit}"
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(paths), self.paths_per_request):
            if cancel.is_set():
                break
            batch = paths[start : start + self.paths_per_request]
            body = urlencode([("paths", path) for path in batch]).encode("ascii")
            response = self._request_unless_cancelled(
                "POST",
                url,
                cancel,
                body=body,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            if response is None:
                break
            # A server without the endpoint answers a bare 404/405 (no X-Error-Code); the Hub
            # itself names RepoNotFound/RevisionNotFound in that header.
            if response.status in (400, 404, 405, 501) and not response.headers.get("x-error-code"):
                raise _PathsInfoUnavailable
            if response.status != 200:
                raise self._failure(response, repo, revision)
            found.update(_entries_by_path(_json(response, url), url))
        return found

    def _tree(
        self, repo: str, revision: str, commit: str, wanted: set[str], cancel: threading.Event
    ) -> dict[str, dict[str, Any]]:
        url: str | None = f"{self.endpoint}/api/models/{repo}/tree/{commit}?recursive=1"
        found: dict[str, dict[str, Any]] = {}
        seen_pages: set[str] = set()
        while url and not wanted.issubset(found) and not cancel.is_set():
            if url in seen_pages or len(seen_pages) >= MAX_TREE_PAGES:
                raise messages.unexpected(url, "the tree listing does not end")
            seen_pages.add(url)
            response = self._request_unless_cancelled("GET", url, cancel)
            if response is None:
                break
            if response.status != 200:
                raise self._failure(response, repo, revision)
            for path, entry in _entries_by_path(_json(response, url), url).items():
                if path in wanted:
                    found[path] = entry
            url = _next_link(response.headers.get("link"), url)
            if url and origin(url) != origin(self.endpoint):
                raise messages.unexpected(url, "the tree listing continues on another host")
        return found

    def _request_unless_cancelled(
        self, method: str, url: str, cancel: threading.Event, **kwargs: Any
    ) -> urllib3.BaseHTTPResponse | None:
        """Send a request; return None when cancel stopped it, keeping what came before."""
        try:
            return self.http.request(method, url, cancel=cancel, **kwargs)
        except HubError as exc:
            if exc.kind == messages.CANCELLED:
                return None
            raise

    def _failure(self, response: urllib3.BaseHTTPResponse, repo: str, revision: str) -> HubError:
        return messages.http_failure(
            response.status,
            response.headers,
            endpoint=self.endpoint,
            repo=repo,
            revision=revision,
            token_sent=bool(self.settings.token),
        )

    def _new_cache_problems(self) -> list[str]:
        problems = self.cache.problems[self._problems_reported :]
        self._problems_reported += len(problems)
        return problems

    # -- downloads ------------------------------------------------------------------------

    def download_url(self, remote_file: RemoteFile) -> str:
        """Return the resolve URL pinned to the file's commit, so a moving branch cannot mix."""
        path = quote(remote_file.path, safe="/")
        return f"{self.endpoint}/{remote_file.repo}/resolve/{remote_file.commit}/{path}"

    @property
    def http(self) -> HubHttp:
        """Return the connection to the Hub, made on first use (see wandown.lazy)."""
        return self._http.get()

    def _connect(self) -> HubHttp:
        from wandown.remote.http import HubHttp

        return HubHttp(
            self.settings, pool=self._pool, pool_size=self.max_workers, retry=self._policy
        )

    def auth_headers(self, url: str) -> dict[str, str]:
        """Return {"authorization": "Bearer ..."} for URLs on the endpoint's origin, else {}."""
        return self.http.auth_headers(url)

    def close(self) -> None:
        """Close the pooled connections (the client stays usable; new ones open on demand)."""
        http = self._http.made()
        if http is not None:
            http.close()

    # -- the cache ------------------------------------------------------------------------

    def reset_cache(self) -> None:
        """Forget all cached metadata (the TUI's `r` key, --reset-cache)."""
        self.cache.clear()

    def export_metadata(self, path: Path) -> int:
        """Write all cached metadata to path (--export-metadata); return the entry count."""
        return self.cache.export(Path(path))

    def import_metadata(self, path: Path) -> int:
        """Merge an exported file into the cache (--import-metadata); return its entry count."""
        return self.cache.import_file(Path(path))


def _record_failure(outcome: MetadataResult, refs: list[FileRef], error: HubError) -> None:
    """File refs under error, or as unknown when the error is only that the user stopped."""
    if error.kind == messages.CANCELLED:
        outcome.unknown.update(refs)
    else:
        outcome.errors.update(dict.fromkeys(refs, error.message))


def _remote_file(ref: FileRef, commit: str, meta: FileMeta) -> RemoteFile:
    return RemoteFile(
        repo=ref.repo,
        revision=ref.revision,
        commit=commit,
        path=ref.path,
        size=meta.size,
        sha256=meta.sha256,
        blob_sha1=meta.blob_sha1,
    )


def _json(response: urllib3.BaseHTTPResponse, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise messages.unexpected(url, "the body is not JSON") from None


def _entries_by_path(listing: Any, url: str) -> dict[str, dict[str, Any]]:
    if not isinstance(listing, list):
        raise messages.unexpected(url, "expected a list of entries")
    return {
        entry["path"]: entry
        for entry in listing
        if isinstance(entry, dict) and isinstance(entry.get("path"), str)
    }


def _file_meta(entry: dict[str, Any], repo: str, revision: str, path: str) -> FileMeta:
    """Read size and identity from a paths-info or tree entry.

    LFS entries carry `lfs: {oid (sha256), size}` (older servers: `lfs.sha256`); the top-level
    `oid` is then the pointer's blob id, useless for the content. Other files have only `oid`.
    """
    if entry.get("type") == "directory":
        raise messages.not_a_file(repo, revision, path)
    lfs = entry.get("lfs")
    if isinstance(lfs, dict):
        sha256 = lfs.get("oid") or lfs.get("sha256")
        size = lfs.get("size", entry.get("size"))
        blob_sha1 = None
    else:
        sha256, size, blob_sha1 = None, entry.get("size"), entry.get("oid")
    sha256 = sha256.lower() if isinstance(sha256, str) else None
    blob_sha1 = blob_sha1.lower() if isinstance(blob_sha1, str) else None
    record = {"size": size, "sha256": sha256, "blob_sha1": blob_sha1}
    try:
        return parse_file_meta(record, f"{repo}/{path}")
    except MetadataFileError as exc:
        raise messages.unexpected(f"{repo}/{path}", str(exc)) from None


def _next_link(header: str | None, base: str) -> str | None:
    """Return the rel="next" target of an RFC 8288 Link header (the Hub paginates trees so)."""
    for target, params in _LINK.findall(header or ""):
        rel = _REL.search(params)
        if rel and "next" in rel.group(1).lower().split():
            try:
                url: str | None = urljoin(base, target)
            except ValueError:
                url = None
            if url is None or origin(url) == NO_ORIGIN:
                raise messages.unexpected(base, "the Link header names a malformed next page")
            return url
    return None
