"""What the window knows about the run it shows, kept in the GUI thread (no Qt here).

Documents (hwlearn.documents) and the bridge's items are applied in order; the views read this
state when the redraw timer finds them dirty. Scalars go into growing series; of the arrays only
the newest frame is kept (older ones are read back from the run store when the slider asks), so
memory stays flat however long the run.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from gui.bridge import ArrayFrame, ArraySteps, Reset, RunInfo
from hwlearn.documents import RunEvent, RunStart, RunStop, StatusChange, StepRecord, Summary

FINAL_STATES = ("done", "stopped", "aborted", "failed", "crashed")


class Series:
    """Steps and values of one scalar, growing by doubling."""

    def __init__(self):
        self._steps = np.empty(256)
        self._values = np.empty(256)
        self.n = 0

    def append(self, step: int, value: float) -> None:
        if self.n == self._steps.size:
            self._steps = np.concatenate([self._steps, np.empty(self.n)])
            self._values = np.concatenate([self._values, np.empty(self.n)])
        self._steps[self.n] = step
        self._values[self.n] = np.nan if value is None else value
        self.n += 1

    @property
    def steps(self) -> np.ndarray:
        return self._steps[:self.n]

    @property
    def values(self) -> np.ndarray:
        return self._values[:self.n]

    def last(self) -> float | None:
        return float(self._values[self.n - 1]) if self.n else None


class RunState:
    def __init__(self, title: str = "", run_dir: str | None = None, live: bool = False):
        self.title = title
        self.run_dir = run_dir
        self.live = live                 # started in this window (the verbs reach its engine)
        self.state = "starting" if live else "opening"
        self.detail = ""
        self.config: dict = {}
        self.rig: dict = {}
        self.plan: dict = {}
        self.metadata: dict = {}
        self.summary: dict = {}
        self.writer = "this window" if live else ""
        self.start_time: float | None = None
        self.stop_time: float | None = None
        self.step: int | None = None
        self.epoch: int | None = None
        self.phase: str | None = None
        self._rate_from: tuple[float, int] | None = None
        self._rate_to: tuple[float, int] | None = None
        self.series: dict[str, Series] = {}
        self.array_steps: list[int] = []
        self.frame: ArrayFrame | None = None      # the newest recorded arrays
        self.events: deque[RunEvent] = deque(maxlen=2000)
        self.new_events: list[RunEvent] = []
        self.instruments: dict = {}
        self.instruments_step: int | None = None
        self.instruments_note = ""
        self.dirty: set[str] = {"status", "plots", "map", "instruments", "events"}

    # ------------------------------------------------------------------ facts
    @property
    def ended(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def kind(self) -> str:
        return str(self.rig.get("kind", "simulated" if self.config else ""))

    def elapsed(self, now: float | None = None) -> float | None:
        if self.start_time is None:
            return None
        end = self.stop_time if self.stop_time is not None else (now or time.time())
        return max(end - self.start_time, 0.0)

    def eta(self) -> float | None:
        """Seconds to the last step at the rate of this session's steps so far."""
        total = self.plan.get("steps_total")
        if self.ended or total is None or self._rate_from is None or self._rate_to is None:
            return None
        (t0, s0), (t1, s1) = self._rate_from, self._rate_to
        if s1 <= s0 or t1 <= t0:
            return None
        return max(total - s1, 0) * (t1 - t0) / (s1 - s0)

    def scalar(self, name: str) -> Series | None:
        return self.series.get(name)

    # ------------------------------------------------------------------ applying items
    def apply(self, item) -> None:
        if isinstance(item, StepRecord):
            self._step(item)
        elif isinstance(item, RunEvent):
            self.events.append(item)
            self.new_events.append(item)
            self.dirty.add("events")
            if item.kind == "instruments" and item.data:
                self.instruments = item.data
                self.instruments_step = item.step
                self.instruments_note = item.message
                self.dirty.add("instruments")
        elif isinstance(item, ArrayFrame):
            self._frame(item)
        elif isinstance(item, ArraySteps):
            self._array_steps(item.steps)
        elif isinstance(item, StatusChange):
            if (item.state, item.detail) != (self.state, self.detail):
                self._note("status", item.state + (f": {item.detail}" if item.detail else ""), item.time,
                           "error" if item.state in ("failed", "crashed") else "info")
            self.state, self.detail = item.state, item.detail
            if item.state in FINAL_STATES:
                self.stop_time = item.time
            self.dirty.add("status")
        elif isinstance(item, RunStop):
            if (item.status, item.detail) != (self.state, self.detail):
                self._note("status", item.status + (f": {item.detail}" if item.detail else ""), item.time,
                           "error" if item.status == "failed" else "info")
            self.state, self.detail = item.status, item.detail
            self.stop_time = item.time
            self.dirty.update({"status", "plots"})
        elif isinstance(item, RunStart):
            self.config, self.rig, self.plan = item.config, item.rig, item.plan
            self._note("start", f"{item.config.get('name', 'run')} on {item.rig.get('description', 'its rig')}"
                       + (f", resumed after step {item.resumed_from}" if item.resumed_from is not None else ""),
                       item.time)
            self.start_time = item.time
            self.dirty.update({"status", "plots", "map", "instruments"})
        elif isinstance(item, Summary):
            self.summary = {**self.summary, **item.values}
            self.dirty.add("plots")
        elif isinstance(item, RunInfo):
            self.run_dir = item.run_dir
            self.metadata = item.metadata
            if item.writer:
                self.writer = item.writer
            self.dirty.add("status")
        elif isinstance(item, Reset):
            self.__init__(self.title, self.run_dir, self.live)

    def _note(self, kind: str, message: str, when: float, level: str = "info") -> None:
        """A line of the event log that is not a recorded event (a status change)."""
        event = RunEvent(kind, message, level, time=when, step=self.step)
        self.events.append(event)
        self.new_events.append(event)
        self.dirty.add("events")

    def _step(self, doc: StepRecord) -> None:
        self.step, self.epoch = doc.step, doc.epoch
        for name, value in doc.scalars.items():
            self.series.setdefault(name, Series()).append(doc.step, value)
        if doc.step > 0:
            if self._rate_from is None:
                self._rate_from = (doc.time, doc.step)
            else:
                self._rate_to = (doc.time, doc.step)
        self.dirty.update({"status", "plots"})
        if doc.arrays:
            self._array_steps((doc.step,))
            self._frame(ArrayFrame(doc.step, doc.arrays, live=True))

    def _array_steps(self, steps) -> None:
        last = self.array_steps[-1] if self.array_steps else -1
        self.array_steps.extend(s for s in steps if s > last)
        self.dirty.add("map")

    def _frame(self, frame: ArrayFrame) -> None:
        if frame.live:
            self.frame = frame
        self.dirty.add("map")
