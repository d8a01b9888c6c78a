"""Hugging Face cache folders inside a hub: `models--<owner>--<repo>/{blobs,snapshots,refs}`.

huggingface_hub stores each file once as `blobs/<etag>` and points at it from
`snapshots/<commit>/<path>` with a relative symlink. The etag is the file's sha256 for LFS files
(64 hex digits) and its git blob sha1 for small files kept in git (40 hex digits), so a blob's name
is its identity and proves a match without reading it (huggingface_hub docs, "Manage
huggingface_hub cache-system").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

REPO_FOLDER = re.compile(r"^(models|datasets|spaces)--(.+)$")
SHA256_NAME = re.compile(r"^[0-9a-f]{64}$")
SHA1_NAME = re.compile(r"^[0-9a-f]{40}$")


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

    def ref_commit(self, ref: str = "main") -> str | None:
        """Return the commit refs/<ref> names, read on demand (a tiny file)."""
        try:
            with open(os.path.join(self.folder, "refs", ref), encoding="ascii") as handle:
                commit = handle.read().strip()
        except (OSError, ValueError):
            return None
        return commit or None

    def commits_by_preference(self) -> list[str]:
        """Return snapshot commits: the one refs/main names first, then newest first."""
        ordered = sorted(self.snapshots, key=lambda c: self.snapshot_mtimes.get(c, 0), reverse=True)
        main = self.ref_commit()
        if main in self.snapshots:
            ordered.remove(main)
            ordered.insert(0, main)
        return ordered
