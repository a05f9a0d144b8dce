"""Every way a bench run can end early, run in this process against the virtual bench, with the
time from the trigger until every emulated instrument is in its safe state, as the emulators see
it (a watcher samples ``vb.is_safe()``, as an oscilloscope on the terminals would).

Shared by tests/reliability/test_exit_paths.py (which checks each ending) and
benchmarks/bench_safe_state.py (which repeats them and reports the times).

    outcome = run_exit_path("ctrl-c", tmp_path)
    outcome.status, outcome.seconds_to_safe, outcome.safe_at_end

The run is what ``hwlearn run`` runs (hwlearn.app.sessions.bench_substrate in a TrainingSession,
in the main thread, so Ctrl-C and SIGTERM are real signals delivered to this process and steer
the engine through hwlearn.signals), on the example bench through the real drivers: pyvisa-py
sockets to the SCPI emulators, pyserial to the board's pseudo-terminal. The trigger comes in the
middle of the third step (MidStep); signals and the E-stop come from a thread of their own, as
from another terminal or a GUI's button.

Exit paths (ExitPath.status: the run's final status):

- exception          an error raised by the rig inside the run (a RigError from measure):
                     the plan's clean-up runs, the bench goes safe, the run is 'failed';
- ctrl-c             one SIGINT: a clean stop at the end of the step, 'stopped';
- ctrl-c-twice       a second SIGINT once the first is recorded: an abort, 'aborted';
- sigterm            one SIGTERM (a service manager, ``kill``): as one Ctrl-C, 'stopped';
- estop              engine.estop() from another thread, as the GUI's E-stop button calls it:
                     the rig safe at once, 'aborted';
- lost-link          the voltmeter's link drops mid-step (its server stops: a pulled cable)
                     and stays down: the bench tries once to open it again, fails, and the
                     run ends 'failed' naming it; every other instrument goes safe;
- failing-instrument one instrument stops answering mid-run (its link stays up: hung
                     firmware): its calls time out, the run ends 'failed' naming it, and every
                     other instrument goes safe. Its own reply timeout is short here
                     (FAILING_TIMEOUT_S) so that the case takes seconds; the time to safe of this
                     path is dominated by that timeout (``detected_s`` says how much).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from drivers.bench import Bench
from hwlearn.app.sessions import bench_substrate
from hwlearn.config import load_experiment
from hwlearn.documents import RunEvent, StatusChange, StepRecord
from hwlearn.experiment import build_experiment
from hwlearn.rig import RigError
from hwlearn.runstore import RunReader
from hwlearn.training.session import TrainingSession
from simulator.emulators import TcpLineServer
from simulator.virtual_bench import VirtualBench
from tests.bench_helpers import example_config, freeze
from tests.cli_helpers import ROOT


@dataclass(frozen=True)
class ExitPath:
    name: str
    status: str          # the run's final status
    signals: bool        # the run is steered by Ctrl-C and SIGTERM (hwlearn.signals)


PATHS = {p.name: p for p in (
    ExitPath("exception", "failed", True),
    ExitPath("ctrl-c", "stopped", True),
    ExitPath("ctrl-c-twice", "aborted", True),
    ExitPath("sigterm", "stopped", True),
    ExitPath("estop", "aborted", False),
    ExitPath("failing-instrument", "failed", True),
    ExitPath("lost-link", "failed", True),
)}

TRIGGER_STEP = 2            # the trigger comes once this many steps are recorded...
MEASURES_INTO_STEP = 5      # ...at this measurement of the next step (its third sample)
FAILING = "smu_out1"        # the instrument that stops answering (a 2450 on an output edge)
FAILING_TIMEOUT_S = 0.5     # its reply timeout (the example's default is 5 s)
LOST = "dmm"                # the instrument whose link drops and stays down
WATCH_PERIOD_S = 0.002      # how often the watcher samples the emulators' states
STOPPING_WAIT_S = 60.0      # longest wait for the first Ctrl-C's stop request to be recorded


@dataclass
class ExitOutcome:
    """How one run ended. ``seconds_to_safe``: from the trigger until every emulated instrument
    (the failing one excepted) was safe and stayed so until the run was over; None if that never
    happened. ``detected_s``: for a failing instrument or a lost link, from the trigger until the
    run recorded the instrument's first fault."""

    path: str
    status: str
    detail: str
    seconds_to_safe: float | None
    safe_at_end: dict[str, bool]
    failures: list[str]
    watched: list[str]
    steps: list[int] = field(default_factory=list)
    detected_s: float | None = None
    error: BaseException | None = None


class SafeWatch:
    """Samples the emulators' states in a thread of its own and remembers when the watched
    instruments last became safe all together."""

    def __init__(self, vb: VirtualBench, ignore: tuple[str, ...] = ()):
        self.vb = vb
        self.names = [name for name in vb.emulators if name not in ignore]
        self.safe_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="safe-watch", daemon=True)

    def _safe(self) -> bool:
        return all(self.vb.emulators[name].is_safe() for name in self.names)

    def _watch(self) -> None:
        while True:
            now = time.monotonic()
            if self._safe():
                if self.safe_since is None:
                    self.safe_since = now
            else:
                self.safe_since = None
            if self._stop.wait(WATCH_PERIOD_S):
                break

    def __enter__(self) -> SafeWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        # One last look: the state at the end decides, whatever the sampling missed.
        if not self._safe():
            self.safe_since = None


