"""The sweep index: one SQLite file recording every point's parameters, state and final metrics.

Same durability rules as the run store (docs/run-store.md): WAL mode, synchronous=FULL, every
change one transaction, one writer (the sweep client, holding an flock on index.lock that the
kernel drops when it dies), readers read-only. Only the client writes here; workers write their
points' run folders. docs/sweeps.md documents the tables.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from hwlearn.app.sweep.points import Point
from hwlearn.app.sweep.spec import SweepSpec
from hwlearn.errors import HwlearnError
from hwlearn.runstore import jsontext
from hwlearn.runstore.checkpoint import atomic_write_text
from hwlearn.runstore.config_text import config_from_toml, config_to_toml
from hwlearn.runstore.database import connect_reader, connect_writer, retry_busy, split_statements
from hwlearn.runstore.liveness import WriterIdentity, current_identity, is_local, process_alive
from hwlearn.runstore.locks import hold_lock

FORMAT = "hwlearn.sweep/1"
INDEX_FILE = "index.sqlite"
LOCK_FILE = "index.lock"
POINTS_DIR = "points"
SWEEP_COPY = "sweep.toml"
EXPERIMENT_COPY = "experiment.toml"
STATES = ("pending", "running", "done", "failed", "stopped")
OUTCOMES = ("done", "stopped", "failed")

SCHEMA = f"""
CREATE TABLE sweep (              -- write-once facts: format, created, name, sweep_toml, experiment_toml, ...
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE points (             -- one row per point, in sweep order
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,    -- its run folder: points/<name>
    params TEXT NOT NULL,         -- JSON: dotted experiment key -> value, the axes only
    seed INTEGER NOT NULL,        -- seeds.base of the resolved config
    config_toml TEXT NOT NULL,    -- the resolved experiment config (every seed drawn)
    state TEXT NOT NULL CHECK (state IN ({', '.join(repr(s) for s in STATES)})),
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,                   -- the last failed attempt's error
    metrics TEXT,                 -- JSON: final metrics once done
    elapsed REAL,                 -- seconds of training, summed over attempts
    updated REAL NOT NULL
);
CREATE TABLE attempts (           -- one row per attempt that reported back (or was found finished)
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    point INTEGER NOT NULL REFERENCES points(id),
    outcome TEXT NOT NULL CHECK (outcome IN ({', '.join(repr(s) for s in OUTCOMES)})),
    resumed INTEGER NOT NULL,     -- 1 when it continued an existing run folder
    error TEXT,
    worker TEXT,                  -- host:pid of the process that trained
    elapsed REAL,                 -- seconds of training in this attempt
    finished REAL NOT NULL
);
CREATE TABLE clients (            -- one row per `hwlearn sweep` run or --resume; the last is current
    session INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    boot_id TEXT,
    pid_start TEXT,
    executor TEXT NOT NULL,
    started REAL NOT NULL,
    closed REAL
);
"""


class SweepError(HwlearnError):
    """A sweep folder cannot be used as asked."""


@dataclass(frozen=True)
class PointRecord:
    id: int
    name: str
    params: dict
    seed: int
    config: dict
    state: str
    attempts: int
    error: str | None
    metrics: dict | None
    elapsed_seconds: float | None


def is_sweep_dir(path) -> bool:
    return (Path(path) / INDEX_FILE).is_file()


def _lock(sweep_dir: Path) -> int | None:
    # Without locks (Windows) the client table alone tells a live client.
    return hold_lock(sweep_dir / LOCK_FILE)


def _record(row) -> PointRecord:
    return PointRecord(row[0], row[1], json.loads(row[2]), row[3], config_from_toml(row[4], f"point {row[1]}"),
                       row[5], row[6], row[7], jsontext.loads(row[8]), row[9])


POINT_COLUMNS = "id, name, params, seed, config_toml, state, attempts, error, metrics, elapsed"


class SweepIndex:
    """The client's handle on a sweep folder: it holds the lock while the sweep runs."""

    def __init__(self, sweep_dir: Path, conn: sqlite3.Connection, lock_fd: int | None, session: int):
        self.sweep_dir = sweep_dir
        self._conn = conn
        self._lock_fd = lock_fd
        self.session = session

    # ---- opening

    @classmethod
    def create(cls, sweep_dir, spec: SweepSpec, points: list[Point], executor: str) -> SweepIndex:
        """A new sweep in ``sweep_dir`` (created; refused if it holds anything)."""
        sweep_dir = Path(sweep_dir)
        if sweep_dir.exists() and any(sweep_dir.iterdir()):
            what = "a sweep; continue it with --resume" if is_sweep_dir(sweep_dir) else "files"
            raise SweepError(f"{sweep_dir}: folder already holds {what} (a new sweep needs a new or empty folder; "
                             "choose one with --out)")
        rows = [(p.id, p.name, json.dumps(p.params), p.seed, config_to_toml(p.config)) for p in points]
        (sweep_dir / POINTS_DIR).mkdir(parents=True, exist_ok=True)
        lock_fd = _lock(sweep_dir)
        if lock_fd is None:
            raise SweepError(f"{sweep_dir}: another process is creating a sweep here")
        conn = None
        try:
            atomic_write_text(sweep_dir / SWEEP_COPY, spec.text)
            atomic_write_text(sweep_dir / EXPERIMENT_COPY, spec.experiment_text)
            conn = connect_writer(sweep_dir / INDEX_FILE, "FULL")
            now = time.time()
            facts = {"format": FORMAT, "created": repr(now), "name": spec.name, "sweep_path": str(spec.path),
                     "experiment_path": str(spec.experiment_path), "sweep_toml": spec.text,
                     "experiment_toml": spec.experiment_text, "axes": json.dumps(spec.axes),
                     "retries": str(spec.retries)}
            conn.execute("BEGIN IMMEDIATE")  # a reader sees no index or the whole of it
            for statement in split_statements(SCHEMA):
                conn.execute(statement)
            conn.executemany("INSERT INTO sweep(key, value) VALUES (?, ?)", facts.items())
            conn.executemany("INSERT INTO points(id, name, params, seed, config_toml, state, updated) "
                             "VALUES (?, ?, ?, ?, ?, 'pending', ?)", [(*row, now) for row in rows])
            session = cls._start_session(conn, executor, now)
            conn.execute("COMMIT")
        except BaseException:
            if conn is not None:
                conn.close()
            for name in (INDEX_FILE, f"{INDEX_FILE}-wal", f"{INDEX_FILE}-shm", SWEEP_COPY, EXPERIMENT_COPY, LOCK_FILE):
                (sweep_dir / name).unlink(missing_ok=True)
            (sweep_dir / POINTS_DIR).rmdir()
            os.close(lock_fd)
            raise
        return cls(sweep_dir, conn, lock_fd, session)

    @classmethod
    def open(cls, sweep_dir, executor: str) -> SweepIndex:
        """Continue the sweep in ``sweep_dir`` (refused while another client runs it)."""
        sweep_dir = Path(sweep_dir)
        if not is_sweep_dir(sweep_dir):
            raise SweepError(f"{sweep_dir}: no sweep to resume here ({INDEX_FILE} is missing)")
        lock_fd = _lock(sweep_dir)
        if lock_fd is None:
            client = read_index(sweep_dir).client
            raise SweepError(f"{sweep_dir}: the sweep is being run by pid {client.get('pid')} on "
                             f"{client.get('host')}; stop it first")
        conn = connect_writer(sweep_dir / INDEX_FILE, "FULL")
        conn.execute("BEGIN IMMEDIATE")
        session = cls._start_session(conn, executor, time.time())
        conn.execute("COMMIT")
        return cls(sweep_dir, conn, lock_fd, session)

    @staticmethod
    def _start_session(conn: sqlite3.Connection, executor: str, now: float) -> int:
        me = current_identity()
        return conn.execute("INSERT INTO clients(host, pid, boot_id, pid_start, executor, started) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (me.host, me.pid, me.boot_id, me.pid_start, executor, now)).lastrowid

    # ---- reading and writing

    def fact(self, key: str) -> str:
        return self._conn.execute("SELECT value FROM sweep WHERE key = ?", (key,)).fetchone()[0]

    def points(self) -> list[PointRecord]:
        return [_record(row) for row in self._conn.execute(f"SELECT {POINT_COLUMNS} FROM points ORDER BY id")]

    def set_state(self, point_ids, state: str) -> None:
        with self._transaction() as c:
            c.executemany("UPDATE points SET state = ?, updated = ? WHERE id = ?",
                          [(state, time.time(), i) for i in point_ids])

    def record(self, point_id: int, outcome: str, state: str, *, resumed: bool = False, error: str | None = None,
               worker: str | None = None, elapsed: float | None = None, metrics: dict | None = None) -> None:
        """One attempt's report and the point's new state, in one transaction."""
        now = time.time()
        with self._transaction() as c:
            c.execute("INSERT INTO attempts(point, outcome, resumed, error, worker, elapsed, finished) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)", (point_id, outcome, int(resumed), error, worker, elapsed, now))
            c.execute("UPDATE points SET state = ?, attempts = attempts + 1, updated = ?, "
                      "error = CASE WHEN ? IS NULL THEN error ELSE ? END, "
                      "metrics = COALESCE(?, metrics), elapsed = COALESCE(elapsed, 0) + COALESCE(?, 0) WHERE id = ?",
                      (state, now, error, error, None if metrics is None else jsontext.dumps(metrics, "metrics"),
                       elapsed, point_id))

    def close(self) -> None:
        if self._conn is None:
            return
        with self._transaction() as c:
            c.execute("UPDATE clients SET closed = ? WHERE session = ?", (time.time(), self.session))
        self._conn.close()
        self._conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> SweepIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _transaction(self):
        conn = self._conn

        class _Tx:
            def __enter__(self):
                conn.execute("BEGIN IMMEDIATE")
                return conn

            def __exit__(self, exc_type, exc, tb):
                conn.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()


@dataclass(frozen=True)
class IndexSnapshot:
    """What a reader sees of a sweep: its facts, its points, the last client and whether it lives."""

    facts: dict
    points: list[PointRecord]
    client: dict
    attempts: list[dict]


def read_index(sweep_dir) -> IndexSnapshot:
    """Read a sweep index without writing to it (also while a client runs the sweep)."""
    sweep_dir = Path(sweep_dir)
    if not is_sweep_dir(sweep_dir):
        raise SweepError(f"{sweep_dir}: not a sweep folder ({INDEX_FILE} is missing)")
    conn = connect_reader(sweep_dir / INDEX_FILE)
    try:
        def query():
            conn.execute("BEGIN")
            try:
                facts = dict(conn.execute("SELECT key, value FROM sweep"))
                points = [_record(r) for r in conn.execute(f"SELECT {POINT_COLUMNS} FROM points ORDER BY id")]
                row = conn.execute("SELECT host, pid, boot_id, pid_start, executor, started, closed, session "
                                   "FROM clients ORDER BY session DESC LIMIT 1").fetchone()
                attempts = [dict(zip(("point", "outcome", "resumed", "error", "worker", "elapsed", "finished"), r))
                            for r in conn.execute("SELECT point, outcome, resumed, error, worker, elapsed, finished "
                                                  "FROM attempts ORDER BY id")]
            finally:
                conn.execute("COMMIT")
            return facts, points, row, attempts

        facts, points, row, attempts = retry_busy(query, str(sweep_dir / INDEX_FILE))
    finally:
        conn.close()
    identity = WriterIdentity(row[0], row[1], row[2], row[3])
    alive = row[6] is None and (process_alive(identity) if is_local(identity) else None)
    client = {"host": row[0], "pid": row[1], "executor": row[4], "started": row[5], "closed": row[6],
              "session": row[7], "alive": alive}
    return IndexSnapshot(facts, points, client, attempts)
