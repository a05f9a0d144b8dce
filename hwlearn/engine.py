"""The run engine: one controller for every run, with explicit states and a safe end on every path.

Every run (the simulated fast path as well as plans on a Rig) is executed by a RunEngine:

    engine = RunEngine(rig, subscribers=[recorder, progress])
    result = engine.execute(body, start=RunStart(...))   # body() trains; it calls engine.boundary()
                                                        # and engine.run_plan(plan)

States: idle -> running <-> paused; running -> stopping | aborting; and the final ones done,
stopped, aborted, failed. Verbs, callable from any thread (a GUI, a signal handler):

- pause()   holds at the next sample boundary (a plan's start; a step's start on the fast path),
            with the rig idle (every source at 0 and off, programmed resistances kept);
- resume()  continues;
- stop()    a clean end at the next step boundary, after a checkpoint: status 'stopped',
            resumable to the same final state as an uninterrupted run;
- abort()   ends at the next sample boundary: the exception is thrown into the running plan so
            its own clean-up runs, then the rig goes safe: status 'aborted';
- estop()   emergency stop: the rig is put safe at once, from the calling thread, concurrently
            with whatever the engine thread is doing; the plan is skipped (its clean-up would
            touch the instruments again): status 'aborted'.

Whatever happens, execute() ends with rig.safe_state() and a RunStop document. A safe state that
failed for an instrument marks the run failed, naming the instrument. Documents go to the
subscribers in order; the first subscriber is essential (the run-store writer: if it fails, the
run fails), the others are views, whose errors are logged once and never end a run.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from hwlearn.documents import Document, Heartbeat, RunEvent, RunStart, RunStop, StatusChange, Subscriber
from hwlearn.errors import HwlearnError
from hwlearn.plans import Msg, Plan
from hwlearn.rig import Rig
from hwlearn.supervision import Policy, ReadingRefused, Supervisor

log = logging.getLogger(__name__)

STATES = ("idle", "running", "paused", "stopping", "aborting", "done", "stopped", "aborted", "failed")
FINAL_STATES = ("done", "stopped", "aborted", "failed")
# While paused, a heartbeat document this often keeps readers on other hosts from calling the
# run crashed (their default is 900 s without a write).
PAUSED_HEARTBEAT_S = 60.0

T = TypeVar("T")


class EngineStopped(HwlearnError):
    """The run was aborted or emergency-stopped; raised at a sample boundary and into the plan."""


class RunEngine:
    def __init__(self, rig: Rig | None = None, subscribers: Sequence[Subscriber] = (),
                 stop_event: threading.Event | None = None, supervisor: Supervisor | None = None):
        """rig: what plans run on (None for the simulated fast path, which has no plans).
        stop_event: an event another party sets to ask for a clean stop (an executor whose client
        went away); seen at the next boundary, as stop(). supervisor: what suspends the run and
        refuses readings (hwlearn.supervision); none by default."""
        self.rig = rig
        self.state = "idle"
        self.detail = ""
        self.counts: Counter[str] = Counter()
        self.position: dict = {}  # epoch, step, sample, verb: for displays, updated as the run goes
        self.safe_state_failures: list[str] = []
        self._subscribers: list[Subscriber] = list(subscribers)
        self._broken_views: set[int] = set()
        self._announced = ""  # the last stop or abort request recorded as a status
        self._stop_event = stop_event
        self._pause_reason = ""
        # True while the run's thread waits on an instrument: only then may a second Ctrl-C
        # interrupt it (hwlearn.signals); an interrupt elsewhere could cut a record in half.
        self.in_rig_call = False
        self.supervisor = supervisor or Supervisor(Policy())
        self._cond = threading.Condition()
        self._estop = threading.Event()
        self._thread: threading.Thread | None = None
        self._result = None
        self._error: BaseException | None = None

    # ================================================================ documents
    def subscribe(self, subscriber: Subscriber) -> None:
        """Add a subscriber after the others (a view: its errors never end the run)."""
        self._subscribers.append(subscriber)

    def publish(self, doc: Document) -> None:
        """Send ``doc`` to every subscriber in order. The first one is essential: its error
        propagates (the run cannot go on unrecorded); a view's error is logged once."""
        for index, subscriber in enumerate(list(self._subscribers)):
            if index == 0:
                subscriber(doc)
                continue
            if id(subscriber) in self._broken_views:
                continue
            try:
                subscriber(doc)
            except Exception:
                self._broken_views.add(id(subscriber))
                log.exception("a run view (%r) failed and is no longer updated", subscriber)

    def event(self, kind: str, message: str, level: str = "info", data: dict | None = None,
              step: int | None = None) -> None:
        self.publish(RunEvent(kind, message, level, data, step))

    def report_instruments(self, step: int | None = None, why: str = "status") -> None:
        """Publish the rig's instrument states (Rig.health) as an 'instruments' event, for the
        displays of this and other processes; nothing for a rig without instruments."""
        if self.rig is None:
            return
        health = self.rig.health()
        if health:
            self.event("instruments", f"instrument {why}", level="debug", data=health, step=step)

    # ================================================================ verbs (any thread)
    def pause(self, reason: str = "") -> None:
        """Hold at the next sample boundary; ``reason`` is recorded with the paused status (a
        plan or a supervisor that found something an operator must look at)."""
        with self._cond:
            if self.state == "running":
                self.state = "paused"
                self._pause_reason = reason
                self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            if self.state == "paused":
                self.state = "running"
                self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            if self.state in ("idle", "running", "paused"):
                self.state = "stopping"
                self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            if self.state not in FINAL_STATES:
                self.state = "aborting"
                self._cond.notify_all()

    def estop(self) -> list[str]:
        """Emergency stop: the rig safe now, from this thread; the plan is skipped. Returns the
        safe-state failures (instrument and error), empty when every instrument is safe."""
        self._estop.set()
        self.abort()
        return self._make_safe("emergency stop")

    @property
    def stop_requested(self) -> bool:
        return self.state in ("stopping", "aborting")

    @property
    def emergency_stopped(self) -> bool:
        return self._estop.is_set()

    # ================================================================ boundaries
    def boundary(self, where: str = "sample") -> bool:
        """Called between samples (by run_plan) and between steps (by the trainer). Waits while
        paused, with the rig idle; raises EngineStopped when aborting; returns True when a clean
        stop is requested and ``where`` is 'step' (stops only end whole steps)."""
        if self._stop_event is not None and self._stop_event.is_set():
            self.stop()
        self._hold_while_suspended()
        with self._cond:
            if self.state == "paused":
                self._hold_paused()
            state = self.state
        if state in ("stopping", "aborting") and state != self._announced:
            # Verbs come from other threads and signal handlers, which must not write: the run's
            # own thread records the request here, so a monitor in another process sees it.
            self._announced = state
            self.publish(StatusChange(state, "stop requested" if state == "stopping" else "abort requested"))
        if state == "aborting":
            raise EngineStopped("emergency stop" if self._estop.is_set() else "aborted")
        return where == "step" and state == "stopping"

    def _hold_paused(self) -> None:
        """With the lock held and state 'paused': idle the rig, record it, wait for a verb."""
        self._cond.release()
        try:
            if self.rig is not None:
                self.rig.idle()
            self.publish(StatusChange("paused", "; ".join(filter(None, [self._pause_reason, self._where()]))))
        finally:
            self._cond.acquire()
        last_beat = time.monotonic()
        while self.state == "paused":
            self._cond.wait(1.0)
            if self.state == "paused" and time.monotonic() - last_beat >= PAUSED_HEARTBEAT_S:
                last_beat = time.monotonic()
                self._cond.release()
                try:
                    self.publish(Heartbeat())
                finally:
                    self._cond.acquire()
        if self.state in ("running", "stopping"):
            state = self.state
            self._cond.release()
            try:
                self.publish(StatusChange(state, "resumed"))
            finally:
                self._cond.acquire()

    # ================================================================ supervision
    def _on_fault(self, kind: str, instrument: str, detail: str) -> None:
        """A rig's link fault (any thread): counted, and recorded as an event."""
        self.supervisor.fault()
        try:
            self.event("fault", f"{instrument}: {kind}: {detail}", level="warning",
                       data={"kind": kind, "instrument": instrument, "detail": detail},
                       step=self.position.get("step"))
        except Exception:  # the fault is counted; a failed record must not break the link's recovery
            log.exception("recording a fault of %s", instrument)

    def _hold_while_suspended(self) -> None:
        """While the supervisor finds a reason, hold the run with the rig idle; when the reasons
        clear, go on or abort as the policy says; abort after max_suspended_s."""
        if self.rig is None:
            return
        reasons = self.supervisor.reasons(self.rig.holds())
        if not reasons or self.state in FINAL_STATES:
            return
        policy = self.supervisor.policy
        said = "; ".join(reasons)
        self.event("suspended", said, level="warning")
        try:
            self.rig.idle()
        except Exception as exc:  # an unreachable instrument is often the reason itself
            log.warning("idling the rig while suspended: %s", exc)
        self.publish(StatusChange("paused", f"suspended: {said}"))
        started = time.monotonic()
        while True:
            with self._cond:
                self._cond.wait(policy.poll_s)
                if self.state in ("aborting", "stopping"):
                    return  # the operator decided; the boundary honours it
            reasons = self.supervisor.reasons(self.rig.holds())
            if not reasons:
                if policy.on_clear == "abort":
                    self.event("suspended", "the conditions cleared; supervision.on_clear = 'abort'", level="error")
                    self.abort()
                else:
                    self.event("resumed", f"the conditions cleared after {time.monotonic() - started:.1f} s")
                    self.publish(StatusChange(self.state, "resumed: the conditions cleared"))
                return
            if time.monotonic() - started > policy.max_suspended_s:
                self.event("suspended", f"still suspended after supervision.max_suspended_s = "
                           f"{policy.max_suspended_s:g} s: {'; '.join(reasons)}", level="error")
                self.abort()
                return

    def _measure(self, edges):
        """One measurement; a refused reading (compliance, out of band) is counted and taken
        again, up to the policy's reading_retries, after any suspension it causes."""
        policy = self.supervisor.policy
        for attempt in range(policy.reading_retries + 1):
            try:
                volts = np.asarray(self._on_rig(self.rig.measure, edges), dtype=float)
                worst = self.supervisor.out_of_band(volts)
                if worst is not None:
                    raise ReadingRefused(f"measure: a reading of {worst:g} V lies beyond supervision."
                                         f"reading_band_volts = {policy.reading_band_volts:g} V", "out_of_band")
                return volts
            except ReadingRefused as exc:
                self.supervisor.trip()
                self.event("reading_refused", str(exc), level="warning",
                           data={"kind": exc.kind, "attempt": attempt + 1}, step=self.position.get("step"))
                if attempt == policy.reading_retries:
                    raise
                self._hold_while_suspended()
                if self.state == "aborting":
                    raise EngineStopped("aborted") from exc
        raise AssertionError("unreachable")

    def _where(self) -> str:
        p = self.position
        parts = [f"{key} {p[key]}" for key in ("epoch", "step", "sample") if key in p]
        return "at " + ", ".join(parts) if parts else ""

    # ================================================================ plans
    def _dispatch(self, msg: Msg):
        if self._estop.is_set():
            raise EngineStopped("emergency stop")
        if msg.verb == "note":  # a plan says where it is (a phase's name), for displays only
            self.position["phase"] = msg.args[0]
            return None
        rig = self.rig
        if rig is None:
            raise HwlearnError(f"a plan yielded {msg.verb!r}, but this run has no rig")
        self.counts[msg.verb] += 1
        self.position["verb"] = msg.verb
        if msg.verb == "set_inputs":
            return self._on_rig(rig.set_inputs, *msg.args)
        if msg.verb == "drive_outputs":
            return self._on_rig(rig.drive_outputs, *msg.args)
        if msg.verb == "measure":
            return self._measure(*msg.args)
        if msg.verb == "program":
            return np.asarray(self._on_rig(rig.program, *msg.args), dtype=float)
        raise HwlearnError(f"plan yielded unknown message verb '{msg.verb}'")

    def _on_rig(self, call, *args):
        """A rig call, marked as a wait on the instruments (what a second Ctrl-C may cut)."""
        self.in_rig_call = True
        try:
            return call(*args)
        finally:
            self.in_rig_call = False

    def run_plan(self, plan: Plan):
        """Execute one plan (one sample, or an update) to its end and return its value.

        A sample boundary comes first (pause, abort). An abort is also noticed before every
        message. An error (a failed message, an abort) is thrown into the plan at the point
        where it yielded, so its own clean-up (``finally``, hwlearn.plans.finalize) runs, and
        the messages it then sends are executed. After an emergency stop the plan is closed
        instead and sends nothing more: the rig is already safe."""
        self.boundary("sample")
        cleaning = False
        try:
            msg = next(plan)
        except StopIteration as done:
            return done.value
        while True:
            try:
                if not cleaning and self.state == "aborting":
                    raise EngineStopped("emergency stop" if self._estop.is_set() else "aborted")
                result = self._dispatch(msg)
            except BaseException as exc:
                if self._estop.is_set():
                    plan.close()
                    raise
                cleaning = True
                try:
                    msg = plan.throw(exc)
                except StopIteration as done:  # the plan handled it and finished
                    return done.value
                continue
            try:
                msg = plan.send(result)
            except StopIteration as done:
                return done.value

    # ================================================================ a whole run
    def execute(self, body: Callable[[], T], start: RunStart | None = None) -> T:
        """Run ``body`` as the run, in this thread: publishes ``start``, the status changes and
        a final RunStop; puts the rig safe at the end, whatever happened. Returns body's value
        (a trainer's Result, whose status is 'done' or 'stopped'); re-raises its exception after
        the run is recorded as failed or aborted."""
        with self._cond:
            if self.state not in ("idle", "stopping", "paused", "aborting"):
                raise HwlearnError(f"the engine is {self.state}; a RunEngine executes one run")
            early = self.state
            if early == "idle":
                self.state = "running"
        status, detail, error = "failed", "", None
        result = None
        if self.rig is not None:
            self.rig.on_fault = self._on_fault
        try:
            if start is not None:
                self.publish(start)
            self.publish(StatusChange(self.state if self.state != "idle" else "running"))
            result = body()
            status = getattr(result, "status", "done")
            detail = "stop requested" if status == "stopped" else ""
        except EngineStopped as exc:
            status, detail, error = "aborted", str(exc), exc
        except KeyboardInterrupt as exc:
            status, error = "aborted", exc
            detail = "interrupted (Ctrl-C)"
        except BaseException as exc:
            if self._estop.is_set():  # a rig call the emergency stop cut short: the stop ended the run
                status, detail, error = "aborted", f"emergency stop (cut short: {type(exc).__name__}: {exc})", exc
                self._record_exception(exc, level="warning")
            else:
                status, detail, error = "failed", f"{type(exc).__name__}: {exc}", exc
                self._record_exception(exc)
        finally:
            failures = self._make_safe("end of the run")
            if failures:
                detail = "; ".join(filter(None, [detail, "safe state failed: " + "; ".join(failures)]))
                status = "failed"
            try:
                self.report_instruments(why="states after the safe state")
            except Exception:
                log.exception("recording the instruments' final states")
            with self._cond:
                self.state = status
                self.detail = detail
                self._cond.notify_all()
            try:
                self.publish(RunStop(status, detail))
            except Exception:
                log.exception("the end of the run could not be recorded")
                if error is None:
                    raise
            finally:
                if self.rig is not None:
                    self.rig.on_fault = None  # the run is over: later faults are not its events
        if error is not None:
            raise error
        return result

    def start(self, body: Callable[[], T], start: RunStart | None = None,
              after: Callable[[], None] | None = None) -> threading.Thread:
        """execute() in a worker thread (a GUI), then ``after()`` in that thread; ``join()``
        waits for it and returns body's value or raises its exception."""
        def work():
            try:
                self._result = self.execute(body, start)
            except BaseException as exc:  # kept for join(); the run already recorded it
                self._error = exc
            finally:
                if after is not None:
                    after()

        self._thread = threading.Thread(target=work, name="hwlearn-run", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None):
        if self._thread is None:
            raise HwlearnError("join(): the engine was not started with start()")
        self._thread.join(timeout)
        if self._thread.is_alive():
            return None
        if self._error is not None:
            raise self._error
        return self._result

    def wait_final(self, timeout: float | None = None) -> str:
        """Block until the engine reaches a final state (or the timeout); returns the state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self.state not in FINAL_STATES:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(remaining if remaining is not None else 1.0)
            return self.state

    # ================================================================ internals
    def _make_safe(self, why: str) -> list[str]:
        """rig.safe_state(), which never raises; its failures are recorded as events."""
        if self.rig is None:
            return []
        try:
            failures = list(self.rig.safe_state() or [])
        except Exception as exc:  # a Rig that breaks its promise still must not hide the failure
            failures = [f"{type(self.rig).__name__}: {exc}"]
        for failure in failures:
            if failure not in self.safe_state_failures:
                self.safe_state_failures.append(failure)
                try:
                    self.event("safe_state", f"safe state failed ({why}): {failure}", level="error")
                except Exception:
                    log.exception("recording a safe-state failure")
        return failures

    def _record_exception(self, exc: BaseException, level: str = "error") -> None:
        try:
            self.event("exception", f"{type(exc).__name__}: {exc}", level=level,
                       data={"traceback": "".join(traceback.format_exception(exc))})
        except Exception:
            log.exception("recording the exception that ended the run")
