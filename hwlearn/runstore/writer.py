"""RunWriter: the one process that writes a run folder.

Crash safety rests on three rules. Each step is one SQLite transaction, committed with
synchronous=FULL by default, so a step is on disk completely or not at all before anything can
plot it. A checkpoint is written only for a step already committed, and atomically
(checkpoint.py). A resume deletes the steps after the latest checkpoint, which the caller then
recomputes from that checkpoint: no step is lost and none is recorded twice."""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import secrets
import shutil
import sqlite3
import threading
import time
import traceback
from pathlib import Path

from hwlearn.runstore import jsontext
from hwlearn.runstore.blobs import encode_array
from hwlearn.runstore.checkpoint import Checkpoint, CheckpointFolder, atomic_write_text, fsync_dir
from hwlearn.runstore.config_text import config_to_toml
from hwlearn.runstore.database import check_synchronous, connect_writer, create_schema
from hwlearn.runstore.errors import (
    DuplicateStepError,
    RunBusyError,
    RunExistsError,
    RunStoreError,
)
from hwlearn.runstore.layout import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    DATABASE_FILE,
    LOG_FILE,
    METADATA_FILE,
    RUN_FORMAT,
    WRITER_LOCK_FILE,
)
from hwlearn.runstore.liveness import current_identity
from hwlearn.runstore.metadata import collect_metadata, utc_iso
from hwlearn.runstore.names import check_name
from hwlearn.runstore.reader import RunReader
from hwlearn.runstore.status import ACTIVE, DEFAULT_STALE_AFTER_S, FINAL, RESUMABLE
from hwlearn.runstore.values import as_index, as_real

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the status check alone guards resume
    fcntl = None

EVENT_LEVELS = ("debug", "info", "warning", "error")
log = logging.getLogger(__name__)


