"""The run engine: states and verbs, exceptions thrown into plans, clean-up, safe ends, documents."""

import threading

import numpy as np
import pytest

from hwlearn.app.launch import simulated_rig
from hwlearn.config import resolve
from hwlearn.documents import RunStop, StatusChange, StepRecord
from hwlearn.engine import EngineStopped, RunEngine
from hwlearn.experiment import build_experiment
from hwlearn.plans import Msg, finalize
from hwlearn.rig import RigError
from hwlearn.supervision import Policy, ReadingRefused, Supervisor

WAIT_S = 10.0  # a guard against hangs, never a synchronisation


@pytest.fixture()
def setup():
    exp = build_experiment(resolve({}, "<test>", seed=2))
    return exp, simulated_rig(exp)


class Documents:
    """A subscriber keeping every document; wait_for() blocks until one of a kind arrives."""

    def __init__(self):
        self.docs = []
        self._arrived = threading.Condition()

    def __call__(self, doc):
        with self._arrived:
            self.docs.append(doc)
            self._arrived.notify_all()

    def wait_for(self, kind, state=None):
        def seen():
            return any(isinstance(d, kind) and (state is None or d.state == state) for d in self.docs)

        with self._arrived:
            assert self._arrived.wait_for(seen, WAIT_S), f"no {kind.__name__} {state or ''}: {self.docs}"

    def stop(self):
        return next(d for d in self.docs if isinstance(d, RunStop))


def _outputs_are_quiet(exp, rig) -> bool:
    """Inputs at 0 V and outputs open: no voltage anywhere."""
    return np.allclose(rig.measure(exp.ports.outputs), 0.0, atol=1e-15)


def _drive(exp):
    return Msg("set_inputs", (np.ones(exp.ports.n_inputs),))


def test_a_rig_error_is_thrown_into_the_plan_whose_cleanup_runs_then_the_run_fails_safe(setup):
    exp, rig = setup
    edge = exp.learnable[0]
    before = rig.resistances()[edge]
    docs = Documents()
    engine = RunEngine(rig, [docs])

    def body():
        yield _drive(exp)
        yield Msg("program", (np.array([edge]), np.array([before * 2])))
        yield Msg("program", (np.array([0]), np.array([500.0])))  # Rin0, a source resistor: not tunable

    def restore():
        yield Msg("program", (np.array([edge]), np.array([before])))

    with pytest.raises(RigError, match="not tunable: Rin0"):
        engine.execute(lambda: engine.run_plan(finalize(body(), restore)))
    assert rig.resistances()[edge] == pytest.approx(before)  # the plan's clean-up ran
    assert engine.state == "failed" and docs.stop().status == "failed" and "Rin0" in docs.stop().detail
    assert _outputs_are_quiet(exp, rig)


def test_abort_ends_the_plan_at_its_next_message_after_its_cleanup(setup):
    exp, rig = setup
    edge = exp.learnable[0]
    before = rig.resistances()[edge]
    engine = RunEngine(rig, [Documents()])
    executed = []

    def body():
        yield Msg("program", (np.array([edge]), np.array([before * 3])))
        engine.abort()  # an operator presses abort while the plan runs
        yield _drive(exp)
        executed.append("after abort")
        yield Msg("measure", (exp.ports.outputs,))

    def restore():
        yield Msg("program", (np.array([edge]), np.array([before])))

    with pytest.raises(EngineStopped, match="aborted"):
        engine.execute(lambda: engine.run_plan(finalize(body(), restore)))
    assert executed == [] and engine.counts["set_inputs"] == 0
    assert rig.resistances()[edge] == pytest.approx(before)
    assert engine.state == "aborted"


def test_pause_holds_at_the_next_sample_boundary_with_the_rig_idle_and_resume_continues(setup):
    exp, rig = setup
    docs = Documents()
    engine = RunEngine(rig, [docs])
    measured = []

    def sample():
        yield _drive(exp)
        measured.append((yield Msg("measure", (exp.ports.outputs,))))

    def body():
        engine.run_plan(sample())
        engine.pause()
        engine.run_plan(sample())  # held at its boundary until resume()
        return "finished"

    engine.start(body)
    docs.wait_for(StatusChange, "paused")
    assert engine.state == "paused" and len(measured) == 1
    assert _outputs_are_quiet(exp, rig)  # idle while paused: sources at 0, outputs open
    engine.resume()
    assert engine.join(WAIT_S) == "finished"
    assert len(measured) == 2 and engine.state == "done"
    states = [d.state for d in docs.docs if isinstance(d, StatusChange)]
    assert states == ["running", "paused", "running"]


