"""Matching wanted files against a mixed hub: proofs, decoys, the sidecar, leads and notices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.test_hub_builders import (
    blake3_hex,
    blob_sha1_hex,
    content,
    make_hf_cache,
    make_invokeai,
    sha256_hex,
    write,
)
from wandown import digests
from wandown.hub import ModelHubError, Wanted, link_into_place, scan_hub

A = content("true A", 5000)
B = content("true B vae", 6000)
C = content("true C renamed by invokeai", 7000)
CONFIG = b'{"model_type": "wan"}\n'


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("WANDOWN_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    """A hub with a plain tree, a Hugging Face cache, an InvokeAI install and decoys."""
    root = tmp_path / "hub"
    write(root / "plain" / "deep" / "er" / "wan_a.safetensors", A)
    write(root / "plain" / "same_size_decoy.bin", content("decoy", len(A)))
    write(root / "plain" / "vae" / "wan_vae.safetensors", content("same name", len(B)))
    write(root / "plain" / "truncated_c.safetensors", C[:-100])
    make_hf_cache(
        root / "hf", "Wan-AI/Wan2.1", {"vae/wan_vae.safetensors": B, "config.json": CONFIG}
    )
    make_invokeai(root / "invoke", {"sd-1/main/renamed.safetensors": C})
    return root


WANT_A = Wanted(size=len(A), sha256=sha256_hex(A))
WANT_B = Wanted(
    size=len(B), sha256=sha256_hex(B), repo="Wan-AI/Wan2.1", path="vae/wan_vae.safetensors"
)
WANT_C = Wanted(size=len(C), sha256=sha256_hex(C))
WANT_CONFIG = Wanted(size=len(CONFIG), blob_sha1=blob_sha1_hex(CONFIG))
WANT_MISSING = Wanted(size=len(A), sha256=sha256_hex(content("nowhere", len(A))))
ALL = [WANT_A, WANT_B, WANT_C, WANT_CONFIG, WANT_MISSING]


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every hub file hash_file reads from now on."""
    reads: list[Path] = []
    real = digests.hash_file

    def counting(path, kinds, **kwargs):
        reads.append(Path(path))
        return real(path, kinds, **kwargs)

    monkeypatch.setattr(digests, "hash_file", counting)
    return reads


def test_true_matches_found_and_no_decoy(hub: Path, tmp_path: Path, monkeypatch) -> None:
    reads = count_reads(monkeypatch)
    index = scan_hub(hub)
    matches = index.match(ALL)
    blob = hub / "hf" / "models--Wan-AI--Wan2.1" / "blobs"
    assert matches == {
        WANT_A: hub / "plain" / "deep" / "er" / "wan_a.safetensors",
        WANT_B: blob / sha256_hex(B),
        WANT_C: hub / "invoke" / "models" / "sd-1" / "main" / "renamed.safetensors",
        WANT_CONFIG: blob / blob_sha1_hex(CONFIG),
    }
    # Only size-equal candidates were read; HF blobs are leads read first (a name is no proof),
    # so the same-name decoy of B's size and the truncated copy of C were never read.
    assert sorted(reads) == sorted(
        [
            hub / "plain" / "deep" / "er" / "wan_a.safetensors",
            hub / "plain" / "same_size_decoy.bin",
            hub / "invoke" / "models" / "sd-1" / "main" / "renamed.safetensors",
            blob / sha256_hex(B),
            blob / blob_sha1_hex(CONFIG),
        ]
    )
    reads.clear()  # the sidecar remembers every proof: the next run reads nothing
    assert scan_hub(hub).match([WANT_A, WANT_B, WANT_C, WANT_CONFIG]) == matches
    assert reads == []
    wan2gp = tmp_path / "wan2gp"
    for number, (wanted, hub_file) in enumerate(matches.items()):
        dest = wan2gp / "ckpts" / f"file{number}"
        link_into_place(hub_file, dest)
        assert os.readlink(dest) == str(hub_file) and os.path.isabs(os.readlink(dest))
        assert sha256_hex(dest.read_bytes()) == sha256_hex(hub_file.read_bytes())
        assert dest.stat().st_size == wanted.size


