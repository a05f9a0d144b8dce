"""RunReader: read a run folder, also while another process writes it.

The database is opened read-only; every method reads in one short snapshot (a read
transaction), so what it returns is consistent (a step is seen with all its scalars and arrays
or not at all) and the writer is never blocked. ``since_step`` arguments are exclusive, so a
monitor polls with the last step it has seen."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwlearn.runstore import jsontext
from hwlearn.runstore.blobs import decode_array, parse_dtype, parse_shape
from hwlearn.runstore.checkpoint import Checkpoint, CheckpointFolder
from hwlearn.runstore.config_text import config_from_toml
from hwlearn.runstore.database import connect_reader, retry_busy
from hwlearn.runstore.errors import NotARunError, RunStoreError
from hwlearn.runstore.layout import CHECKPOINT_DIR, DATABASE_FILE, RUN_FORMAT
from hwlearn.runstore.liveness import WriterIdentity, is_local, process_alive
from hwlearn.runstore.metadata import utc_iso
from hwlearn.runstore.status import ACTIVE, CRASHED, DEFAULT_STALE_AFTER_S, RunStatus

RUN_FOLDER_CONTENTS = "config.toml, metadata.json, run.sqlite, log.txt and checkpoints/"

# Distinct names through the (name, step) index, one index seek per name instead of a scan of
# every row: cheap enough to poll on a run with millions of scalars.
_DISTINCT_NAMES = """
WITH RECURSIVE names(name) AS (
    SELECT min(name) FROM {table}
    UNION ALL
    SELECT (SELECT min(name) FROM {table} WHERE name > names.name) FROM names WHERE names.name IS NOT NULL
)
SELECT name FROM names WHERE name IS NOT NULL
"""


@dataclass(frozen=True)
class Steps:
    """The recorded steps, in increasing order: step and epoch numbers, Unix times in seconds."""

    step: np.ndarray
    epoch: np.ndarray
    time: np.ndarray

    def __len__(self) -> int:
        return len(self.step)


@dataclass(frozen=True)
class StepRecord:
    step: int
    epoch: int
    time: float


def _since(since_step: int | None) -> int:
    return -1 if since_step is None else int(since_step)


class RunReader:
    """Read-only access to one run folder. Safe to use from several threads.

    ``stale_after_s``: a writer on another host whose last write is older than this is taken
    for dead (status "crashed"); on the writer's own host the process itself is checked."""

    def __init__(self, run_dir, stale_after_s: float = DEFAULT_STALE_AFTER_S):
        self.run_dir = Path(run_dir)
        self.stale_after_s = float(stale_after_s)
        self._db_path = self.run_dir / DATABASE_FILE
        if not self.run_dir.exists():
            raise NotARunError(f"{self.run_dir}: no such folder")
        if not self.run_dir.is_dir():
            raise NotARunError(f"{self.run_dir} is not a run folder: it is a file (a run folder holds "
                               f"{RUN_FOLDER_CONTENTS})")
        if not self._db_path.is_file():
            raise NotARunError(f"{self.run_dir} is not a run folder: it has no {DATABASE_FILE} (a run folder "
                               f"holds {RUN_FOLDER_CONTENTS})")
        self._lock = threading.Lock()
        try:
            self._conn = retry_busy(lambda: connect_reader(self._db_path), str(self._db_path))
        except RunStoreError as exc:
            raise NotARunError(f"{self.run_dir} is not a readable run folder: {exc}") from None
        try:
            try:
                tables = {row[0] for row in self._read(
                    lambda c: c.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall())}
            except RunStoreError as exc:
                raise NotARunError(f"{self.run_dir} is not a readable run folder: {exc}") from None
            if "run" not in tables:
                raise NotARunError(f"{self.run_dir} is not a run folder: {DATABASE_FILE} has no hwlearn run "
                                   "tables (not an hwlearn run, or its creation did not finish)")
            run_format = self._run_value("format")
            if run_format != RUN_FORMAT:
                raise NotARunError(f"{self._db_path}: run format {run_format!r}; this hwlearn reads "
                                   f"{RUN_FORMAT!r}")
        except BaseException:
            self._conn.close()
            raise

    # ---- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self, query):
        """Run ``query(connection)`` inside one read snapshot, retrying briefly on SQLITE_BUSY."""
        def attempt():
            self._conn.execute("BEGIN")
            try:
                return query(self._conn)
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")  # ends the snapshot; nothing was written
        with self._lock:
            try:
                return retry_busy(attempt, str(self._db_path))
            except sqlite3.ProgrammingError as exc:
                raise RunStoreError(f"{self._db_path}: {exc}") from None

    def _run_value(self, key: str) -> str | None:
        row = self._read(lambda c: c.execute("SELECT value FROM run WHERE key = ?", (key,)).fetchone())
        return None if row is None else row[0]

    # ---- run-level facts ------------------------------------------------------------------

    def status(self) -> RunStatus:
        """The current status; "crashed" when the last recorded status is active (running,
        paused, stopping) but the writer is gone."""
        def query(c):
            return (c.execute("SELECT time, status, detail, session FROM status ORDER BY id DESC LIMIT 1").fetchone(),
                    c.execute("SELECT session, host, pid, boot_id, pid_start, heartbeat, closed "
                              "FROM writer_sessions ORDER BY session DESC LIMIT 1").fetchone())
        status_row, writer_row = self._read(query)
        if status_row is None or writer_row is None:
            raise RunStoreError(f"{self._db_path}: no status recorded (the run's creation did not finish)")
        when, recorded, detail, _ = status_row
        session, host, pid, boot_id, pid_start, heartbeat, closed = writer_row
        identity = WriterIdentity(host=host, pid=pid, boot_id=boot_id, pid_start=pid_start)
        age = time.time() - heartbeat
        if closed is not None:
            alive = False
        elif is_local(identity):
            alive = process_alive(identity)
        else:
            alive = None if age < self.stale_after_s else False
        status = recorded
        if recorded in ACTIVE and alive is False:
            status = CRASHED
            if is_local(identity):
                detail = (f"the writer (pid {pid} on {host}) is gone; its last status was {recorded!r} at "
                          f"{utc_iso(when)}" + (f" ({detail})" if detail else ""))
            else:
                detail = (f"no write from the writer (pid {pid} on {host}) for {age:.0f} s (more than "
                          f"{self.stale_after_s:.0f} s); its last status was {recorded!r} at {utc_iso(when)}")
        return RunStatus(status=status, detail=detail, time=when, recorded=recorded, writer_host=host,
                         writer_pid=pid, writer_alive=alive, heartbeat=heartbeat, session=session)

    def created(self) -> float:
        """Unix time in seconds when the run was created."""
        return float(self._run_value("created"))

    def config_text(self) -> str:
        """The resolved config exactly as written to config.toml."""
        return self._run_value("config_toml")

    def config(self) -> dict:
        return config_from_toml(self.config_text(), str(self._db_path))

    def metadata(self) -> dict:
        return jsontext.loads(self._run_value("metadata_json"))

    def summary(self) -> dict:
        rows = self._read(lambda c: c.execute("SELECT key, value FROM summary ORDER BY key").fetchall())
        return {key: jsontext.loads(value) for key, value in rows}

    # ---- steps and scalars ----------------------------------------------------------------

    def steps(self, since_step: int | None = None) -> Steps:
        rows = self._read(lambda c: c.execute("SELECT step, epoch, time FROM steps WHERE step > ? ORDER BY step",
                                              (_since(since_step),)).fetchall())
        return Steps(step=np.array([r[0] for r in rows], dtype=np.int64),
                     epoch=np.array([r[1] for r in rows], dtype=np.int64),
                     time=np.array([r[2] for r in rows], dtype=float))

    def step_count(self) -> int:
        return self._read(lambda c: c.execute("SELECT count(*) FROM steps").fetchone()[0])

    def last_step(self) -> StepRecord | None:
        row = self._read(lambda c: c.execute("SELECT step, epoch, time FROM steps ORDER BY step DESC LIMIT 1")
                         .fetchone())
        return None if row is None else StepRecord(*row)

    def scalar_names(self) -> list[str]:
        return [r[0] for r in self._read(lambda c: c.execute(_DISTINCT_NAMES.format(table="scalars")).fetchall())]

    def scalars(self, names=None, since_step: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{name: (steps int64, values float64)} for the named scalars (all when None), steps
        after ``since_step``. A name not recorded yet gives empty arrays. NaN is returned as NaN."""
        since = _since(since_step)

        def query(c):
            wanted = list(names) if names is not None else [r[0] for r in c.execute(
                _DISTINCT_NAMES.format(table="scalars"))]
            out = {}
            for name in wanted:
                rows = c.execute("SELECT step, value FROM scalars WHERE name = ? AND step > ? ORDER BY step",
                                 (name, since)).fetchall()
                out[name] = (np.array([r[0] for r in rows], dtype=np.int64),
                             np.array([r[1] for r in rows], dtype=float))  # NULL (NaN) becomes nan
            return out
        return self._read(query)

    def last_scalar(self, name: str) -> tuple[int, float] | None:
        """(step, value) of the last recording of scalar ``name``, or None."""
        row = self._read(lambda c: c.execute("SELECT step, value FROM scalars WHERE name = ? ORDER BY step DESC "
                                             "LIMIT 1", (name,)).fetchone())
        return None if row is None else (row[0], float("nan") if row[1] is None else row[1])

    # ---- arrays ---------------------------------------------------------------------------

    def array_names(self) -> list[str]:
        return [r[0] for r in self._read(lambda c: c.execute(_DISTINCT_NAMES.format(table="arrays")).fetchall())]

    def _layout(self, c, name: str) -> tuple[str, str]:
        row = c.execute("SELECT dtype, shape FROM arrays WHERE name = ? LIMIT 1", (name,)).fetchone()
        if row is None:
            known = [r[0] for r in c.execute(_DISTINCT_NAMES.format(table="arrays"))]
            raise RunStoreError(f"{self.run_dir}: no array named {name!r} is recorded; recorded arrays: "
                                f"{', '.join(known) or 'none'}")
        return row

    def arrays(self, name: str, since_step: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(steps int64 of shape (n,), values of shape (n, *array shape)) for steps after
        ``since_step``. Raises RunStoreError naming the recorded arrays if ``name`` is not one."""
        def query(c):
            dtype, shape = self._layout(c, name)
            rows = c.execute("SELECT step, dtype, shape, data FROM arrays WHERE name = ? AND step > ? ORDER BY step",
                             (name, _since(since_step))).fetchall()
            steps = np.array([r[0] for r in rows], dtype=np.int64)
            out = np.empty((len(rows), *parse_shape(shape)), dtype=parse_dtype(dtype))
            for i, (step, row_dtype, row_shape, data) in enumerate(rows):
                if (row_dtype, row_shape) != (dtype, shape):
                    raise RunStoreError(f"{self.run_dir}: array {name!r} at step {step} has dtype {row_dtype} and "
                                        f"shape {row_shape}, other steps {dtype} and {shape}")
                out[i] = decode_array(row_dtype, row_shape, data, f"{self.run_dir}: array {name!r} step {step}")
            return steps, out
        return self._read(query)

    def array_steps(self, name: str, since_step: int | None = None) -> np.ndarray:
        """The steps (int64, increasing) after ``since_step`` at which array ``name`` is recorded,
        without reading the arrays: what a viewer offers to scrub through. Empty when none."""
        rows = self._read(lambda c: c.execute("SELECT step FROM arrays WHERE name = ? AND step > ? ORDER BY step",
                                              (name, _since(since_step))).fetchall())
        return np.array([r[0] for r in rows], dtype=np.int64)

    def array_at(self, name: str, step: int) -> np.ndarray:
        """Array ``name`` as recorded at ``step``; RunStoreError if it was not."""
        row = self._read(lambda c: c.execute("SELECT dtype, shape, data FROM arrays WHERE name = ? AND step = ?",
                                             (name, int(step))).fetchone())
        if row is None:
            raise RunStoreError(f"{self.run_dir}: array {name!r} is not recorded at step {step}")
        return decode_array(*row, what=f"{self.run_dir}: array {name!r} step {step}")

    def latest_array(self, name: str) -> tuple[int, np.ndarray] | None:
        """(step, array) of the last recording of ``name``, or None if it has none yet."""
        row = self._read(lambda c: c.execute("SELECT step, dtype, shape, data FROM arrays WHERE name = ? "
                                             "ORDER BY step DESC LIMIT 1", (name,)).fetchone())
        if row is None:
            return None
        step, dtype, shape, data = row
        return step, decode_array(dtype, shape, data, f"{self.run_dir}: array {name!r} step {step}")

    # ---- events and checkpoints -----------------------------------------------------------

    def events(self, since_id: int = 0, limit: int | None = None) -> list[dict]:
        """Events with id > ``since_id``, oldest first: dicts with id, step, time, level, kind,
        message, data (decoded JSON or None)."""
        rows = self._read(lambda c: c.execute(
            "SELECT id, step, time, level, kind, message, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (int(since_id), -1 if limit is None else int(limit))).fetchall())
        return self._event_dicts(rows)

    @staticmethod
    def _event_dicts(rows) -> list[dict]:
        return [{"id": i, "step": step, "time": t, "level": level, "kind": kind, "message": message,
                 "data": jsontext.loads(data)} for i, step, t, level, kind, message, data in rows]

    def last_event(self, level: str | None = None) -> dict | None:
        """The newest event (of ``level``, when given), or None."""
        found = self._read(lambda c: c.execute(
            "SELECT id, step, time, level, kind, message, data FROM events WHERE ?1 IS NULL OR level = ?1 "
            "ORDER BY id DESC LIMIT 1", (level,)).fetchall())
        return self._event_dicts(found)[0] if found else None

    def event_counts(self) -> dict[str, int]:
        """{level: number of events} for the levels that occur."""
        rows = self._read(lambda c: c.execute("SELECT level, count(*) FROM events GROUP BY level").fetchall())
        return dict(rows)

    def latest_checkpoint(self, load_arrays: bool = True) -> Checkpoint | None:
        """The newest complete checkpoint (None if there is none); load_arrays=False reads only
        its step, epoch and state."""
        return CheckpointFolder(self.run_dir / CHECKPOINT_DIR).latest(load_arrays)
