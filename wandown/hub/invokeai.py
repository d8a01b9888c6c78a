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

import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

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


def _connect_read_only(db_path: str, notice: Callable[[str], None]) -> sqlite3.Connection | None:
    """Open the database without ever writing to it, falling back to immutable mode.

    mode=ro fails on a write-protected folder holding a WAL database (the reader needs the -shm
    file) and on a database locked by a running InvokeAI; immutable=1 reads the main file as it
    stands and takes no locks (SQLite URI filename docs).
    """
    uri = "file:" + db_path.replace("?", "%3f").replace("#", "%23")
    last_error: sqlite3.Error | None = None
    for query in ("?mode=ro", "?mode=ro&immutable=1"):
        connection = None
        try:
            connection = sqlite3.connect(uri + query, uri=True, timeout=1.0)
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
) -> list:
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


def _parse_config(text: object, models_dir: str) -> InvokeAIRecord | None:
    try:
        config = json.loads(text) if isinstance(text, (str, bytes)) else None
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
