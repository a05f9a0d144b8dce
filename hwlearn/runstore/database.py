"""The run database: schema and connection setup for the one writer and for readers.

WAL mode lets readers in other processes read committed steps while the writer appends, without
either side waiting for the other. Readers open the file read-only (``mode=ro``), so they never
take a write lock and never checkpoint the WAL themselves."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from hwlearn.runstore.errors import RunStoreError
from hwlearn.runstore.status import RECORDED

SCHEMA = f"""
CREATE TABLE run (                -- write-once facts: format, created, config_toml, metadata_json
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE writer_sessions (    -- one row per RunWriter.create/resume; the last row is current
    session INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    boot_id TEXT,
    pid_start TEXT,
    started REAL NOT NULL,
    heartbeat REAL NOT NULL,
    closed REAL
);
CREATE TABLE steps (
    step INTEGER PRIMARY KEY,
    epoch INTEGER NOT NULL,
    time REAL NOT NULL
);
CREATE TABLE scalars (            -- value NULL stands for NaN (SQLite stores NaN as NULL)
    step INTEGER NOT NULL REFERENCES steps(step),
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (step, name)
) WITHOUT ROWID;
CREATE INDEX scalars_by_name ON scalars(name, step);
CREATE TABLE arrays (             -- typed blobs (blobs.py), never pickles
    step INTEGER NOT NULL REFERENCES steps(step),
    name TEXT NOT NULL,
    dtype TEXT NOT NULL,
    shape TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (step, name)
);
CREATE INDEX arrays_by_name ON arrays(name, step);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    step INTEGER,
    time REAL NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('debug', 'info', 'warning', 'error')),
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT                     -- JSON
);
CREATE TABLE summary (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL           -- JSON
) WITHOUT ROWID;
CREATE TABLE status (             -- history; the last row is the current status
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({', '.join(repr(s) for s in RECORDED)})),
    detail TEXT NOT NULL,
    session INTEGER NOT NULL REFERENCES writer_sessions(session)
);
"""

SYNCHRONOUS_MODES = ("FULL", "NORMAL")
BUSY_TIMEOUT_S = 10.0
READ_RETRY_DELAYS_S = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def check_synchronous(synchronous: str) -> str:
    if synchronous not in SYNCHRONOUS_MODES:
        raise RunStoreError(f"synchronous={synchronous!r} is not allowed; use one of {', '.join(SYNCHRONOUS_MODES)}")
    return synchronous


def connect_writer(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection in autocommit mode: the writer opens its own transactions (BEGIN IMMEDIATE)."""
    check_synchronous(synchronous)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        conn.close()
        raise RunStoreError(f"{path}: SQLite refused WAL mode (journal_mode is {mode!r}); run folders need "
                            "a local file system with shared memory support")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def split_statements(script: str) -> list[str]:
    """An SQL script split into single statements (comments may hold semicolons)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise AssertionError(f"incomplete statement at the end of the script: {buffer!r}")
    return statements


def create_schema(conn: sqlite3.Connection) -> None:
    """Create all tables inside the caller's open transaction, so that a reader sees either
    no run at all or the tables together with the rows the caller adds in the same transaction."""
    for statement in split_statements(SCHEMA):
        conn.execute(statement)


def connect_reader(path: Path) -> sqlite3.Connection:
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    return conn


def is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def retry_busy(operation, where: str):
    """Run ``operation()``; on SQLITE_BUSY (e.g. while a crashed writer's WAL is recovered)
    retry with short growing pauses, then raise naming the database."""
    for delay in (*READ_RETRY_DELAYS_S, None):
        try:
            return operation()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or delay is None:
                raise RunStoreError(f"{where}: {exc}") from exc
            time.sleep(delay)
        except sqlite3.DatabaseError as exc:  # a damaged or foreign file: retrying will not help
            raise RunStoreError(f"{where}: {exc}") from exc
