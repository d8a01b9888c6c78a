"""What the two servers answer: the Hub's API and resolve URLs, and the CDN's signed links.

Shapes follow huggingface.co as huggingface_hub 2.x reads them (``file_download.py``,
``hf_api.py``, ``utils/_http.py``): small files are served by the Hub itself with
``ETag`` = git blob sha1; LFS files get a 302 to the CDN with ``X-Linked-Etag`` (sha256) and
``X-Linked-Size``, which huggingface_hub reads off the redirect itself because the CDN is
another origin. No ``X-Xet-*`` header is ever sent, so clients use plain HTTP.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, unquote, urlencode

from wandown.digests import is_sha1
from wandown.localhub.access import INVALID_CREDENTIALS
from wandown.localhub.faults import Fault
from wandown.localhub.http import Request, percent_encoded
from wandown.localhub.protocol import (
    FileMeta,
    JSONObject,
    decode_cursor,
    encode_cursor,
    file_entry,
    folder_entry,
    is_true,
    iso_time,
    sibling,
    sign_link,
    split_revision,
)
from wandown.localhub.repos import FolderRepo, Repo, RepoFile, Snapshot

if TYPE_CHECKING:
    from wandown.localhub.server import LocalHub

REPO_ACTIONS = frozenset({"revision", "tree", "paths-info", "refs", "resolve"})
LINK_LIFETIME = 3600  # seconds a CDN link stays valid, like the Hub's signed URLs
RELIST = "(wandown: run with --reset-cache)"


class Refused(Exception):
    """Stop handling a request with an error answer."""

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def content_disposition(path: str) -> str:
    """Name the file the way the Hub's CDN does (huggingface_hub parses ``filename="..."``).

    ``filename*`` carries the exact name (RFC 8187 encoding, RFC 6266 section 4.3);
    ``filename`` is the ASCII stand-in older clients read, every character a quoted-string
    cannot hold plainly replaced by "_".
    """
    name = path.rsplit("/", 1)[-1]
    exact = percent_encoded(name)
    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name)
    return f"inline; filename*=UTF-8''{exact}; filename=\"{plain}\";"


def shown(text: str) -> str:
    """Quote a name from the request for an error message, control characters escaped."""
    return json.dumps(text, ensure_ascii=False)


def content_type(path: str) -> str:
    """Guess a Content-Type from the file name."""
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def split_repo_id(segments: list[str]) -> tuple[str, list[str]]:
    """Take ``owner/name`` (or a bare ``name``) off the front of raw path segments."""
    if len(segments) >= 2 and unquote(segments[1]) not in REPO_ACTIONS:
        return f"{unquote(segments[0])}/{unquote(segments[1])}", segments[2:]
    return (unquote(segments[0]) if segments else ""), segments[1:]


@dataclass
class Found:
    """A repo and the snapshot a request asked for."""

    repo: Repo
    snapshot: Snapshot


class HubRoutes:
    """The Hub endpoint: /api/... and /<repo>/resolve/<rev>/<path>."""

    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub

    def __call__(self, request: Request) -> None:
        try:
            self._route(request)
        except Refused as refused:
            request.reply_error(refused.status, refused.code, refused.message)

    def _route(self, request: Request) -> None:
        segments = request.raw_path.strip("/").split("/")
        if segments[:2] == ["api", "whoami-v2"]:
            return self._whoami(request)
        if segments[:2] == ["api", "models"] and len(segments) > 2:
            repo_id, rest = split_repo_id(segments[2:])
            return self._api(request, repo_id, rest)
        if segments[0] == "models":
            segments = segments[1:]
        repo_id, rest = split_repo_id(segments)
        if rest[:1] == ["resolve"] and len(rest) >= 3 and request.command in ("GET", "HEAD"):
            revision, path_segments = split_revision(rest[1:])
            return self._resolve(request, repo_id, revision, unquote("/".join(path_segments)))
        raise Refused(404, None, "Not Found")

    # -- access -------------------------------------------------------------------------------

    def _find(self, request: Request, repo_id: str, revision: str | None, *, files: bool) -> Found:
        repo = self._admitted(request, repo_id, files=files)
        revision = revision or "main"
        snapshot = repo.resolve(revision)
        if snapshot is None:
            message = f"Invalid rev id: {shown(revision)}"
            if isinstance(repo, FolderRepo) and is_sha1(revision):
                message += (
                    f": the folder {shown(repo_id)} has changed since (or this localhub was "
                    "restarted), and only its current files are served; list the repo again "
                    f"{RELIST}"
                )
            raise Refused(404, "RevisionNotFound", message)
        return Found(repo, snapshot)

    def _admitted(self, request: Request, repo_id: str, *, files: bool) -> Repo:
        """Return the repo this request may read, or refuse it the way the Hub does."""
        policy = self.hub.policy
        authorization = request.headers.get("Authorization")
        denial = policy.token_denial(authorization)
        if denial is None:
            repo = self.hub.store.find(repo_id)
            # The Hub does not tell a missing repo from a private one.
            if repo is None:
                denial = policy.not_found(authorization)
            else:
                denial = policy.denial(repo_id, authorization, files=files)
                if denial is None:
                    return repo
        raise Refused(denial.status, denial.code, denial.message)

    # -- /api ---------------------------------------------------------------------------------

    def _api(self, request: Request, repo_id: str, rest: list[str]) -> None:
        action = unquote(rest[0]) if rest else ""
        if request.command == "POST":
            if action != "paths-info" or len(rest) < 2:
                raise Refused(404, None, "Not Found")
            revision, _ = split_revision(rest[1:])
            return self._paths_info(request, self._find(request, repo_id, revision, files=False))
        if action == "":
            return self._model_info(request, self._find(request, repo_id, None, files=False))
        if action == "revision" and len(rest) >= 2:
            revision = unquote("/".join(rest[1:]))
            return self._model_info(request, self._find(request, repo_id, revision, files=False))
        if action == "tree" and len(rest) >= 2:
            revision, path_segments = split_revision(rest[1:])
            found = self._find(request, repo_id, revision, files=False)
            return self._tree(request, found, unquote("/".join(path_segments)).strip("/"))
        if action == "refs" and len(rest) == 1:
            return self._refs(request, repo_id)
        raise Refused(404, None, "Not Found")

    def _model_info(self, request: Request, found: Found) -> None:
        snapshot = found.snapshot
        blobs = is_true(request.query_value("blobs"))
        repo_id = snapshot.repo_id
        info = {
            "_id": hashlib.sha1(repo_id.encode(), usedforsecurity=False).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "sha": snapshot.commit,
            "lastModified": iso_time(snapshot.last_modified_ns),
            "createdAt": iso_time(snapshot.last_modified_ns),
            "private": repo_id in self.hub.policy.private,
            "gated": self.hub.policy.gated_value(repo_id),
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": [
                sibling(self.hub.meta(f) if blobs else _path_only(f), blobs=blobs)
                for f in snapshot.files.values()
            ],
            "spaces": [],
            "usedStorage": sum(f.size for f in snapshot.files.values()),
        }
        expand = request.query.get("expand") or request.query.get("expand[]")
        if expand:
            info = {k: v for k, v in info.items() if k in {"_id", "id", *expand}}
        request.reply_json(200, info)

    def _entries(self, found: Found, paths: list[str], *, expand: bool) -> list[JSONObject]:
        snapshot = found.snapshot
        commit, modified_ns = snapshot.commit, snapshot.last_modified_ns
        entries = []
        for path in paths:
            file = snapshot.files.get(path)
            if file is not None:
                meta = self.hub.meta(file)
                entries.append(
                    file_entry(meta, expand=expand, commit=commit, modified_ns=modified_ns)
                )
            elif path in snapshot.folders:
                entries.append(
                    folder_entry(path, expand=expand, commit=commit, modified_ns=modified_ns)
                )
        return entries

    def _tree(self, request: Request, found: Found, folder: str) -> None:
        snapshot = found.snapshot
        if folder and folder not in snapshot.folders:
            raise Refused(404, "EntryNotFound", f"Entry not found: {shown(folder)}")
        recursive = is_true(request.query_value("recursive"))
        prefix = f"{folder}/" if folder else ""
        inside = sorted(p for p in (*snapshot.folders, *snapshot.files) if p.startswith(prefix))
        if not recursive:
            # One level, folders first then files, the order huggingface.co lists them in.
            inside = [p for p in inside if "/" not in p[len(prefix) :]]
            inside.sort(key=lambda p: (p not in snapshot.folders, p))
        offset = decode_cursor(request.query_value("cursor"))
        if offset is None:
            raise Refused(400, None, "Invalid cursor")
        limit = self.hub.page_size
        limit_text = request.query_value("limit")
        if limit_text and limit_text.isdigit() and int(limit_text) > 0:
            limit = min(limit, int(limit_text))
        page = inside[offset : offset + limit]
        headers = {}
        if offset + limit < len(inside):
            query = {k: v[-1] for k, v in request.query.items() if k != "cursor"}
            query["cursor"] = encode_cursor(offset + limit)
            next_url = f"{self._base(request)}{request.raw_path}?{urlencode(query)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        expand = is_true(request.query_value("expand"))
        request.reply_json(200, self._entries(found, page, expand=expand), headers)

    def _paths_info(self, request: Request, found: Found) -> None:
        kind = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                raise Refused(400, None, "Invalid JSON body") from None
            if not isinstance(body, dict):
                raise Refused(400, None, "Expected a JSON object")
            paths, expand = body.get("paths", []), bool(body.get("expand", False))
            if isinstance(paths, str):
                paths = [paths]
        else:
            form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
            paths = form.get("paths", []) + form.get("paths[]", [])
            expand = is_true(form["expand"][-1] if form.get("expand") else None)
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise Refused(400, None, '"paths" must be a list of strings')
        wanted = list(dict.fromkeys(p.strip("/") for p in paths))
        request.reply_json(200, self._entries(found, wanted, expand=expand))

    def _refs(self, request: Request, repo_id: str) -> None:
        found = self._find(request, repo_id, None, files=False)
        branches, pulls = [], []
        for name, commit in sorted(found.repo.branches().items()):
            if name.startswith("refs/"):
                pulls.append({"name": name, "ref": name, "targetCommit": commit})
            else:
                branches.append({"name": name, "ref": f"refs/heads/{name}", "targetCommit": commit})
        answer: JSONObject = {"branches": branches, "converts": [], "tags": []}
        if is_true(request.query_value("include_prs")):
            answer["pullRequests"] = pulls
        request.reply_json(200, answer)

    def _whoami(self, request: Request) -> None:
        token = self.hub.policy.known_token(request.headers.get("Authorization"))
        if token is None:
            raise Refused(401, None, INVALID_CREDENTIALS)
        request.reply_json(
            200,
            {
                "type": "user",
                "id": hashlib.sha1(token.encode()).hexdigest()[:24],
                "name": "localhub",
                "fullname": "localhub user",
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "localhub", "role": "read"},
                },
            },
        )

    # -- resolve ------------------------------------------------------------------------------

    def _resolve(self, request: Request, repo_id: str, revision: str, path: str) -> None:
        found = self._find(request, repo_id, revision, files=True)
        file = found.snapshot.files.get(path)
        if file is None:
            raise Refused(404, "EntryNotFound", _not_found(found.snapshot, path))
        fault = self.hub.faults.take(
            repo_id,
            path,
            server="hub",
            sends_body=request.command == "GET" and not (file.lfs and self.hub.cdn),
        )
        if fault is not None and fault.status is not None:
            return reply_fault_status(request, fault)
        meta = self.hub.meta(file)
        if fault is not None and fault.redirect_to is not None:
            return request.reply(302, {"Location": fault.redirect_to, **_linked(meta)})
        headers = {
            "X-Repo-Commit": found.snapshot.commit,
            "Accept-Ranges": "bytes",
            "Access-Control-Expose-Headers": "X-Repo-Commit,X-Linked-Etag,X-Linked-Size",
        }
        if meta.lfs and self.hub.cdn:
            link = self.hub.cdn_link(request, repo_id, found.snapshot.commit, meta)
            headers.update(
                {
                    "Location": link,
                    "ETag": f'"{meta.oid}"',
                    "X-Linked-Etag": f'"{meta.etag}"',
                    "X-Linked-Size": str(meta.size),
                }
            )
            return request.reply(302, headers)
        # Without a CDN an LFS file is sent from here, with the X-Linked-* headers a redirect
        # would carry: huggingface_hub and wandown read those first (as from hf-mirror.com).
        headers.update(
            {
                "ETag": f'"{meta.etag}"',
                **_linked(meta),
                "Content-Type": content_type(path),
                "Content-Disposition": content_disposition(path),
            }
        )
        request.send_file(
            file.local, file.size, headers, fault, self.hub.stopping, _changed_check(file)
        )

    def _base(self, request: Request) -> str:
        host = request.headers.get("Host") or f"{self.hub.host}:{self.hub.port}"
        return f"http://{host}"


def _not_found(snapshot: Snapshot, path: str) -> str:
    """Say why path is not in snapshot: never there, or changed on disk since that commit."""
    why = snapshot.changed.get(path)
    if why is None:
        return f"Entry not found: {shown(path)}"
    served = "and only the folder's current files are served"
    return f"{shown(path)} {why}, {served}; list the repo again {RELIST}"


def _changed_check(file: RepoFile) -> Callable[[os.stat_result], str | None]:
    """Return the check send_file makes on the file it opened: is it still this version?"""

    def check(info: os.stat_result) -> str | None:
        if not file.changed_from(info):
            return None
        return f"{shown(file.path)} changed on disk while it was being served; ask again"

    return check


def _linked(meta: FileMeta) -> dict[str, str]:
    """Return the X-Linked-* headers the Hub puts on an LFS file's redirect (none otherwise)."""
    if not meta.lfs:
        return {}
    return {"X-Linked-Etag": f'"{meta.etag}"', "X-Linked-Size": str(meta.size)}


