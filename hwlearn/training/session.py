"""A training run recorded in a run folder: the writer, the engine, the trainer, the signals.

    session = TrainingSession(experiment, substrate, run_dir, views=[ProgressBar()])
    result = session.run()            # in this thread; Ctrl-C/SIGTERM steer the engine
    # or: session.start() in a worker thread (a GUI), then session.engine.pause() ...

The run folder is created (or reopened for a resume) when the run starts, not before, so a run
prepared and never started leaves nothing behind. The run-store writer is the engine's first
subscriber; views (a progress line, a GUI) follow it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from hwlearn.documents import RunStart, Subscriber
from hwlearn.engine import RunEngine
from hwlearn.experiment import Experiment
from hwlearn.runstore import RunWriter
from hwlearn.signals import control_by_signals
from hwlearn.supervision import Policy, Supervisor
from hwlearn.training.recorder import RunStoreRecorder
from hwlearn.training.trainer import Result, Settings, Trainer

log = logging.getLogger(__name__)


def settings_from(config: dict) -> Settings:
    t, r = config["training"], config["record"]
    return Settings(t["learning_rate"], t["batch_size"], t["epochs"], t["update"], r["array_every"],
                    r["checkpoint_every"])


def ceiling_summary(experiment: Experiment) -> dict:
    """The linear least-squares ceiling on the same split and targets; ``linear_ceiling_accuracy``
    is its test accuracy (classification tasks)."""
    ceiling = experiment.task.linear_ceiling()
    summary = {f"linear_ceiling_{key}": value for key, value in ceiling.items()}
    if "test_accuracy" in ceiling:
        summary["linear_ceiling_accuracy"] = ceiling["test_accuracy"]
    return summary


class TrainingSession:
    """One run of ``experiment`` on ``substrate`` (the simulated fast path or a RigSubstrate),
    recorded in ``run_dir``.

    resume: continue the run in ``run_dir`` from its latest checkpoint (from the start when it
    has none). metadata: facts for metadata.json (bench name, instrument identities).
    synchronous: SQLite's durability; NORMAL survives a killed process (a simulation), FULL
    also a power cut (benches). Checkpoints are always fully durable. stop: an event that asks
    for a clean stop when set (besides the engine's verbs)."""

    def __init__(self, experiment: Experiment, substrate, run_dir: str | Path, *, resume: bool = False,
                 metadata: dict | None = None, synchronous: str = "NORMAL", views: tuple[Subscriber, ...] = (),
                 stop: threading.Event | None = None):
        self.experiment = experiment
        self.substrate = substrate
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.metadata = metadata or {}
        self.synchronous = synchronous
        policy = Policy.from_config(experiment.config.get("supervision"))
        self.engine = RunEngine(substrate.rig, stop_event=stop, supervisor=Supervisor(policy))
        self._views = list(views)
        self.trainer = Trainer(substrate, experiment.task, experiment.rule, settings_from(experiment.config),
                               experiment.rngs, engine=self.engine)
        self.writer: RunWriter | None = None

    def add_view(self, view: Subscriber) -> None:
        self._views.append(view)

    # ---------------------------------------------------------------- running
    def run(self, *, signals: bool = True) -> Result:
        """Train in this thread to the end, a stop or an error; returns the trainer's Result.
        With ``signals``, Ctrl-C and SIGTERM steer the engine (hwlearn.signals)."""
        self._open()
        steer = control_by_signals(self.engine) if signals else contextlib.nullcontext()
        try:
            with steer:
                return self.engine.execute(self._body, self._start_document())
        finally:
            self._close_writer()

    def start(self, after: Callable[[], None] | None = None):
        """Train in a worker thread (a GUI calls the engine's verbs meanwhile); returns the
        thread. ``after()`` runs in that thread once the run is recorded and its folder closed
        (an application closes its bench there). ``engine.join()`` waits for the Result."""
        self._open()

        def finish():
            try:
                self._close_writer()
            finally:
                if after is not None:
                    after()
        return self.engine.start(self._body, self._start_document(), after=finish)

    # ---------------------------------------------------------------- internals
    def _open(self) -> None:
        if self.writer is not None:
            raise RuntimeError("a TrainingSession runs once")
        experiment = self.experiment
        if self.resume:
            writer = RunWriter.resume(self.run_dir, synchronous=self.synchronous)
        else:
            meta = {"seeds": experiment.config["seeds"], "substrate": self.substrate.description,
                    "network": repr(experiment.network), **self.metadata}
            writer = RunWriter.create(self.run_dir, experiment.config, meta, synchronous=self.synchronous)
            writer.set_summary(**ceiling_summary(experiment))
        self.writer = writer
        self.engine._subscribers[:0] = [RunStoreRecorder(writer)]
        for view in self._views:
            self.engine.subscribe(view)

    def _body(self) -> Result:
        # Inside the run: a bench that cannot return to the checkpoint fails the run cleanly.
        checkpoint = self.writer.resumed_from
        position = self.trainer.restore(checkpoint.arrays, checkpoint.state) if checkpoint is not None else None
        return self.trainer.run(resume=position)

    def _start_document(self) -> RunStart:
        rig = self.substrate.rig
        described = rig.describe() if rig is not None else {"kind": "simulated",
                                                            "description": self.substrate.description}
        checkpoint = self.writer.resumed_from
        return RunStart(self.experiment.config, described, self.trainer.plan_summary(),
                        None if checkpoint is None else checkpoint.step)

    def _close_writer(self) -> None:
        """A writer still open here lost its RunStop (the disk failed while recording the end):
        close it as failed so the folder does not look alive."""
        writer = self.writer
        if writer is not None and not writer.closed:
            try:
                writer.close("failed", "the end of the run could not be recorded")
            except Exception:
                log.exception("%s: closing the run", self.run_dir)


def train_in_folder(experiment: Experiment, substrate, run_dir: str | Path, *, resume: bool = False,
                    progress=None, metadata: dict | None = None, synchronous: str = "NORMAL",
                    views: tuple[Subscriber, ...] = (), stop: threading.Event | None = None) -> tuple[Result, Path]:
    """Train in this thread, recording into ``run_dir``; returns (result, run_dir). Raises the
    error that ended the run (after recording it), EngineStopped for an abort."""
    session = TrainingSession(experiment, substrate, run_dir, resume=resume, metadata=metadata,
                              synchronous=synchronous, views=(*(() if progress is None else (progress,)), *views),
                              stop=stop)
    return session.run(), session.run_dir
