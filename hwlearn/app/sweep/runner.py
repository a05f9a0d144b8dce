"""Running a sweep: hand points to an executor, record what comes back, retry, stop, resume.

The index says what the sweep has seen; each point's run folder says what was trained. Whenever a
report is missing (a killed client, a lost worker, a resume), the runner asks the folder
(hwlearn.app.sweep.folders) before it submits again, and the task itself does the same on the
worker, so a finished point is never trained again and an interrupted one continues from its
checkpoint.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

from hwlearn.app.sweep.folders import ABSENT, BUSY, DONE, inspect
from hwlearn.app.sweep.index import POINTS_DIR, PointRecord, SweepIndex
from hwlearn.app.sweep.task import NOT_STARTED, PointResult, PointTask, run_point
from hwlearn.config import resolve

WATCH_INTERVAL_S = 1.0  # how often a point written by a process outside this sweep is looked at
STOP_CHECK_S = 0.2  # how long the loop waits for a report before it looks at the stop flag again


@dataclass
class SweepCounts:
    total: int
    done: int = 0
    running: int = 0
    failed: int = 0
    stopped: int = 0
    finished_here: int = 0  # points finished by this client (for the rate and the ETA)

    @property
    def pending(self) -> int:
        return self.total - self.done - self.running - self.failed - self.stopped


class SweepRun:
    """One client session over a sweep index. Use ``run_sweep``."""

    def __init__(self, index: SweepIndex, executor, retries: int, progress=None, stop: threading.Event | None = None):
        self.index = index
        self.executor = executor
        self.retries = retries
        self.progress = progress
        self.stop = stop or threading.Event()
        self.points = {p.id: p for p in index.points()}
        self.counts = SweepCounts(len(self.points))
        self.tries: dict[int, int] = {}
        self.queue: deque[int] = deque()
        self.in_flight: dict[cf.Future, int] = {}
        self.watching: dict[int, float] = {}  # point -> when to look at its folder again
        self.started = time.monotonic()

    # ---- states

    def _run_dir(self, point: PointRecord) -> Path:
        return (self.index.sweep_dir / POINTS_DIR / point.name).resolve()

    def _set(self, point_id: int, state: str, **record) -> None:
        old = self.points[point_id].state
        if record:
            self.index.record(point_id, state=state, **record)
        elif old != state:
            self.index.set_state([point_id], state)
        self._count(old, -1)
        self._count(state, +1)
        self.points[point_id] = _with_state(self.points[point_id], state)

    def _count(self, state: str, delta: int) -> None:
        if state in ("done", "running", "failed", "stopped"):
            setattr(self.counts, state, getattr(self.counts, state) + delta)

    # ---- the loop

    def reconcile(self) -> None:
        """Before submitting anything: what did the last client leave? Points it had running are
        looked up in their run folders: finished ones are recorded, live ones watched, the rest queued."""
        for point in self.points.values():
            self._count(point.state, +1)
        for point in list(self.points.values()):
            if point.state == "done":
                continue
            state = inspect(self._run_dir(point))
            if state.kind == DONE:
                self._set(point.id, "done", outcome="done", metrics=state.metrics, worker=state.worker)
            elif state.kind == BUSY:
                self._set(point.id, "running")
                self.watching[point.id] = 0.0
            else:
                if point.state == "running":
                    self._set(point.id, "pending" if state.kind == ABSENT else "stopped")
                self.queue.append(point.id)

    def run(self) -> SweepCounts:
        self.reconcile()
        stopping = False
        while self.queue or self.in_flight or self.watching:
            if self.stop.is_set() and not stopping:
                stopping = True
                self.executor.request_stop()
                self.queue.clear()
                self.watching.clear()  # points written elsewhere are left to their writers
            if not stopping:
                self._submit()
                self._look_at_watched()
            self._show()
            if not self.in_flight:
                if self.watching:
                    self.stop.wait(STOP_CHECK_S)
                continue
            done, _ = cf.wait(self.in_flight, timeout=STOP_CHECK_S, return_when=cf.FIRST_COMPLETED)
            for future in done:
                self._report(self.in_flight.pop(future), future, stopping)
        self._show(final=True)
        return self.counts

    def _submit(self) -> None:
        window = 2 * self.executor.slots  # one waiting per slot hides the round trip between points
        while self.queue and len(self.in_flight) < window:
            point = self.points[self.queue.popleft()]
            task = PointTask(point.id, point.name, str(self._run_dir(point)),
                             resolve(point.config, f"point {point.name}"))
            self.in_flight[self.executor.submit(run_point, task)] = point.id
            self._set(point.id, "running")

    def _look_at_watched(self) -> None:
        now = time.monotonic()
        for point_id, when in list(self.watching.items()):
            if when > now:
                continue
            state = inspect(self._run_dir(self.points[point_id]))
            if state.kind == BUSY:
                self.watching[point_id] = now + WATCH_INTERVAL_S
                continue
            del self.watching[point_id]
            if state.kind == DONE:
                self._set(point_id, "done", outcome="done", metrics=state.metrics, worker=state.worker)
            else:
                self.queue.append(point_id)

    def _report(self, point_id: int, future: cf.Future, stopping: bool) -> None:
        try:
            result: PointResult = future.result()
        except cf.CancelledError:
            self._set(point_id, "pending")
            return
        except BaseException as exc:
            self._failed(point_id, exc, stopping)
            return
        if result.status == "done":
            self._set(point_id, "done", outcome="done", resumed=result.resumed, worker=result.worker,
                      elapsed=result.elapsed_seconds if result.trained else None, metrics=result.metrics)
            self.counts.finished_here += 1
        elif result.status == NOT_STARTED:
            folder = inspect(self._run_dir(self.points[point_id]))
            self._set(point_id, "pending" if folder.kind == ABSENT else "stopped")
        elif stopping:
            self._set(point_id, "stopped", outcome="stopped", resumed=result.resumed, worker=result.worker,
                      elapsed=result.elapsed_seconds)
        else:  # stopped on the worker by someone else (SIGTERM of a preempted node): counts as a try
            self._retry_or_fail(point_id, "stopped on the worker before the end (a SIGTERM there?)", result)

    def _failed(self, point_id: int, exc: BaseException, stopping: bool) -> None:
        point = self.points[point_id]
        state = inspect(self._run_dir(point))
        if state.kind == DONE:  # it finished; only the report was lost
            self._set(point_id, "done", outcome="done", metrics=state.metrics, worker=state.worker)
            self.counts.finished_here += 1
        elif state.kind == BUSY and not stopping:
            self.watching[point_id] = time.monotonic() + WATCH_INTERVAL_S
        else:
            self._retry_or_fail(point_id, f"{type(exc).__name__}: {exc}", None, stopping)

    def _retry_or_fail(self, point_id: int, error: str, result: PointResult | None, stopping: bool = False) -> None:
        tries = self.tries[point_id] = self.tries.get(point_id, 0) + 1
        again = tries <= self.retries and not stopping
        extra = {} if result is None else {"resumed": result.resumed, "worker": result.worker,
                                           "elapsed": result.elapsed_seconds}
        self._set(point_id, "stopped" if again else "failed", outcome="failed", error=error, **extra)
        if again:
            self.queue.append(point_id)

    def _show(self, final: bool = False) -> None:
        if self.progress is not None:
            self.progress.update(self.counts, time.monotonic() - self.started, final=final)


def _with_state(point: PointRecord, state: str) -> PointRecord:
    return replace(point, state=state)


def run_sweep(index: SweepIndex, executor, *, progress=None, stop: threading.Event | None = None) -> SweepCounts:
    """Run every point of ``index`` that is not done on ``executor``; returns the counts at the end
    (``stop`` set: running points stop at their next step and are recorded as stopped)."""
    return SweepRun(index, executor, int(index.fact("retries")), progress, stop).run()
