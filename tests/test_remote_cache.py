"""The metadata cache file: round trip, corrupt files, two writers, export and import."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import wandown
from wandown.remote import MetadataCache, MetadataFileError
from wandown.remote import cache as cache_module
from wandown.remote.cache import BranchMeta, FileMeta, default_cache_path

REPO_ROOT = Path(wandown.__file__).resolve().parent.parent
EP = "https://huggingface.co"
C1 = "1" * 40
C2 = "2" * 40
LFS = FileMeta(size=10, sha256="a" * 64, blob_sha1=None)
SMALL = FileMeta(size=3, sha256=None, blob_sha1="b" * 40)


def test_default_path_follows_wandown_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDOWN_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_path() == tmp_path / "c" / "metadata.json"


def test_round_trip_through_the_file(tmp_path):
    path = tmp_path / "metadata.json"
    cache = MetadataCache(path, now=lambda: 1000.0)
    cache.add_file((EP, "o/r", C1, "a.safetensors"), LFS)
    cache.add_file((EP, "o/r", C1, "b.json"), SMALL)
    cache.add_branch((EP, "o/r", "main"), C1)
    cache.save()
    again = MetadataCache(path)
    assert again.file((EP, "o/r", C1, "a.safetensors")) == LFS
    assert again.file((EP, "o/r", C1, "b.json")) == SMALL
    assert again.file(("http://mirror", "o/r", C1, "b.json")) is None
    assert again.branch((EP, "o/r", "main")) == BranchMeta(C1, 1000.0)
    assert json.loads(path.read_text())["format"] == "wandown-metadata"
    assert again.problems == []


def test_corrupt_file_is_moved_aside_and_reported_once(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text("{ not json")
    cache = MetadataCache(path)
    assert cache.file((EP, "o/r", C1, "a")) is None
    assert len(cache.problems) == 1
    assert "unreadable" in cache.problems[0]
    assert not path.exists()
    assert len(list(tmp_path.glob("metadata.json.corrupt-*"))) == 1
    cache.add_file((EP, "o/r", C1, "a"), LFS)
    cache.save()
    assert len(cache.problems) == 1
    assert MetadataCache(path).file((EP, "o/r", C1, "a")) == LFS


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        '{"format": "wandown-metadata", "version": 99, "hubs": {}}',
        '{"format": "wandown-metadata", "version": 1, "hubs": {"e": {"commits": {"o/r": '
        '{"notacommit": {}}}}}}',
        '{"format": "wandown-metadata", "version": 1, "hubs": {"e": {"commits": {"o/r": {"'
        + C1
        + '": {"a": {"size": -1, "sha256": null, "blob_sha1": "'
        + "b" * 40
        + '"}}}}}}}',
    ],
)
def test_wrong_shapes_count_as_corrupt(tmp_path, content):
    path = tmp_path / "metadata.json"
    path.write_text(content)
    cache = MetadataCache(path)
    assert cache.branch((EP, "o/r", "main")) is None
    assert len(cache.problems) == 1


def test_clear_forgets_disk_and_memory(tmp_path):
    path = tmp_path / "metadata.json"
    cache = MetadataCache(path)
    cache.add_file((EP, "o/r", C1, "a"), LFS)
    cache.save()
    cache.clear()
    assert not path.exists()
    assert cache.file((EP, "o/r", C1, "a")) is None
    assert MetadataCache(path).file((EP, "o/r", C1, "a")) is None


def test_export_then_import_into_an_empty_cache(tmp_path):
    source = MetadataCache(tmp_path / "one.json", now=lambda: 50.0)
    source.add_file((EP, "o/r", C1, "a"), LFS)
    source.add_file((EP, "o/r", C2, "b"), SMALL)
    source.add_branch((EP, "o/r", "main"), C2)
    source.save()
    source.add_file((EP, "x/y", C1, "unsaved"), SMALL)  # memory only, still exported
    exported = tmp_path / "export.json"
    assert source.export(exported) == 4

    target = MetadataCache(tmp_path / "two.json")
    assert target.import_file(exported) == 4
    reread = MetadataCache(tmp_path / "two.json")
    assert reread.file((EP, "o/r", C1, "a")) == LFS
    assert reread.file((EP, "x/y", C1, "unsaved")) == SMALL
    assert reread.branch((EP, "o/r", "main")) == BranchMeta(C2, 50.0)


def test_import_keeps_the_newer_branch_answer(tmp_path):
    old = MetadataCache(tmp_path / "old.json", now=lambda: 10.0)
    old.add_branch((EP, "o/r", "main"), C1)
    old.export(tmp_path / "old-export.json")
    target = MetadataCache(tmp_path / "target.json", now=lambda: 20.0)
    target.add_branch((EP, "o/r", "main"), C2)
    target.save()
    target.import_file(tmp_path / "old-export.json")
    assert MetadataCache(tmp_path / "target.json").branch((EP, "o/r", "main")).commit == C2


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{oops", "not a wandown metadata file"),
        ('{"format": "other"}', "format"),
        (None, "Cannot read"),
    ],
)
def test_bad_import_file_is_a_clear_error(tmp_path, content, needle):
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    cache = MetadataCache(tmp_path / "metadata.json")
    with pytest.raises(MetadataFileError, match=needle) as raised:
        cache.import_file(bad)
    assert str(bad) in str(raised.value)
    assert not (tmp_path / "metadata.json").exists()


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from wandown.remote.cache import FileMeta, MetadataCache
    path, name = Path(sys.argv[1]), sys.argv[2]
    for i in range(25):
        cache = MetadataCache(path)
        cache.add_file(("e", "o/r", "1" * 40, f"{name}-{i}"), FileMeta(i, None, "b" * 40))
        cache.add_branch(("e", name, "main"), "2" * 40)
        cache.save()
    """
)