def test_second_run_reads_nothing(hub: Path, monkeypatch) -> None:
    first = scan_hub(hub).match(ALL)
    reads = count_reads(monkeypatch)
    opened: list[str] = []
    real_open = open

    def watching_open(file, *args, **kwargs):
        opened.append(os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watching_open)
    second = scan_hub(hub).match(ALL)
    assert second == first
    assert reads == []
    # InvokeAI's database is queried for leads (metadata); no model file is opened.
    invokeai_db = str(hub / "invoke" / "databases" / "invokeai.db")
    assert [p for p in opened if p.startswith(str(hub)) and p != invokeai_db] == []


def test_changed_file_is_hashed_again(hub: Path, monkeypatch) -> None:
    assert WANT_A in scan_hub(hub).match([WANT_A])
    a_file = hub / "plain" / "deep" / "er" / "wan_a.safetensors"
    a_file.write_bytes(content("edited", len(A)))
    os.utime(a_file, ns=(1, 1))  # a different mtime even on coarse clocks
    reads = count_reads(monkeypatch)
    assert scan_hub(hub).match([WANT_A]) == {}
    assert a_file in reads


def test_sidecar_lives_in_the_cache_and_records_identities(hub: Path, own_cache: Path) -> None:
    index = scan_hub(hub)
    index.match([WANT_A])
    assert index.sidecar.path.parent == own_cache / "hub"
    data = json.loads(index.sidecar.path.read_text())
    entry = data["files"]["plain/deep/er/wan_a.safetensors"]
    assert entry["sha256"] == sha256_hex(A)
    assert entry["blake3"] == blake3_hex(A)
    assert entry["blob_sha1"] == blob_sha1_hex(A)  # small files get every identity at once
    assert {"size", "mtime_ns", "ctime_ns", "ino", "dev"} <= set(entry)


def test_progress_reports_each_hashed_file(hub: Path) -> None:
    seen: dict[Path, list[tuple[int, int]]] = {}
    scan_hub(hub).match(
        [WANT_C], progress=lambda p, done, total: seen.setdefault(p, []).append((done, total))
    )
    renamed = hub / "invoke" / "models" / "sd-1" / "main" / "renamed.safetensors"
    assert list(seen) == [renamed]
    assert seen[renamed][0] == (0, len(C)) and seen[renamed][-1] == (len(C), len(C))


