"""One point on a worker: train it, continue it, or find it finished, from its run folder.

The task is idempotent: a Dask scheduler re-running it after a worker died, or a resumed sweep
submitting it again, continues the same run folder instead of starting over, and a finished run
is reported, not trained again.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from hwlearn.app.sweep.folders import ABSENT, BROKEN, BUSY, DONE, clear_unfinished, inspect
from hwlearn.app.training import train_simulated
from hwlearn.config import resolve
from hwlearn.errors import ConfigError
from hwlearn.runstore import RunBusyError, RunReader

NOT_STARTED = "not_started"


@dataclass(frozen=True)
class PointTask:
    point_id: int
    name: str
    run_dir: str  # absolute; the same path on every worker (docs/scaling.md)
    config: dict


@dataclass(frozen=True)
class PointResult:
    """``status``: done, stopped (resumable) or not_started (the stop came first).
    ``trained``: False when the run was found finished and nothing was trained."""

    status: str
    metrics: dict = field(default_factory=dict)
    elapsed_seconds: float = 0.0
    resumed: bool = False
    trained: bool = True
    worker: str = ""


def _stored_config(run_dir: Path) -> dict:
    with RunReader(run_dir) as reader:
        return resolve(reader.config(), f"{run_dir}/config.toml")


def run_point(task: PointTask, *, stop: threading.Event) -> PointResult:
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if stop.is_set():
        return PointResult(NOT_STARTED, trained=False, worker=worker)
    run_dir = Path(task.run_dir)
    if not run_dir.parent.is_dir():
        raise ConfigError(f"{run_dir.parent}: not found on {worker}; every worker must see the sweep folder at the "
                          "same path as the client (docs/scaling.md)")
    state = inspect(run_dir)
    if state.kind == DONE:
        return PointResult(DONE, state.metrics or {}, trained=False, worker=worker)
    if state.kind == BUSY:
        raise RunBusyError(state.detail)
    if state.kind == BROKEN:
        raise ConfigError(state.detail)
    if state.kind == ABSENT and run_dir.exists():
        clear_unfinished(run_dir)
    resume = state.kind != ABSENT
    if resume and _stored_config(run_dir) != task.config:
        raise ConfigError(f"{run_dir}: its config differs from the sweep's point {task.name}; the folder belongs "
                          "to another sweep")
    outcome = train_simulated(task.config, run_dir, resume=resume, stop=stop, source=f"point {task.name}")
    return PointResult(outcome.status, outcome.metrics, outcome.elapsed_seconds, resume, worker=worker)