class MidStep:
    """A view of a run that calls ``action()`` in the run's thread, just before the
    MEASURES_INTO_STEP-th measurement once TRIGGER_STEP steps are recorded: in the middle of a
    step, with some of its readings taken (a trigger at a step's end would make a clean stop
    look instant, and leave a second Ctrl-C no step to interrupt). ``steps``: the steps recorded."""

    def __init__(self, bench: Bench, action):
        self.steps: list[int] = []
        self.pulled = False
        measures = 0
        measure = bench.measure

        def measure_after_the_trigger(edges):
            nonlocal measures
            if len(self.steps) >= TRIGGER_STEP and not self.pulled:
                measures += 1
                if measures == MEASURES_INTO_STEP:
                    self.pulled = True
                    action()
            return measure(edges)
        bench.measure = measure_after_the_trigger

    def __call__(self, doc) -> None:
        if isinstance(doc, StepRecord):
            self.steps.append(doc.step)


class _Trigger:
    """Pulls the trigger of ``path`` mid-step (MidStep); also a view of the run that sees the stop
    request and the lost or failing instrument's first fault."""

    def __init__(self, path: ExitPath, vb: VirtualBench, bench: Bench):
        self.path = path
        self.vb = vb
        self.session: TrainingSession | None = None
        self.at: float | None = None          # the trigger's moment (time.monotonic())
        self.detected: float | None = None    # the failing instrument's first fault recorded
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.mid_step = MidStep(bench, self._fire)

    @property
    def steps(self) -> list[int]:
        return self.mid_step.steps

    def _fire(self) -> None:
        if self.path.name == "exception":
            self.at = time.monotonic()
            raise RigError("measure: an error inside the run (raised by the exit-path test)")
        if self.path.name == "lost-link":
            self.at = time.monotonic()
            drop_link(self.vb, LOST)  # before the measurement that needs it
            return
        self._thread = threading.Thread(target=self._pull, name="exit-trigger", daemon=True)
        self._thread.start()

    def __call__(self, doc) -> None:
        self.mid_step(doc)
        if isinstance(doc, StatusChange) and doc.state == "stopping":
            self._stopping.set()
        elif (isinstance(doc, RunEvent) and doc.kind == "fault" and self.detected is None
              and (doc.data or {}).get("instrument") in (FAILING, LOST)):
            self.detected = time.monotonic()

    def _pull(self) -> None:
        name = self.path.name
        if name in ("ctrl-c", "sigterm"):
            self.at = time.monotonic()
            os.kill(os.getpid(), signal.SIGINT if name == "ctrl-c" else signal.SIGTERM)
        elif name == "ctrl-c-twice":
            os.kill(os.getpid(), signal.SIGINT)
            # Two signals sent before the first is handled would arrive as one: the second goes
            # once the run has recorded the first (its stop request).
            if self._stopping.wait(STOPPING_WAIT_S):  # else the run ended: its status tells
                self.at = time.monotonic()
                os.kill(os.getpid(), signal.SIGINT)
        elif name == "estop":
            self.at = time.monotonic()
            self.session.engine.estop()
        elif name == "failing-instrument":
            self.at = time.monotonic()
            freeze(self.vb.emulators[FAILING])

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


def drop_link(vb: VirtualBench, name: str) -> int:
    """The link to ``name`` drops (its server stops and closes its connection: a pulled cable);
    returns the port, for restore_link."""
    server = vb.servers.pop(name)
    port = server.port
    server.stop()
    return port


def restore_link(vb: VirtualBench, name: str, port: int) -> None:
    """The cable is plugged back: ``name`` served again on ``port``, its state as it was."""
    vb.servers[name] = TcpLineServer(vb.emulators[name], port).start()


def experiment_config(epochs: int = 30, batch_size: int = 20) -> dict:
    """The example bench's teacher task measured sample by sample (a step has sample boundaries
    for a second Ctrl-C to land on), long enough that every trigger comes mid-run."""
    config = load_experiment(ROOT / "examples" / "bench-teacher-omega.toml")
    config["plan"] = "per-sample"
    config["training"].update(epochs=epochs, batch_size=batch_size)
    return config


def run_exit_path(name: str, folder: Path, *, failing_timeout_s: float = FAILING_TIMEOUT_S) -> ExitOutcome:
    """One bench run in ``folder`` ended by exit path ``name`` (PATHS)."""
    path = PATHS[name]
    failing = name == "failing-instrument"
    lost = name == "lost-link"
    bench_config = example_config(**({FAILING: {"timeout_s": failing_timeout_s}} if failing else {}))
    experiment = build_experiment(experiment_config(), network=bench_config.network)
    run_dir = Path(folder) / name
    error = None
    with VirtualBench(bench_config, twin=True) as vb:
        with Bench.open(vb.bench_config()) as bench:
            trigger = _Trigger(path, vb, bench)
            session = TrainingSession(experiment, bench_substrate(bench, experiment), run_dir, views=(trigger,))
            trigger.session = session
            ignore = (FAILING,) if failing else (LOST,) if lost else ()
            with SafeWatch(vb, ignore=ignore) as watch:
                try:
                    session.run(signals=path.signals)
                except BaseException as exc:  # the ending under test; recorded by the run
                    error = exc
                trigger.join()
            failures = list(session.engine.safe_state_failures)
            safe = vb.is_safe()
    with RunReader(run_dir) as reader:
        final = reader.status()
        steps = [int(s) for s in reader.steps().step]
    seconds = None
    if watch.safe_since is not None and trigger.at is not None:
        seconds = watch.safe_since - trigger.at
    detected = trigger.detected - trigger.at if (failing or lost) and trigger.detected and trigger.at else None
    return ExitOutcome(name, final.status, final.detail, seconds, safe, failures, watch.names, steps,
                       detected, error)
