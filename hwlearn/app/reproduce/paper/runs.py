"""One training of the paper study on a worker, and the statistics over seeds.

``trajectory`` is what an executor's worker runs (hwlearn.app.executors): a training in memory,
returning per-epoch curves, the cosine of each step's estimate with the exact gradient (on the
steps that record arrays), and where the output resistances went. The statistics are the ones
docs/reproduction.md reports: mean and standard error over seeds, paired differences between
rules (same seed: same teacher, initial resistances, shuffles and noise), divergence rates with
Wilson intervals.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from scipy.stats import t as student_t

from hwlearn.app.launch import simulated_substrate
from hwlearn.config import resolve
from hwlearn.documents import StepRecord
from hwlearn.engine import RunEngine
from hwlearn.errors import HwlearnError
from hwlearn.experiment import build_experiment
from hwlearn.training.session import settings_from
from hwlearn.training.trainer import Trainer


class _Recorder:
    """Keeps the epoch metrics and every recorded cosine with its epoch."""

    def __init__(self):
        self.epochs: list[dict] = []
        self.cosines: list[tuple[int, float]] = []

    def __call__(self, doc) -> None:
        if not isinstance(doc, StepRecord):
            return
        if "train_loss" in doc.scalars:
            self.epochs.append(dict(doc.scalars))
        if "cosine_exact" in doc.scalars:
            self.cosines.append((doc.epoch, doc.scalars["cosine_exact"]))


def trajectory(doc: dict, seed: int, *, stop: threading.Event | None = None) -> dict:
    """Train ``doc`` with ``seed``; per-epoch train_loss, test_loss (and test_accuracy), the mean
    cosine of each epoch (NaN where none was recorded), the initial and final output resistances,
    the share of updated edges at a resistance bound, and the task's linear ceiling."""
    config = resolve(doc, "<reproduce paper>", seed=seed)
    experiment = build_experiment(config)
    substrate = simulated_substrate(experiment)
    recorder = _Recorder()
    trainer = Trainer(substrate, experiment.task, experiment.rule, settings_from(config), experiment.rngs,
                      engine=RunEngine(None, [recorder], stop_event=stop))
    # The largest tuning rates overflow r exp(-lr r g) on their way to the resistance bounds, where
    # the step is clipped (hwlearn.training.updates): expected there, not worth a warning per step.
    with np.errstate(over="ignore"):
        status = trainer.run().status
    if status != "done":
        raise HwlearnError(f"reproduction run {doc['name']} seed {seed} was stopped before its end")
    epochs = config["training"]["epochs"]
    result = {key: np.array([row[key] for row in recorder.epochs])
              for key in ("train_loss", "test_loss", "test_accuracy") if key in recorder.epochs[0]}
    cosine = np.full(epochs, np.nan)
    for epoch in range(1, epochs + 1):
        values = [c for e, c in recorder.cosines if e == epoch and np.isfinite(c)]
        if values:
            cosine[epoch - 1] = float(np.mean(values))
    outputs = experiment.ports.outputs
    final = substrate.resistances()
    learned = final[substrate.learnable]
    device = config["device"]
    result.update(cosine=cosine, output_ohms_initial=experiment.initial_ohms[outputs], output_ohms_final=final[outputs],
                  at_bounds=float(np.mean((learned <= device["r_min"] * 1.001) | (learned >= device["r_max"] / 1.001))),
                  ceiling=experiment.task.linear_ceiling())
    return result


# ---------------------------------------------------------------------------------- statistics
def jitter(train_loss: np.ndarray) -> float:
    """Mean relative rise of the train loss between consecutive epochs over the second half of
    training (0 for a monotone descent), as in the crossbar study."""
    tail = np.asarray(train_loss)[len(train_loss) // 2:]
    return float(np.mean(np.maximum(np.diff(tail), 0.0) / tail[:-1]))


def diverged(train_loss: np.ndarray) -> bool:
    """CHOICE (docs/reproduction.md): a run diverges when it ends with a higher train loss than
    it started with: its updates made the network worse."""
    return bool(train_loss[-1] > train_loss[0]) or not bool(np.isfinite(train_loss[-1]))


def summary(values) -> dict:
    """Mean, standard deviation, standard error and count (non-finite values dropped)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = int(values.size)
    std = float(values.std(ddof=1)) if n > 1 else 0.0
    return {"mean": float(values.mean()) if n else float("nan"), "std": std,
            "sem": std / math.sqrt(n) if n else float("nan"), "n": n}


def paired(a, b) -> dict:
    """a - b over the same seeds: mean, standard error and a 95 % interval (t quantile)."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    stats = summary(diff)
    half = _t95(stats["n"] - 1) * stats["sem"] if stats["n"] > 1 else float("nan")
    return {**stats, "low": stats["mean"] - half, "high": stats["mean"] + half}


def rate(flags) -> dict:
    """Share of True with its 95 % Wilson interval."""
    flags = np.asarray(flags, dtype=bool)
    n, k = int(flags.size), int(flags.sum())
    if n == 0:
        return {"rate": float("nan"), "low": float("nan"), "high": float("nan"), "count": 0, "n": 0}
    z = 1.959964
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"rate": p, "low": max(0.0, centre - half), "high": min(1.0, centre + half), "count": k, "n": n}


def _t95(dof: int) -> float:
    """Two-sided 95 % quantile of Student's t."""
    return float(student_t.ppf(0.975, dof))