def test_cancel_stops_hashing_and_keeps_what_was_done(hub: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    assert scan_hub(hub).match([WANT_A], cancel=cancel) == {}
    assert scan_hub(hub).match([WANT_A]) == {
        WANT_A: hub / "plain" / "deep" / "er" / "wan_a.safetensors"
    }


def test_without_blake3_everything_else_works(hub: Path, monkeypatch) -> None:
    only_blake3 = Wanted(size=len(A), blake3=blake3_hex(A))
    monkeypatch.setitem(sys.modules, "blake3", None)  # import blake3 now raises ImportError
    notices: list[str] = []
    index = scan_hub(hub, notices=notices.append)
    assert not index.blake3_available
    assert set(index.match(ALL)) == {WANT_A, WANT_B, WANT_C, WANT_CONFIG}
    assert sum("blake3" in n for n in notices) == 1
    assert index.match([only_blake3]) == {}
    assert sum("blake3" in n for n in notices) == 1


def test_match_by_blake3_when_that_is_the_identity(hub: Path) -> None:
    wanted = Wanted(size=len(C), blake3=blake3_hex(C))
    assert scan_hub(hub).match([wanted]) == {
        wanted: hub / "invoke" / "models" / "sd-1" / "main" / "renamed.safetensors"
    }


def test_blob_sha1_match_of_a_plain_file(tmp_path: Path) -> None:
    small = b"tokenizer contents\n"
    write(tmp_path / "hub" / "tok.json", small)
    wanted = Wanted(size=len(small), blob_sha1=blob_sha1_hex(small))
    assert scan_hub(tmp_path / "hub").match([wanted]) == {wanted: tmp_path / "hub" / "tok.json"}


def test_invokeai_lead_outside_the_hub_is_confirmed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "model.safetensors"
    data = content("used in place", 3000)
    make_invokeai(tmp_path / "hub" / "invoke", {}, outside={elsewhere: data})
    wanted = Wanted(size=len(data), sha256=sha256_hex(data))
    wrong = Wanted(size=len(data), sha256=sha256_hex(content("other", len(data))))
    assert scan_hub(tmp_path / "hub").match([wanted, wrong]) == {wanted: elsewhere}


def test_invokeai_record_catches_a_damaged_file(tmp_path: Path) -> None:
    data = content("bit rot", 3000)
    make_invokeai(
        tmp_path / "hub", {"m.safetensors": data}, hashes={"m.safetensors": "blake3:" + "0" * 64}
    )
    notices: list[str] = []
    scan_hub(tmp_path / "hub", notices=notices.append).match([Wanted(size=3000, blake3="1" * 64)])
    assert any("damaged" in n and "m.safetensors" in n for n in notices)


def test_invokeai_unknown_schema_fails_soft(tmp_path: Path) -> None:
    import sqlite3

    write(tmp_path / "hub" / "models" / "m.bin", A)
    (tmp_path / "hub" / "databases").mkdir()
    connection = sqlite3.connect(tmp_path / "hub" / "databases" / "invokeai.db")
    connection.execute("CREATE TABLE models (id TEXT, blob BLOB)")
    connection.commit()
    connection.close()
    notices: list[str] = []
    index = scan_hub(tmp_path / "hub", notices=notices.append)
    assert index.match([WANT_A, WANT_MISSING]) == {WANT_A: tmp_path / "hub" / "models" / "m.bin"}
    assert any("unknown schema" in n for n in notices)


def test_locked_invokeai_database_is_read_immutably(tmp_path: Path) -> None:
    import sqlite3

    elsewhere = tmp_path / "elsewhere" / "model.safetensors"
    make_invokeai(tmp_path / "hub", {}, outside={elsewhere: A})
    holder = sqlite3.connect(tmp_path / "hub" / "databases" / "invokeai.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert scan_hub(tmp_path / "hub").match([WANT_A]) == {WANT_A: elsewhere}
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_find_in_hf_cache_offline(hub: Path) -> None:
    index = scan_hub(hub)
    blobs = hub / "hf" / "models--Wan-AI--Wan2.1" / "blobs"
    assert index.find_in_hf_cache("Wan-AI/Wan2.1", "vae/wan_vae.safetensors") == (
        blobs / sha256_hex(B),
        sha256_hex(B),
    )
    assert index.find_in_hf_cache("Wan-AI/Wan2.1", "config.json") == (
        blobs / blob_sha1_hex(CONFIG),
        sha256_hex(CONFIG),
    )
    assert index.find_in_hf_cache("Wan-AI/Wan2.1", "missing.safetensors") is None
    assert index.find_in_hf_cache("Other/repo", "config.json") is None


def test_find_in_hf_cache_prefers_refs_main(tmp_path: Path) -> None:
    old, new = content("old", 100), content("new", 100)
    repo = make_hf_cache(tmp_path / "hub", "o/r", {"w.safetensors": old}, commit="a" * 40)
    make_hf_cache(tmp_path / "hub", "o/r", {"w.safetensors": new}, commit="b" * 40)
    os.utime(repo / "snapshots" / ("a" * 40), ns=(2**62, 2**62))  # newest folder, but not main
    found = scan_hub(tmp_path / "hub").find_in_hf_cache("o/r", "w.safetensors")
    assert found == (repo / "blobs" / sha256_hex(new), sha256_hex(new))


def test_same_file_twice_is_read_once(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "hub" / "real" / "a.bin", A)
    os.symlink(tmp_path / "hub" / "real" / "a.bin", tmp_path / "hub" / "alias.bin")
    reads = count_reads(monkeypatch)
    matches = scan_hub(tmp_path / "hub").match([WANT_A, WANT_MISSING])
    assert matches == {WANT_A: tmp_path / "hub" / "real" / "a.bin"}
    assert len(reads) == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"size": -1}, {"size": 1, "sha256": "abc"}, {"size": 1, "blob_sha1": "z" * 40}],
)
def test_bad_wanted_is_a_clear_error(kwargs) -> None:
    with pytest.raises(ModelHubError):
        Wanted(**kwargs)