def test_a_stop_is_a_clean_end_at_the_next_step_boundary(setup):
    exp, rig = setup
    engine = RunEngine(rig)
    engine.stop()
    assert engine.boundary("sample") is False  # samples go on: a stop ends whole steps
    assert engine.boundary("step") is True


def test_emergency_stop_makes_the_rig_safe_at_once_and_skips_the_plans_cleanup(setup):
    exp, rig = setup
    edge = exp.learnable[0]
    before = rig.resistances()[edge]
    docs = Documents()
    engine = RunEngine(rig, [docs])
    cleanup_ran = []

    def body():
        yield Msg("program", (np.array([edge]), np.array([before * 3])))
        yield _drive(exp)
        assert engine.estop() == []  # from the plan's thread here; a GUI calls it from its own
        assert _outputs_are_quiet(exp, rig)
        yield Msg("measure", (exp.ports.outputs,))

    def restore():
        cleanup_ran.append(True)
        yield Msg("program", (np.array([edge]), np.array([before])))

    with pytest.raises(EngineStopped, match="emergency stop"):
        engine.execute(lambda: engine.run_plan(finalize(body(), restore)))
    assert cleanup_ran == [] and engine.counts["measure"] == 0
    assert docs.stop().status == "aborted" and docs.stop().detail == "emergency stop"


class _EstopDuringMeasure:
    """A rig whose measurement is cut short by an emergency stop arriving from another thread,
    as a Bench's is: the E-stop lands, the measurement raises instead of returning a value."""

    def __init__(self, rig):
        self.rig = rig
        self.engine = None

    def __getattr__(self, name):
        return getattr(self.rig, name)

    def measure(self, edges):
        self.engine.estop()
        raise RigError("measure: safe_state() was called meanwhile (an emergency stop?); stopped before the "
                       "next exchange, no value is returned")


def test_a_rig_call_cut_short_by_the_emergency_stop_ends_the_run_aborted_not_failed(setup):
    exp, rig = setup
    docs = Documents()
    cut = _EstopDuringMeasure(rig)
    engine = cut.engine = RunEngine(cut, [docs])

    def body():
        yield _drive(exp)
        yield Msg("measure", (exp.ports.outputs,))

    with pytest.raises(RigError):
        engine.execute(lambda: engine.run_plan(body()))
    assert engine.state == "aborted" and docs.stop().status == "aborted"
    assert docs.stop().detail.startswith("emergency stop") and "safe_state() was called meanwhile" in docs.stop().detail
    assert _outputs_are_quiet(exp, rig)


class _FailingSafeState:
    """A rig whose one instrument cannot be made safe (a frozen SMU), the others can."""

    def __init__(self, rig):
        self.rig = rig

    def __getattr__(self, name):
        return getattr(self.rig, name)

    def safe_state(self):
        self.rig.safe_state()
        return ["smu_in0: no reply within 5 s"]


def test_a_failed_safe_state_marks_the_run_failed_naming_the_instrument(setup):
    exp, rig = setup
    docs = Documents()
    engine = RunEngine(_FailingSafeState(rig), [docs])
    engine.execute(lambda: "trained")
    assert engine.state == "failed"
    assert "smu_in0: no reply within 5 s" in docs.stop().detail
    errors = [d for d in docs.docs if getattr(d, "kind", None) == "safe_state"]
    assert errors and errors[0].level == "error"


def test_documents_reach_the_writer_first_and_a_broken_view_never_ends_the_run(setup):
    exp, rig = setup
    order = []

    def writer(doc):
        order.append(("writer", type(doc).__name__))

    def broken_view(doc):
        raise RuntimeError("a GUI bug")

    def view(doc):
        order.append(("view", type(doc).__name__))

    engine = RunEngine(rig, [writer, broken_view, view])
    engine.execute(lambda: engine.publish(StepRecord(1, 1, {"loss": 1.0})))
    assert engine.state == "done"
    names = [kind for who, kind in order if who == "writer"]
    assert names == ["StatusChange", "StepRecord", "RunStop"]
    assert order == [pair for name in names for pair in (("writer", name), ("view", name))]


def test_a_failing_writer_fails_the_run(setup):
    exp, rig = setup

    def full_disk(doc):
        if isinstance(doc, StepRecord):
            raise OSError(28, "No space left on device")

    engine = RunEngine(rig, [full_disk])
    with pytest.raises(OSError, match="No space left"):
        engine.execute(lambda: engine.publish(StepRecord(1, 1, {"loss": 1.0})))
    assert engine.state == "failed" and _outputs_are_quiet(exp, rig)


# ------------------------------------------------------------------------------ supervision

