"""The run engine: executes plans on a Rig, with explicit states and a safe end on every path.

States: idle, running, paused, stopping, aborting, done, failed. Verbs, callable from another
thread (a GUI): pause() takes effect at the next plan boundary (a sample), resume(), stop() (a
clean end, success), abort() (a clean end, marked aborted), estop() (skip the rest of the plan and
put the rig in its safe state at once). Whatever happens, close() and every exception end in
rig.safe_state().
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

import numpy as np

from hwlearn.errors import HwlearnError
from hwlearn.plans import Msg, Plan
from hwlearn.rig import Rig

log = logging.getLogger(__name__)

STATES = ("idle", "running", "paused", "stopping", "aborting", "done", "failed")


class EngineStopped(HwlearnError):
    """Raised inside a plan's execution when the engine was aborted or emergency-stopped."""


class RunEngine:
    def __init__(self, rig: Rig):
        self.rig = rig
        self.state = "idle"
        self.counts: Counter[str] = Counter()
        self._lock = threading.Condition()
        self._estop = False

    # ---------------------------------------------------------------- verbs (any thread)
    def pause(self) -> None:
        with self._lock:
            if self.state == "running":
                self.state = "paused"

    def resume(self) -> None:
        with self._lock:
            if self.state == "paused":
                self.state = "running"
                self._lock.notify_all()

    def stop(self) -> None:
        with self._lock:
            if self.state in ("running", "paused"):
                self.state = "stopping"
                self._lock.notify_all()

    def abort(self) -> None:
        with self._lock:
            self.state = "aborting"
            self._lock.notify_all()

    def estop(self) -> None:
        """Emergency stop: the current message is the last one; the rig goes safe now."""
        with self._lock:
            self._estop = True
            self.state = "aborting"
            self._lock.notify_all()
        try:
            self.rig.safe_state()
        except Exception:  # safe_state must not raise, but an E-stop must never fail loudly
            log.exception("safe_state during emergency stop")

    @property
    def stop_requested(self) -> bool:
        return self.state in ("stopping", "aborting")

    # ---------------------------------------------------------------- execution
    def _boundary(self) -> None:
        """Between plans: wait while paused; raise if aborted."""
        with self._lock:
            while self.state == "paused":
                self._lock.wait(0.1)
            if self.state == "aborting":
                raise EngineStopped("aborted")
            if self.state == "idle":
                self.state = "running"

    def _dispatch(self, msg: Msg):
        if self._estop:
            raise EngineStopped("emergency stop")
        self.counts[msg.verb] += 1
        if msg.verb == "set_inputs":
            return self.rig.set_inputs(*msg.args)
        if msg.verb == "drive_outputs":
            return self.rig.drive_outputs(*msg.args)
        if msg.verb == "measure":
            return np.asarray(self.rig.measure(*msg.args), dtype=float)
        if msg.verb == "program":
            return np.asarray(self.rig.program(*msg.args), dtype=float)
        raise ValueError(f"plan yielded unknown message verb '{msg.verb}'")

    def run(self, plan: Plan):
        """Execute one plan to its end and return its value. A rig error puts the rig in its safe
        state and propagates; the engine is then 'failed'."""
        self._boundary()
        try:
            result = None
            msg = next(plan)
            while True:
                result = self._dispatch(msg)
                msg = plan.send(result)
        except StopIteration as done:
            return done.value
        except BaseException:
            with self._lock:
                if self.state != "aborting":
                    self.state = "failed"
            self.rig.safe_state()
            raise

    def close(self, final: str = "done") -> None:
        """End of the run: the rig to its safe state, the engine to a final state."""
        try:
            self.rig.safe_state()
        finally:
            with self._lock:
                if self.state not in ("failed",):
                    self.state = "failed" if final == "failed" else "done"