def _lock_writer(run_dir: Path):
    """Hold an exclusive lock on writer.lock for the writer's lifetime. The kernel drops it
    when the process dies, even by SIGKILL, so a second writer can tell a live one."""
    fd = os.open(run_dir / WRITER_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
    return fd


def _populate(folder: Path, config_toml: str, meta: dict, metadata_json: str, created: float) -> int:
    """A new run's files in ``folder``: config, metadata, checkpoints/, the database with its schema
    and first rows (closed again, so the folder can be renamed). Returns the writer session id."""
    atomic_write_text(folder / CONFIG_FILE, config_toml)
    atomic_write_text(folder / METADATA_FILE, jsontext.dumps(meta, "run metadata", indent=2) + "\n")
    (folder / CHECKPOINT_DIR).mkdir()
    conn = connect_writer(folder / DATABASE_FILE, "FULL")
    try:
        identity = current_identity()
        # Schema and first rows in one transaction: a crash here leaves no half-made run database.
        conn.execute("BEGIN IMMEDIATE")
        create_schema(conn)
        conn.executemany("INSERT INTO run(key, value) VALUES (?, ?)", [
            ("format", RUN_FORMAT), ("created", repr(created)), ("config_toml", config_toml),
            ("metadata_json", metadata_json)])
        session = conn.execute(
            "INSERT INTO writer_sessions(host, pid, boot_id, pid_start, started, heartbeat) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (identity.host, identity.pid, identity.boot_id, identity.pid_start, created, created)).lastrowid
        conn.execute("INSERT INTO status(time, status, detail, session) VALUES (?, 'running', 'created', ?)",
                     (created, session))
        conn.execute("COMMIT")
    finally:
        conn.close()
    return session


def _remove_dead_staging(run_dir: Path) -> None:
    """Staging folders of this run name left by creators that died before their rename."""
    for leftover in run_dir.parent.glob(f".{glob.escape(run_dir.name)}.creating-*"):
        pid = leftover.name.rsplit("-", 2)[-2]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_exists(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _RunLogHandler(logging.Handler):
    def __init__(self, writer: RunWriter, level: int):
        super().__init__(level)
        self.writer = writer
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer._log_line(record.levelname, self.format(record))
        except Exception:
            self.handleError(record)


class RunWriter:
    """Writes one run folder. Make one with ``RunWriter.create`` or ``RunWriter.resume``.

    Usable as a context manager: a clean exit closes the run as "done", KeyboardInterrupt as
    "stopped", any other exception as "failed" with the error message. All methods may be called
    from any thread (one lock serialises them)."""

    def __init__(self, run_dir: Path, conn: sqlite3.Connection, session: int, lock_fd: int | None,
                 synchronous: str, last_step: int | None, array_layouts: dict[str, tuple[str, str]],
                 resumed_from: Checkpoint | None = None):
        self.run_dir = run_dir
        self._conn = conn
        self._session = session
        self._lock_fd = lock_fd
        self._synchronous = synchronous
        self._last_step = last_step
        self._array_layouts = array_layouts
        self._checkpoints = CheckpointFolder(run_dir / CHECKPOINT_DIR)
        self._lock = threading.RLock()
        self._checkpoint_lock = threading.Lock()
        self._log_file = open(run_dir / LOG_FILE, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed by close())
        self._closed = False
        self.resumed_from = resumed_from
        self.session = session

    # ---- making a writer ------------------------------------------------------------------

    @classmethod
    def create(cls, run_dir, config: dict, metadata: dict | None = None, *,
               synchronous: str = "FULL") -> RunWriter:
        """Start a new run in ``run_dir`` (created if missing; refused if it holds anything).

        ``config`` is the resolved experiment config (written as config.toml and into the
        database); ``metadata`` holds the caller's facts (seeds, instrument identities), added
        to the versions, git commit, host, pid, time and command line collected here.
        ``synchronous`` is SQLite's: "FULL" (default) makes every step durable against power
        loss; "NORMAL" only against a process crash, faster for simulations (see run-store.md)."""
        run_dir = Path(run_dir)
        if run_dir.exists():
            if not run_dir.is_dir():
                raise RunExistsError(f"{run_dir}: exists and is not a folder; give a new or empty folder")
            present = sorted(p.name for p in run_dir.iterdir())
            if present:
                shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
                raise RunExistsError(f"{run_dir}: folder is not empty ({shown}); a new run needs a new or "
                                     "empty folder (RunWriter.resume continues an existing run)")
        # Check everything that can be wrong with the inputs before touching the disk.
        check_synchronous(synchronous)
        created = time.time()
        config_toml = config_to_toml(config)
        meta = collect_metadata(metadata, created)
        metadata_json = jsontext.dumps(meta, "run metadata")

        # Built in a hidden staging folder and renamed into place in one step: a process killed
        # (or a disk that fills) while creating leaves run_dir as it was, never a half-made run
        # that can be neither resumed nor reused.
        staging = run_dir.parent / f".{run_dir.name}.creating-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            _remove_dead_staging(run_dir)
            staging.mkdir()
            session = _populate(staging, config_toml, meta, metadata_json, created)
            os.rename(staging, run_dir)  # replaces an empty run_dir; refuses one that filled meanwhile
            fsync_dir(run_dir.parent)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError):
                raise RunStoreError(f"{run_dir}: cannot create the run folder ({exc.strerror or exc})") from None
            raise
        lock_fd = _lock_writer(run_dir)
        if lock_fd is None:
            raise RunBusyError(f"{run_dir}: another process took the new run before it started")
        try:
            conn = connect_writer(run_dir / DATABASE_FILE, synchronous)
        except BaseException:
            os.close(lock_fd)
            raise
        writer = cls(run_dir, conn, session, lock_fd, synchronous, last_step=None, array_layouts={})
        writer._log_line("INFO", f"run created by pid {os.getpid()} on {current_identity().host}: {run_dir}")
        return writer

    @classmethod
    def resume(cls, run_dir, *, synchronous: str = "FULL",
               stale_after_s: float = DEFAULT_STALE_AFTER_S) -> RunWriter:
        """Reopen a crashed, stopped or failed run to continue it.

        Loads the latest checkpoint (``writer.resumed_from``, None when there is none), deletes
        the steps after it (all steps without a checkpoint), records a "resumed" event and sets
        the status back to running. The caller restores its state from ``resumed_from`` and
        continues with the step after ``resumed_from.step`` (from the start without one)."""
        run_dir = Path(run_dir)
        check_synchronous(synchronous)
        with RunReader(run_dir, stale_after_s=stale_after_s):
            pass  # a clear error if this is not a run folder
        lock_fd = _lock_writer(run_dir)
        if lock_fd is None:
            raise RunBusyError(f"{run_dir}: the run is being written by another live process; "
                               "stop it before resuming")
        try:
            with RunReader(run_dir, stale_after_s=stale_after_s) as reader:
                status = reader.status()
            if status.status not in RESUMABLE:
                raise RunStoreError(f"{run_dir}: status is {status.status!r} ({status.detail}); only runs that "
                                    f"are {', '.join(RESUMABLE)} can be resumed")
            folder = CheckpointFolder(run_dir / CHECKPOINT_DIR)
            folder.remove_leftovers()
            checkpoint = folder.latest()
            conn = connect_writer(run_dir / DATABASE_FILE, synchronous)
            writer = cls._truncate_and_reopen(run_dir, conn, lock_fd, synchronous, checkpoint, status.status)
        except BaseException:
            os.close(lock_fd)
            raise
        return writer

    @classmethod
    def _truncate_and_reopen(cls, run_dir: Path, conn: sqlite3.Connection, lock_fd: int, synchronous: str,
                             checkpoint: Checkpoint | None, previous_status: str) -> RunWriter:
        keep_through = checkpoint.step if checkpoint else -1
        identity = current_identity()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in ("scalars", "arrays"):
                conn.execute(f"DELETE FROM {table} WHERE step > ?", (keep_through,))
            discarded = conn.execute("DELETE FROM steps WHERE step > ?", (keep_through,)).rowcount
            last_step = conn.execute("SELECT max(step) FROM steps").fetchone()[0]
            layouts = {name: (dtype, shape) for name, dtype, shape in conn.execute(
                "SELECT name, dtype, shape FROM arrays GROUP BY name")}
            session = conn.execute(
                "INSERT INTO writer_sessions(host, pid, boot_id, pid_start, started, heartbeat) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (identity.host, identity.pid, identity.boot_id, identity.pid_start, now, now)).lastrowid
            if checkpoint:
                message = (f"resumed from step {checkpoint.step} (checkpoint {checkpoint.path.name}); "
                           f"discarded {discarded} later steps, which will be recomputed")
            else:
                message = f"resumed from the start (no checkpoint); discarded {discarded} steps"
            data = {"previous_status": previous_status, "checkpoint_step": None if checkpoint is None
                    else checkpoint.step, "discarded_steps": discarded, "pid": identity.pid,
                    "host": identity.host}
            conn.execute("INSERT INTO events(step, time, level, kind, message, data) VALUES (?, ?, 'info', "
                         "'resumed', ?, ?)", (keep_through if checkpoint else None, now, message,
                                              jsontext.dumps(data, "resume event")))
            if checkpoint and (last_step is None or last_step < checkpoint.step):
                # Only possible if the database lost committed steps (synchronous=NORMAL and a power cut
                # before the checkpoint forced them to disk, or a restored backup).
                conn.execute("INSERT INTO events(step, time, level, kind, message) VALUES (?, ?, 'warning', "
                             "'missing_steps', ?)", (checkpoint.step, now,
                                                     f"checkpoint is at step {checkpoint.step} but the last "
                                                     f"recorded step is {last_step}"))
            detail = f"resumed from step {checkpoint.step}" if checkpoint else "resumed from the start"
            conn.execute("INSERT INTO status(time, status, detail, session) VALUES (?, 'running', ?, ?)",
                         (now, detail, session))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            raise
        writer = cls(run_dir, conn, session, lock_fd, synchronous, last_step=last_step, array_layouts=layouts,
                     resumed_from=checkpoint)
        writer._log_line("INFO", f"{message} (pid {identity.pid} on {identity.host})")
        return writer

    # ---- recording ------------------------------------------------------------------------

    @property
    def last_step(self) -> int | None:
        """The last recorded step, None before the first."""
        return self._last_step

    def record_step(self, step: int, epoch: int, scalars: dict, arrays: dict | None = None) -> None:
        """Record one step in one transaction: the step row, every scalar and every array.

        Steps strictly increase (gaps are allowed): recording a step at or below the last one
        raises DuplicateStepError. NaN and infinite scalars are stored. An array name keeps
        the dtype and shape of its first recording for the whole run."""
        where = f"{self.run_dir}: record_step"
        step = as_index("step", step, where)
        epoch = as_index("epoch", epoch, where)
        where = f"{self.run_dir}: step {step}"
        scalar_rows = [(step, check_name("scalar", name, where), as_real(name, value, where))
                       for name, value in (scalars or {}).items()]
        blobs = {check_name("array", name, where): encode_array(value, f"{where}: array {name!r}")
                 for name, value in (arrays or {}).items()}
        now = time.time()
        with self._lock:  # the order check, the commit and the bookkeeping as one unit
            for name, blob in blobs.items():
                expected = self._array_layouts.get(name)
                if expected and expected != (blob.dtype, blob.shape):
                    raise RunStoreError(f"{where}: array {name!r} has dtype {blob.dtype} and shape {blob.shape}, "
                                        f"earlier steps recorded dtype {expected[0]} and shape {expected[1]}; an "
                                        "array name keeps one dtype and shape for the whole run")
            if self._last_step is not None and step <= self._last_step:
                raise DuplicateStepError(f"{self.run_dir}: step {step} recorded after step {self._last_step}; "
                                         "steps are recorded once each, in increasing order")
            with self._transaction():
                self._conn.execute("INSERT INTO steps(step, epoch, time) VALUES (?, ?, ?)", (step, epoch, now))
                self._conn.executemany("INSERT INTO scalars(step, name, value) VALUES (?, ?, ?)", scalar_rows)
                self._conn.executemany("INSERT INTO arrays(step, name, dtype, shape, data) VALUES (?, ?, ?, ?, ?)",
                                       [(step, name, b.dtype, b.shape, b.data) for name, b in blobs.items()])
                self._touch(now)
            self._last_step = step
            for name, blob in blobs.items():
                self._array_layouts[name] = (blob.dtype, blob.shape)

    def event(self, kind: str, message: str, level: str = "info", data=None, step: int | None = None) -> int:
        """Record an event (also written to log.txt); returns its id. ``data`` is JSON-able."""
        where = f"{self.run_dir}: event"
        if level not in EVENT_LEVELS:
            raise RunStoreError(f"{where}: level {level!r} is not one of {', '.join(EVENT_LEVELS)}")
        if not isinstance(kind, str) or not kind:
            raise RunStoreError(f"{where}: kind {kind!r} must be a non-empty string")
        if step is not None:
            step = as_index("step", step, where)
        data_text = None if data is None else jsontext.dumps(data, f"{where} {kind!r}: data")
        now = time.time()
        with self._transaction():
            event_id = self._conn.execute(
                "INSERT INTO events(step, time, level, kind, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                (step, now, level, kind, str(message), data_text)).lastrowid
            self._touch(now)
        self._log_line(level.upper(), f"{kind}: {message}" + (f" (step {step})" if step is not None else ""))
        return event_id

    def set_summary(self, **values) -> None:
        """Set run-level values (epochs_done, linear_ceiling_accuracy, ...); each is JSON-able."""
        rows = [(key, jsontext.dumps(value, f"{self.run_dir}: summary {key!r}")) for key, value in values.items()]
        with self._transaction():
            self._conn.executemany("INSERT INTO summary(key, value) VALUES (?, ?) "
                                   "ON CONFLICT(key) DO UPDATE SET value = excluded.value", rows)
            self._touch(time.time())

    def set_status(self, status: str, detail: str = "") -> None:
        """Record an active status: running, paused or stopping. Final statuses go through close()."""
        if status not in ACTIVE:
            hint = "; a final status is recorded by close(status)" if status in FINAL else ""
            raise RunStoreError(f"{self.run_dir}: set_status({status!r}): allowed are {', '.join(ACTIVE)}{hint}")
        self._record_status(status, detail)

    def update_metadata(self, **values) -> None:
        """Add facts known only after creation (instrument identities); rewrites metadata.json."""
        with self._lock:
            self._check_open()
            meta = jsontext.loads(self._conn.execute("SELECT value FROM run WHERE key = 'metadata_json'")
                                  .fetchone()[0])
            meta.update(values)
            text = jsontext.dumps(meta, f"{self.run_dir}: metadata")
            with self._transaction():
                self._conn.execute("UPDATE run SET value = ? WHERE key = 'metadata_json'", (text,))
            atomic_write_text(self.run_dir / METADATA_FILE, jsontext.dumps(meta, "metadata", indent=2) + "\n")

    def heartbeat(self) -> None:
        """Tell readers on other hosts the writer is alive. Every write does this; call it while
        idle (paused) more often than the readers' stale_after_s (default 900 s)."""
        with self._transaction():
            self._touch(time.time())

    # ---- checkpoints ----------------------------------------------------------------------

    def checkpoint(self, step: int, epoch: int, arrays: dict, state: dict, keep: int = 2) -> Path:
        """Atomically save the state after ``step`` (already recorded) for a resume.

        ``arrays`` are numeric numpy arrays (stored in an .npz, never pickled); ``state`` is
        JSON-able (step counters, RNG states from ``bit_generator.state``, ...). The newest
        ``keep`` checkpoints are kept. Returns the checkpoint's folder."""
        where = f"{self.run_dir}: checkpoint"
        step = as_index("step", step, where)
        epoch = as_index("epoch", epoch, where)
        if keep < 1:
            raise RunStoreError(f"{where}: keep={keep}; at least the new checkpoint is kept (keep >= 1)")
        # A separate lock: writing a large checkpoint must not block set_status or events from
        # other threads (a pause button), which only need the database.
        with self._checkpoint_lock:
            self._check_open()
            if self._last_step is None or step > self._last_step:
                raise RunStoreError(f"{where}: step {step} is not recorded yet (last recorded step: "
                                    f"{self._last_step}); record a step before checkpointing it, so a "
                                    "resume never leaves a gap")
            if self._synchronous != "FULL":
                self._force_durable()
            path = self._checkpoints.write(step, epoch, arrays, state, keep=keep)
        self.event("checkpoint", f"{path.name} written", level="debug", step=step,
                   data={"epoch": epoch, "path": f"{CHECKPOINT_DIR}/{path.name}"})
        return path

    def latest_checkpoint(self) -> Checkpoint | None:
        return self._checkpoints.latest()

    def _force_durable(self) -> None:
        # One commit with synchronous=FULL fsyncs the whole WAL, so every earlier step is on disk
        # before a checkpoint can refer to it.
        with self._lock:
            self._conn.execute("PRAGMA synchronous=FULL")
            try:
                self.heartbeat()
            finally:
                self._conn.execute(f"PRAGMA synchronous={self._synchronous}")

    # ---- logging --------------------------------------------------------------------------

    def log_handler(self, level: int = logging.INFO) -> logging.Handler:
        """A logging handler that appends to this run's log.txt."""
        return _RunLogHandler(self, level)

    def _log_line(self, level: str, message: str) -> None:
        with self._lock:
            if not self._log_file.closed:
                self._log_file.write(f"{utc_iso(time.time())} {level:<7} {message}\n")

    # ---- closing --------------------------------------------------------------------------

    def close(self, status: str = "done", detail: str = "") -> None:
        """Record the final status (done, stopped, aborted, failed) and release the run.
        Closing twice does nothing."""
        if self._closed:
            return
        if status not in FINAL:
            raise RunStoreError(f"{self.run_dir}: close({status!r}): allowed are {', '.join(FINAL)}")
        try:
            self._record_status(status, detail, closing=True)
        finally:
            with self._lock:
                self._closed = True
                self._conn.close()
                self._log_file.close()
                if self._lock_fd is not None:
                    os.close(self._lock_fd)
                    self._lock_fd = None

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._closed:
            return False
        if exc_type is None:
            self.close("done")
            return False
        try:
            if issubclass(exc_type, KeyboardInterrupt):
                self.close("stopped", "interrupted (KeyboardInterrupt)")
            elif issubclass(exc_type, Exception):
                message = f"{exc_type.__name__}: {exc}"
                self.event("exception", message, level="error",
                           data={"traceback": "".join(traceback.format_exception(exc_type, exc, tb))})
                self.close("failed", message)
            else:
                self.close("stopped", exc_type.__name__)
        except Exception:
            # Never hide the exception that ended the run behind one from recording it.
            log.exception("%s: could not record the end of the run", self.run_dir)
            if not self._closed:
                self._closed = True
                with contextlib.suppress(Exception):
                    self._conn.close()
        return False

    # ---- internals ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RunStoreError(f"{self.run_dir}: the run writer is closed")

    @contextlib.contextmanager
    def _transaction(self):
        with self._lock:
            self._check_open()
            try:
                # An interrupt may land between any two statements, even right after BEGIN: every
                # way out rolls back what is open, so the connection is never left inside one.
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    yield
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise RunStoreError(f"{self.run_dir / DATABASE_FILE}: {exc}") from exc

    def _touch(self, now: float) -> None:
        self._conn.execute("UPDATE writer_sessions SET heartbeat = ? WHERE session = ?", (now, self._session))

    def _record_status(self, status: str, detail: str, closing: bool = False) -> None:
        now = time.time()
        with self._transaction():
            self._conn.execute("INSERT INTO status(time, status, detail, session) VALUES (?, ?, ?, ?)",
                               (now, status, str(detail), self._session))
            self._touch(now)
            if closing:
                self._conn.execute("UPDATE writer_sessions SET closed = ? WHERE session = ?", (now, self._session))
        self._log_line("INFO", f"status {status}" + (f": {detail}" if detail else ""))