def test_wanted_digests_are_normalised() -> None:
    assert Wanted(size=1, sha256="AB" * 32) == Wanted(size=1, sha256="ab" * 32)


def test_missing_hub_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelHubError, match="cannot use the hub folder"):
        scan_hub(tmp_path / "nope")
    write(tmp_path / "file", b"x")
    with pytest.raises(ModelHubError, match="not a folder"):
        scan_hub(tmp_path / "file")


WRITER = """
import sys
from pathlib import Path
from wandown.hub.sidecar import FileStat, HashSidecar
path, writer = Path(sys.argv[1]), sys.argv[2]
for number in range(25):
    sidecar = HashSidecar(path, Path("/hub"), print)
    sidecar.record(f"{writer}/{number}", FileStat(number, 1, 2, 3, 4), {"sha256": "0" * 64})
    sidecar.save()
"""


def test_concurrent_sidecar_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "hub" / "shared.json"
    root = Path(__file__).resolve().parent.parent
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{n}"], cwd=root)
        for n in range(4)
    ]
    assert [w.wait(timeout=60) for w in writers] == [0, 0, 0, 0]
    files = json.loads(path.read_text())["files"]
    assert set(files) == {f"w{n}/{i}" for n in range(4) for i in range(25)}


def test_corrupt_sidecar_is_replaced_with_a_notice(hub: Path, own_cache: Path) -> None:
    index = scan_hub(hub)
    index.sidecar.path.parent.mkdir(parents=True, exist_ok=True)
    index.sidecar.path.write_text("{not json")
    notices: list[str] = []
    index = scan_hub(hub, notices=notices.append)
    assert WANT_A in index.match([WANT_A])
    assert any("not valid JSON" in n for n in notices)
    assert json.loads(index.sidecar.path.read_text())["version"] == 1


def test_wal_invokeai_database_gets_no_new_files(tmp_path: Path) -> None:
    import sqlite3

    elsewhere = tmp_path / "elsewhere" / "model.safetensors"
    make_invokeai(tmp_path / "hub", {}, outside={elsewhere: A})
    connection = sqlite3.connect(tmp_path / "hub" / "databases" / "invokeai.db")
    assert connection.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    connection.close()
    before = sorted(p.name for p in (tmp_path / "hub" / "databases").iterdir())
    assert scan_hub(tmp_path / "hub").match([WANT_A]) == {WANT_A: elsewhere}
    assert (
        sorted(p.name for p in (tmp_path / "hub" / "databases").iterdir())
        == before
        == ["invokeai.db"]
    )


def test_invokeai_lead_is_read_first_but_proves_nothing(tmp_path: Path, monkeypatch) -> None:
    hub = tmp_path / "hub"
    write(hub / "aaa_decoy.safetensors", content("decoy", len(B)))
    source = "Wan-AI/Wan2.1::vae/wan_vae.safetensors"
    make_invokeai(
        hub / "invoke", {"vae/renamed.safetensors": B}, sources={"vae/renamed.safetensors": source}
    )
    reads = count_reads(monkeypatch)
    assert scan_hub(hub).match([WANT_B]) == {
        WANT_B: hub / "invoke" / "models" / "vae" / "renamed.safetensors"
    }
    assert reads == [hub / "invoke" / "models" / "vae" / "renamed.safetensors"]  # source named it

    # A record claiming the wanted BLAKE3 for a file with other content is only a lead.
    liar = tmp_path / "hub2"
    make_invokeai(
        liar,
        {"m.safetensors": content("other", 3000)},
        hashes={"m.safetensors": "blake3:" + "a" * 64},
    )
    notices: list[str] = []
    index = scan_hub(liar, notices=notices.append)
    assert index.match([Wanted(size=3000, blake3="a" * 64)]) == {}
    assert any("damaged" in n for n in notices)


def test_candidates_include_invokeai_files_outside_the_hub(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "model.safetensors"
    make_invokeai(tmp_path / "hub", {}, outside={elsewhere: A})
    index = scan_hub(tmp_path / "hub")
    assert index.candidates(len(A)) == [str(elsewhere)]
    assert index.link_target(str(elsewhere)) == elsewhere
