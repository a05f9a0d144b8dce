"""What a point's run folder says about its training: the one truth about whether a point ran.

Both the worker (before it trains) and the client (when a report is missing) decide from it, so a
point whose training finished is never trained again, and one that stopped or crashed is resumed
from its checkpoint, whichever process or executor had it before.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from hwlearn.runstore import NotARunError, RunReader
from hwlearn.runstore.layout import WRITER_LOCK_FILE
from hwlearn.runstore.locks import held_elsewhere

ABSENT, DONE, RESUMABLE, BUSY, BROKEN = "absent", "done", "resumable", "busy", "broken"


@dataclass(frozen=True)
class FolderState:
    """``kind``: absent (nothing trained yet), done, resumable (stopped, crashed or failed: continue
    from its checkpoint), busy (a live process writes it), broken (cannot be continued).
    ``metrics``: the final metrics of a done run; ``worker``: host:pid of its last writer."""

    kind: str
    detail: str = ""
    metrics: dict | None = None
    worker: str | None = None


def _being_created(run_dir: Path) -> bool:
    """Whether a live process holds the run's writer lock (a create still in progress)."""
    return held_elsewhere(run_dir / WRITER_LOCK_FILE)


def inspect(run_dir: Path) -> FolderState:
    run_dir = Path(run_dir)
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return FolderState(ABSENT)
    try:
        with RunReader(run_dir) as reader:
            status = reader.status()
            worker = f"{status.writer_host}:{status.writer_pid}"
            if status.status == "done":
                return FolderState(DONE, metrics=reader.summary().get("final_metrics", {}), worker=worker)
    except NotARunError as exc:
        # A create killed before its first commit leaves files but no run; nothing was trained.
        if _being_created(run_dir):
            return FolderState(BUSY, f"{run_dir} is being created by another process")
        return FolderState(ABSENT, f"unfinished run folder removed: {exc}")
    if status.active:
        alive = "alive" if status.writer_alive else "on another host, heartbeat recent"
        return FolderState(BUSY, f"{run_dir} is being written by pid {status.writer_pid} on {status.writer_host} "
                           f"({alive})", worker=worker)
    if status.resumable:
        return FolderState(RESUMABLE, f"{status.status}: {status.detail}", worker=worker)
    return FolderState(BROKEN, f"{run_dir}: status {status.status!r} ({status.detail}) cannot be continued; "
                       "remove the folder to run the point again")


def clear_unfinished(run_dir: Path) -> None:
    """Remove what a killed create left (only called when ``inspect`` found no run in it)."""
    shutil.rmtree(run_dir)