def _path_only(file: RepoFile) -> FileMeta:
    return FileMeta(file.path, file.size, file.lfs, "", "", None, None)


def reply_fault_status(request: Request, fault: Fault) -> None:
    """Answer a fault's status, with the rate-limit headers the Hub sends on 429."""
    status = fault.status or 500
    headers = {}
    wait = fault.retry_after if fault.retry_after is not None else (1 if status == 429 else None)
    if wait is not None:
        seconds = max(0, round(wait))
        headers["Retry-After"] = str(seconds)
        if status == 429:
            headers["RateLimit"] = f'"api";r=0;t={seconds}'
    message = "Too Many Requests" if status == 429 else f"Injected fault {status}"
    request.reply_error(status, None, message, headers)


class CdnRoutes:
    """The CDN endpoint: /repos/<owner>/<name>/<sha256>?path=...&commit=...&issued=...&sig=..."""

    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub

    def __call__(self, request: Request) -> None:
        try:
            self._serve(request)
        except Refused as refused:
            request.reply(
                refused.status,
                {"Content-Type": "application/xml", "X-Error-Message": refused.message},
                f"<Error><Code>{refused.code}</Code><Message>{refused.message}"
                "</Message></Error>".encode(),
            )

    def _serve(self, request: Request) -> None:
        segments = request.raw_path.strip("/").split("/")
        if request.command not in ("GET", "HEAD") or len(segments) < 3 or segments[0] != "repos":
            raise Refused(404, "NoSuchKey", "The specified key does not exist.")
        repo_id, rest = split_repo_id(segments[1:])
        sha256 = rest[0] if len(rest) == 1 else ""
        field = request.query_value
        path, commit = field("path") or "", field("commit") or ""
        issued, expires = field("issued") or "", field("expires") or ""
        expected = sign_link(self.hub.secret, repo_id, sha256, path, commit, issued, expires)
        if field("sig") != expected or not expires.isdigit():
            raise Refused(403, "AccessDenied", "Invalid signature")
        now = time.time()
        if now > int(expires):
            raise Refused(403, "AccessDenied", "Request has expired")
        repo = self.hub.store.find(repo_id)
        snapshot = repo and (repo.resolve(commit) or repo.resolve("main"))
        file = snapshot.files.get(path) if snapshot else None
        if file is None or self.hub.meta(file).sha256 != sha256:
            message = "The specified key does not exist."
            if snapshot and (path in snapshot.changed or file is not None):
                message = (
                    f"{shown(path)} changed on disk after this link was issued, and only its "
                    f"current version is served; ask the Hub again {RELIST}"
                )
            raise Refused(404, "NoSuchKey", message)
        try:
            age = now - float(issued)
        except ValueError:
            age = None
        fault = self.hub.faults.take(
            repo_id, path, server="cdn", sends_body=request.command == "GET", link_age=age
        )
        if fault is not None and fault.expire_after is not None:
            raise Refused(403, "AccessDenied", "Request has expired")
        if fault is not None and fault.status is not None:
            return reply_fault_status(request, fault)
        headers = {
            "ETag": f'"{sha256}"',
            "Accept-Ranges": "bytes",
            "Content-Type": content_type(path),
            "Content-Disposition": content_disposition(path),
        }
        request.send_file(
            file.local, file.size, headers, fault, self.hub.stopping, _changed_check(file)
        )


def make_cdn_link(base: str, secret: bytes, repo_id: str, commit: str, meta: FileMeta) -> str:
    """Return a signed CDN link for an LFS file, stamped with the time it was issued."""
    issued = f"{time.time():.3f}"
    expires = str(int(time.time()) + LINK_LIFETIME)
    sha256 = meta.sha256 or ""
    query = {
        "path": meta.path,
        "commit": commit,
        "issued": issued,
        "expires": expires,
        "sig": sign_link(secret, repo_id, sha256, meta.path, commit, issued, expires),
    }
    return f"{base}/repos/{quote(repo_id)}/{sha256}?{urlencode(query)}"