class _Troubled:
    """A rig (around a simulated one) whose next readings can be refused, and which can report a
    condition that must hold the run (a lost board heartbeat)."""

    def __init__(self, rig):
        self.rig = rig
        self.refusals = 0
        self.holding: list[str] = []
        self.measured = 0

    def __getattr__(self, name):
        return getattr(self.rig, name)

    def measure(self, edges):
        self.measured += 1
        if self.refusals:
            self.refusals -= 1
            raise ReadingRefused("measure: smu_out0 is in compliance", "compliance")
        return self.rig.measure(edges)

    def holds(self):
        return list(self.holding)


def _sample(exp):
    yield _drive(exp)
    return (yield Msg("measure", (exp.ports.outputs,)))


def test_a_refused_reading_is_measured_again_and_never_reaches_the_rule(setup):
    exp, rig = setup
    troubled, docs = _Troubled(rig), Documents()
    troubled.refusals = 2
    engine = RunEngine(troubled, [docs], supervisor=Supervisor(Policy(reading_retries=2)))
    volts = engine.execute(lambda: engine.run_plan(_sample(exp)))
    assert troubled.measured == 3 and np.all(np.isfinite(volts))
    refused = [d for d in docs.docs if getattr(d, "kind", None) == "reading_refused"]
    assert [d.data["attempt"] for d in refused] == [1, 2] and engine.state == "done"


def test_a_reading_refused_more_often_than_allowed_fails_the_run(setup):
    exp, rig = setup
    troubled = _Troubled(rig)
    troubled.refusals = 5
    engine = RunEngine(troubled, [Documents()], supervisor=Supervisor(Policy(reading_retries=1)))
    with pytest.raises(ReadingRefused, match="compliance"):
        engine.execute(lambda: engine.run_plan(_sample(exp)))
    assert engine.state == "failed" and troubled.measured == 2


def test_a_reading_out_of_band_is_refused(setup):
    exp, rig = setup
    engine = RunEngine(rig, [Documents()], supervisor=Supervisor(Policy(reading_band_volts=1e-6)))
    with pytest.raises(ReadingRefused, match="beyond supervision.reading_band_volts"):
        engine.execute(lambda: engine.run_plan(_sample(exp)))


@pytest.mark.parametrize("on_clear, final", [("resume", "done"), ("abort", "aborted")])
def test_a_condition_of_the_rig_suspends_the_run_until_it_clears(setup, on_clear, final):
    exp, rig = setup
    troubled, docs = _Troubled(rig), Documents()
    troubled.holding = ["board: heartbeat lost"]
    engine = RunEngine(troubled, [docs], supervisor=Supervisor(Policy(on_clear=on_clear, poll_s=0.01)))
    engine.start(lambda: engine.run_plan(_sample(exp)))
    docs.wait_for(StatusChange, "paused")
    paused = next(d for d in docs.docs if isinstance(d, StatusChange) and d.state == "paused")
    assert "heartbeat lost" in paused.detail and troubled.measured == 0
    assert _outputs_are_quiet(exp, rig)  # held with the rig idle
    troubled.holding = []
    if final == "done":
        assert engine.join(WAIT_S) is not None
    else:
        with pytest.raises(EngineStopped):
            engine.join(WAIT_S)
    assert engine.state == final and troubled.measured == (1 if final == "done" else 0)


def test_a_suspension_longer_than_allowed_aborts(setup):
    exp, rig = setup
    troubled, docs = _Troubled(rig), Documents()
    troubled.holding = ["smu_out0: no reply"]
    engine = RunEngine(troubled, [docs], supervisor=Supervisor(Policy(max_suspended_s=0.05, poll_s=0.01)))
    with pytest.raises(EngineStopped):
        engine.execute(lambda: engine.run_plan(_sample(exp)))
    assert engine.state == "aborted" and troubled.measured == 0
    assert any("max_suspended_s" in getattr(d, "message", "") for d in docs.docs)


def test_link_faults_are_recorded_as_events_and_too_many_suspend_the_run(setup):
    exp, rig = setup
    clock = [0.0]
    docs = Documents()
    supervisor = Supervisor(Policy(faults_per_minute=2, poll_s=0.01), clock=lambda: clock[0])
    engine = RunEngine(rig, [docs], supervisor=supervisor)

    def body():
        for _ in range(3):  # as a transport would report them while it recovers
            rig.on_fault("timeout", "smu_in0", "no reply within 5 s; resent after a device clear")
        return engine.run_plan(_sample(exp))

    engine.start(body)
    docs.wait_for(StatusChange, "paused")
    faults = [d for d in docs.docs if getattr(d, "kind", None) == "fault"]
    assert len(faults) == 3 and faults[0].data["instrument"] == "smu_in0"
    clock[0] = 61.0  # a quiet minute later
    engine.join(WAIT_S)
    assert engine.state == "done"
