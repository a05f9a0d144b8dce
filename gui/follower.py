"""Following a run folder written by another process (or finished): a thread that polls the run
store and turns what is new into the documents a live run publishes, put into the bridge.

So the window draws a run it started and a run it only reads with the same code. Each poll reads
the status, the steps, scalars and events recorded since the last poll, the steps at which arrays
were recorded and, when there is a newer one, the arrays of the newest. A writer that started a
new session (a resume replaced the steps after its checkpoint) makes the follower start afresh.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path

from gui.bridge import ArrayFrame, ArraySteps, Bridge, Reset, RunInfo
from hwlearn.documents import RunEvent, RunStart, RunStop, StatusChange, StepRecord, Summary
from hwlearn.runstore import CRASHED, FINAL, NotARunError, RunReader, RunStoreError

log = logging.getLogger("hwlearn.gui")

# The array that is recorded at every array step (the trainer records it first).
MARKER_ARRAY = "resistances"


class RunFollower:
    def __init__(self, run_dir: str | Path, bridge: Bridge, source: int, poll_s: float = 0.25,
                 final_poll_s: float = 2.0):
        self.run_dir = Path(run_dir)
        self.bridge = bridge
        self.source = source
        self.poll_s = poll_s
        self.final_poll_s = final_poll_s
        self._stop = threading.Event()
        self._reader: RunReader | None = None
        self._forget()
        self._thread = threading.Thread(target=self._work, name="hwlearn-gui-follow", daemon=True)

    def start(self) -> RunFollower:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _forget(self) -> None:
        self.session: int | None = None
        self.last_step: int | None = None
        self.last_array_step: int | None = None
        self.last_event = 0
        self.status: tuple[str, str] | None = None
        self.summary: dict | None = None

    def _put(self, item) -> None:
        self.bridge.put(self.source, item)

    # ------------------------------------------------------------------ the thread
    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    final = self.poll()
                except (NotARunError, RunStoreError) as exc:
                    if self._reader is not None:  # a run that vanished or broke after it was read
                        self._put(RunEvent("gui", f"reading {self.run_dir}: {exc}", level="warning"))
                    final = False
                self._stop.wait(self.final_poll_s if final else self.poll_s)
        except Exception as exc:  # shown in the window: a follower that died must not be silent
            log.exception("following %s", self.run_dir)
            self._put(RunEvent("gui", f"stopped following {self.run_dir}: {type(exc).__name__}: {exc}",
                               level="error"))
        finally:
            if self._reader is not None:
                self._reader.close()

    def poll(self) -> bool:
        """Read what is new; returns True when the run has ended (polled slowly from then on)."""
        if self._reader is None:
            self._reader = RunReader(self.run_dir)  # NotARunError while it is being created
        reader = self._reader
        status = reader.status()
        if status.session != self.session:
            if self.session is not None:
                self._forget()
                self._put(Reset())
            self.session = status.session
            self._start(reader, status)
        summary = reader.summary()
        if summary != self.summary:
            self.summary = summary
            self._put(Summary(summary))
        self._steps(reader)
        self._arrays(reader)
        for event in reader.events(since_id=self.last_event):
            self.last_event = event["id"]
            self._put(RunEvent(event["kind"], event["message"], event["level"], event["data"], event["step"],
                               time=event["time"]))
        now = (status.status, status.detail)
        if now != self.status:
            self.status = now
            # A crashed writer's end is its last write, not its last recorded status.
            when = status.heartbeat if status.status == CRASHED else status.time
            self._put(StatusChange(status.status, status.detail, time=when))
            if status.status in FINAL:
                self._put(RunStop(status.status, status.detail, time=when))
        return not status.active

    def _start(self, reader: RunReader, status) -> None:
        metadata = reader.metadata()
        writer = f"pid {status.writer_pid} on {status.writer_host}"
        self._put(RunInfo(str(self.run_dir), metadata, writer, status.session))
        self._put(RunStart(reader.config(), metadata.get("rig", {}), metadata.get("plan", {}), None,
                           time=reader.created()))

    def _steps(self, reader: RunReader) -> None:
        steps = reader.steps(since_step=self.last_step)
        if not len(steps):
            return
        upto = int(steps.step[-1])
        values = reader.scalars(None, since_step=self.last_step)
        by_step: dict[int, dict[str, float]] = {}
        for name, (at, vals) in values.items():
            for s, v in zip(at.tolist(), vals.tolist()):
                if s <= upto:
                    by_step.setdefault(s, {})[name] = v
        for step, epoch, t in zip(steps.step.tolist(), steps.epoch.tolist(), steps.time.tolist()):
            self._put(StepRecord(step, epoch, by_step.get(step, {}), {}, time=t))
        self.last_step = upto

    def _arrays(self, reader: RunReader) -> None:
        new = reader.array_steps(MARKER_ARRAY, since_step=self.last_array_step)
        if self.last_step is not None:
            new = new[new <= self.last_step]
        if not new.size:
            return
        self._put(ArraySteps(tuple(int(s) for s in new)))
        step = int(new[-1])
        self._put(ArrayFrame(step, read_arrays(reader, step), live=True))
        self.last_array_step = step


def read_arrays(reader: RunReader, step: int) -> dict:
    """Every array recorded at ``step`` (name -> array)."""
    found = {}
    for name in reader.array_names():
        with contextlib.suppress(RunStoreError):  # not recorded at this step (step 0: resistances only)
            found[name] = reader.array_at(name, step)
    return found
