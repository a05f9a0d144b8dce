"""One simulated training in a run folder: what `hwlearn train` does, and every sweep point and
reproduction run too (through the executors in hwlearn.app.executors).

This is the one place the application layer starts a simulated training, so that a change of the
run engine underneath changes it for every caller at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hwlearn.app.launch import simulated_substrate
from hwlearn.app.sessions import describe
from hwlearn.experiment import build_experiment
from hwlearn.training.session import train_in_folder
from hwlearn.training.trainer import Result


@dataclass(frozen=True)
class RunOutcome:
    """How a training ended. ``status``: 'done' or 'stopped' (a stop request; the run folder is
    then resumable). ``metrics``: the last evaluation (train/test loss, accuracy where the task
    has classes). ``elapsed_seconds``: training time in this call (not of earlier sessions)."""

    status: str
    run_dir: Path
    metrics: dict = field(default_factory=dict)
    elapsed_seconds: float = 0.0
    epochs: int = 0
    steps: int = 0

    @classmethod
    def of(cls, result: Result, run_dir: Path) -> RunOutcome:
        """The outcome of a Trainer's Result recorded in ``run_dir``."""
        return cls(result.status, Path(run_dir), dict(result.metrics), result.elapsed_seconds,
                   result.position.epoch, result.position.step)


def train_simulated(config: dict, run_dir: Path, *, resume: bool = False, stop: threading.Event | None = None,
                    progress=None, backend: str = "auto", source: str | None = None,
                    announce: Callable[[str], None] | None = None) -> RunOutcome:
    """Train the resolved experiment ``config`` on the built-in simulated rig, recording into
    ``run_dir`` (a new folder, or with ``resume`` a stopped, crashed or failed run of this config).

    ``stop``: set it to stop at the next step (checkpointed; the run closes as 'stopped'). In the
    main thread, Ctrl-C and SIGTERM set it too. ``progress``: a ProgressBar. ``announce``: called
    with describe()'s text once the experiment is built, before training starts.
    """
    experiment = build_experiment(config, source or str(run_dir))
    substrate = simulated_substrate(experiment, backend=backend)
    if announce is not None:
        announce(describe(experiment, substrate.description))
    result, run_dir = train_in_folder(experiment, substrate, Path(run_dir), resume=resume, progress=progress,
                                      stop=stop)
    return RunOutcome.of(result, run_dir)
