"""Leads from an InvokeAI install found in the hub (`databases/invokeai.db` beside `models/`).

InvokeAI (3.x and later) keeps one row per model in the `models` table (`model_config` in early
3.x databases), whose `config` column is the whole record as JSON: `path` (relative to the
models folder, absolute in older installs or for models used in place), `source`, `file_size`
(since database version 19) and `hash` ("blake3:<hex>" by default, "<algorithm>:<hex>"
otherwise; for a folder model it is a hash of hashes). InvokeAI renames files and records BLAKE3
rather than the Hub's sha256, so a record is only a lead: which file to look at, and what its
BLAKE3 should be. A match is still proven by hashing.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from wandown import jsonfile

DATABASE = os.path.join("databases", "invokeai.db")
TABLES = ("models", "model_config")


@dataclass(frozen=True)
class InvokeAIRecord:
    """One single-file model as InvokeAI recorded it."""

    path: str  # absolute
    file_size: int | None
    hash_algorithm: str | None  # "blake3", "sha256", ...
    hash_hex: str | None
    source: str | None
    name: str | None


def _uses_wal(db_path: str) -> bool:
    """Return True when the database header says write-ahead logging (bytes 18-19 are 2)."""
    try:
        with open(db_path, "rb") as handle:
            header = handle.read(20)
    except OSError:
        return False
    return header.startswith(b"SQLite format 3\0") and header[18:20] == b"\x02\x02"


def _connect_read_only(db_path: str, notice: Callable[[str], None]) -> sqlite3.Connection | None:
    """Open the database without ever writing into the hub.

    A reader of a WAL database creates the -wal and -shm files beside it, even with mode=ro, so
    such a database is opened with immutable=1, which reads the main file as it stands and takes
    no locks (SQLite "URI filenames"); changes InvokeAI has not yet checkpointed are then missed,
    which costs at most a lead. Otherwise mode=ro is tried first, and immutable=1 when a running
    InvokeAI holds a lock or left a hot journal.
    """
    uri = "file:" + db_path.replace("?", "%3f").replace("#", "%23")
    queries = (
        ["?mode=ro&immutable=1"] if _uses_wal(db_path) else ["?mode=ro", "?mode=ro&immutable=1"]
    )
    last_error: sqlite3.Error | None = None
    for query in queries:
        connection = None
        try:
            connection = sqlite3.connect(uri + query, uri=True, timeout=0.5)
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return connection
        except sqlite3.Error as exc:
            last_error = exc
            if connection is not None:
                connection.close()
    notice(f"cannot open the InvokeAI database {db_path}: {last_error}")
    return None


def read_records(root: str, notice: Callable[[str], None]) -> list[InvokeAIRecord]:
    """Return the single-file model records of the InvokeAI install at root (soft on errors)."""
    db_path = os.path.join(root, DATABASE)
    connection = _connect_read_only(db_path, notice)
    if connection is None:
        return []
    try:
        rows = _config_rows(connection, db_path, notice)
    finally:
        connection.close()
    models_dir = os.path.join(root, "models")
    records = []
    for text in rows:
        record = _parse_config(text, models_dir)
        if record is not None:
            records.append(record)
    return records


def _config_rows(
    connection: sqlite3.Connection, db_path: str, notice: Callable[[str], None]
) -> list[object]:
    """Return each model's config column as stored (JSON text, normally; checked later)."""
    try:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        table = next((name for name in TABLES if name in tables), None)
        if table is None:
            notice(f"the InvokeAI database {db_path} has no models table; ignoring it")
            return []
        columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if "config" not in columns:
            notice(f"the InvokeAI database {db_path} has an unknown schema; ignoring it")
            return []
        return [row[0] for row in connection.execute(f"SELECT config FROM {table}")]
    except sqlite3.Error as exc:
        notice(f"cannot read the InvokeAI database {db_path}: {exc}")
        return []


def _loads(text: str | bytes) -> object:
    return jsonfile.decode(text) if isinstance(text, bytes) else jsonfile.loads(text)


def _parse_config(text: object, models_dir: str) -> InvokeAIRecord | None:
    try:
        config = _loads(text) if isinstance(text, (str, bytes)) else None
    except ValueError:
        return None
    if not isinstance(config, dict) or not isinstance(config.get("path"), str):
        return None
    path = os.path.join(models_dir, config["path"])  # an absolute path stays as it is
    if not os.path.isfile(path):
        return None  # folder models (diffusers) carry a hash of hashes; nothing to compare
    size = config.get("file_size")
    algorithm = hex_digest = None
    raw_hash = config.get("hash")
    if isinstance(raw_hash, str) and ":" in raw_hash:
        algorithm, _, hex_digest = raw_hash.partition(":")
        algorithm, hex_digest = algorithm.lower(), hex_digest.lower()
    source = config.get("source")
    name = config.get("name")
    return InvokeAIRecord(
        path=os.path.abspath(path),
        file_size=size if isinstance(size, int) else None,
        hash_algorithm=algorithm,
        hash_hex=hex_digest,
        source=source if isinstance(source, str) else None,
        name=name if isinstance(name, str) else None,
    )
