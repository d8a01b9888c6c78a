"""Hugging Face cache folders inside a hub: `models--<owner>--<repo>/{blobs,snapshots,refs}`.

huggingface_hub stores each file once as `blobs/<etag>` and points at it from
`snapshots/<commit>/<path>` with a relative symlink. The etag is the file's sha256 for LFS files
(64 hex digits) and its git blob sha1 for small files kept in git (40 hex digits) (huggingface_hub
docs, "Manage huggingface_hub cache-system"). A name is only what the blob should hold: bit rot or
an editor writing through a snapshot link changes the bytes and keeps the name, so a blob is
read (once; the sidecar remembers it) before it proves anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from wandown.digests import is_sha1

REPO_FOLDER = re.compile(r"^(models|datasets|spaces)--(.+)$")


def repo_id_from_folder(name: str) -> tuple[str, str] | None:
    """Return (repo type, repo id) for a cache folder name, e.g. ("models", "owner/name")."""
    found = REPO_FOLDER.match(name)
    if not found:
        return None
    # The Hub forbids "--" inside owner and repo names, so the separator is unambiguous.
    return found.group(1), found.group(2).replace("--", "/")


@dataclass
class HfCacheRepo:
    """One repository folder of a Hugging Face cache found in the hub."""

    repo_type: str
    repo_id: str
    folder: str  # absolute path of models--owner--name
    blobs: dict[str, str] = field(default_factory=dict)  # blob name -> key of the blob file
    # commit -> {path inside the repo (posix) -> blob name it links to}
    snapshots: dict[str, dict[str, str]] = field(default_factory=dict)
    snapshot_mtimes: dict[str, int] = field(default_factory=dict)

    def ref_commit(self, ref: str) -> str | None:
        """Return the commit refs/<ref> names, read on demand (a tiny file)."""
        try:
            with open(os.path.join(self.folder, "refs", ref), encoding="ascii") as handle:
                commit = handle.read().strip()
        except (OSError, ValueError):
            return None
        return commit or None

    def commit_for(self, revision: str) -> str | None:
        """Return the snapshot commit a revision names, or None when this cache lacks it.

        A commit (40 hex digits) is only its own snapshot; a branch or tag resolves through
        refs/<name>, as huggingface_hub does offline. Another snapshot is never a stand-in:
        a pinned file may differ from the same path on main.
        """
        if is_sha1(revision):
            return revision if revision in self.snapshots else None
        parts = revision.split("/")
        if not revision or revision.startswith("/") or ".." in parts or "" in parts:
            return None
        commit = self.ref_commit(revision)
        return commit if commit in self.snapshots else None