def test_two_processes_writing_lose_no_entry(tmp_path):
    path = tmp_path / "metadata.json"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], cwd=REPO_ROOT)
        for name in ("alpha", "beta", "gamma")
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0, 0]
    cache = MetadataCache(path)
    for name in ("alpha", "beta", "gamma"):
        assert cache.branch(("e", name, "main")) is not None
        for i in range(25):
            assert cache.file(("e", "o/r", "1" * 40, f"{name}-{i}")) == FileMeta(i, None, "b" * 40)
    assert cache.problems == []
    assert not list(tmp_path.glob("*.tmp"))


def cache_with_one_entry(path):
    cache = MetadataCache(path)
    cache.add_file((EP, "o/r", C1, "a"), LFS)
    return cache


@pytest.mark.parametrize("where", ["below-a-file", "is-a-folder", "in-proc"])
def test_export_that_cannot_be_written_names_the_path_and_the_reason(tmp_path, where):
    (tmp_path / "plain-file").write_text("x")
    (tmp_path / "folder").mkdir()
    destination = {
        "below-a-file": tmp_path / "plain-file" / "export.json",
        "is-a-folder": tmp_path / "folder",
        "in-proc": Path("/proc/no-such-folder/export.json"),
    }[where]
    cache = cache_with_one_entry(tmp_path / "metadata.json")
    with pytest.raises(MetadataFileError) as raised:
        cache.export(destination)
    message = str(raised.value)
    assert message.startswith(f"Cannot write metadata file {destination}: ")
    assert message.split(": ", 1)[1] in {
        "File exists.",  # mkdir of the folder, which is a file
        "Is a directory.",
        "No such file or directory.",
    }
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_export_is_readable_as_the_umask_allows(tmp_path, umask, mode):
    exported = tmp_path / "export.json"
    previous = os.umask(umask)
    try:
        cache_with_one_entry(tmp_path / "metadata.json").export(exported)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(exported.stat().st_mode) == mode


def test_cache_file_stays_private(tmp_path):
    cache = cache_with_one_entry(tmp_path / "metadata.json")
    cache.save()
    assert stat.S_IMODE((tmp_path / "metadata.json").stat().st_mode) == 0o600


@pytest.mark.parametrize("blocker", ["parent-is-a-file", "cache-is-a-folder"])
def test_clear_that_cannot_remove_the_file_is_a_clear_error(tmp_path, blocker):
    if blocker == "parent-is-a-file":
        (tmp_path / "cache").write_text("x")
    else:
        (tmp_path / "cache" / "metadata.json" / "inside").mkdir(parents=True)
    path = tmp_path / "cache" / "metadata.json"
    with pytest.raises(MetadataFileError) as raised:
        MetadataCache(path).clear()
    assert str(raised.value).startswith(f"Cannot clear the metadata cache {path}: ")


def test_import_into_a_cache_that_cannot_be_written_is_a_clear_error(tmp_path):
    exported = tmp_path / "export.json"
    cache_with_one_entry(tmp_path / "metadata.json").export(exported)
    (tmp_path / "blocked").write_text("x")
    path = tmp_path / "blocked" / "metadata.json"
    with pytest.raises(MetadataFileError) as raised:
        MetadataCache(path).import_file(exported)
    assert str(raised.value) == f"Cannot write the metadata cache {path}: File exists."


class NoLocks:
    """fcntl on an NFS mount without a lock daemon: every flock fails with ENOLCK."""

    LOCK_EX, LOCK_UN = fcntl.LOCK_EX, fcntl.LOCK_UN

    def __init__(self):
        self.calls = 0

    def flock(self, fd, operation):
        self.calls += 1
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))


def test_a_file_system_without_locks_degrades_to_unlocked_writes_with_one_warning(
    tmp_path, monkeypatch
):
    no_locks = NoLocks()
    monkeypatch.setattr(cache_module, "fcntl", no_locks)
    path = tmp_path / "metadata.json"
    cache = cache_with_one_entry(path)
    cache.save()
    cache.add_file((EP, "o/r", C2, "b"), SMALL)
    cache.save()
    assert no_locks.calls == 1  # not tried again once it failed
    assert cache.problems == [
        f"Cannot lock {cache.lock_path} (No locks available); the metadata cache is written "
        "without a lock, so two wandown runs at once may lose entries."
    ]
    again = MetadataCache(path)
    assert again.file((EP, "o/r", C1, "a")) == LFS
    assert again.file((EP, "o/r", C2, "b")) == SMALL


def test_an_import_with_an_impossible_size_is_refused_not_half_taken(tmp_path):
    source = MetadataCache(tmp_path / "source.json")
    source.add_file((EP, "o/r", C1, "a"), LFS)
    exported = tmp_path / "export.json"
    source.export(exported)
    data = json.loads(exported.read_text())
    text = json.dumps(data).replace(f'"size": {LFS.size}', f'"size": {10**30}')
    assert str(10**30) in text
    exported.write_text(text)
    target = MetadataCache(tmp_path / "target.json")
    with pytest.raises(MetadataFileError, match="bad size"):
        target.import_file(exported)
    assert not (tmp_path / "target.json").exists()
