"""Training inside a run folder: signals, status, ceiling, resume.

Ctrl-C or SIGTERM asks the trainer to stop at the next step boundary; it checkpoints there and
the run is closed as 'stopped', readable and resumable. A second Ctrl-C interrupts at once (the
run is still closed as 'stopped' and resumes from its last checkpoint). Any exception closes the
run as 'failed' with the message.
"""

from __future__ import annotations

import threading
from pathlib import Path

from hwlearn.engine import EngineStopped
from hwlearn.experiment import Experiment
from hwlearn.runstore import RunWriter
from hwlearn.signals import stop_on_signals
from hwlearn.training.trainer import Result, Settings, Trainer


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


def train_in_folder(experiment: Experiment, substrate, run_dir: Path, *, resume: bool = False,
                    progress=None, metadata: dict | None = None, stop: threading.Event | None = None,
                    synchronous: str = "NORMAL") -> tuple[Result, Path]:
    """Train ``substrate`` on ``experiment`` recording into ``run_dir``; returns the result.

    synchronous: SQLite's durability; NORMAL survives a killed process (what a simulated run
    needs), FULL also a power cut (benches). Checkpoints are always fully durable.
    """
    stop = stop or threading.Event()
    trainer = Trainer(substrate, experiment.task, experiment.rule, settings_from(experiment.config),
                      experiment.rngs, progress=progress, stop=stop)
    if resume:
        writer = RunWriter.resume(run_dir, synchronous=synchronous)
    else:
        meta = {"seeds": experiment.config["seeds"], "substrate": substrate.description,
                "network": repr(experiment.network), **(metadata or {})}
        writer = RunWriter.create(run_dir, experiment.config, meta, synchronous=synchronous)
        writer.set_summary(**ceiling_summary(experiment))
    trainer.recorder = writer
    with writer, stop_on_signals(stop):
        checkpoint = writer.resumed_from
        # Inside the block: a bench that cannot return to the checkpoint fails the run cleanly.
        position = trainer.restore(checkpoint.arrays, checkpoint.state) if checkpoint is not None else None
        try:
            result = trainer.run(resume=position)
        except EngineStopped as exc:  # abort or emergency stop from the engine's verbs
            writer.close("aborted", str(exc))
            raise
        writer.close(result.status, "stop requested" if result.status == "stopped" else "")
    if progress is not None:
        progress.finish()
    return result, Path(run_dir)
