"""Shared pieces of the reproduction: study sizes, rule settings, trainings on an executor."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from hwlearn.app.executors import make_executor
from hwlearn.app.launch import simulated_substrate
from hwlearn.config import resolve
from hwlearn.documents import StepRecord
from hwlearn.engine import RunEngine
from hwlearn.errors import HwlearnError
from hwlearn.experiment import build_experiment
from hwlearn.rules import RULES
from hwlearn.training.session import settings_from
from hwlearn.training.trainer import Trainer

# The rules compared, each at its registered defaults, with the learning rate of its example
# config. Rules estimating in A^2 (two-phase, Coupled Learning) estimate the gradient scaled by
# the output conductance (1/1000 ohm here), hence 1000x the step (docs/iris.md, docs/theory.md).
LEARNING_RATES = {"W": 30.0, "A^2": 3e4}
COMPARED = ("omega", "ep", "ep_symmetric", "coupled")
LABELS = {name: RULES[name].label for name in COMPARED}


@dataclass(frozen=True)
class Profile:
    """How much to compute: --quick for a smoke check, the full profile for the figures."""

    name: str
    seeds: int
    epochs: int
    bias_draws: int
    betas: tuple[float, ...]
    sigmas: tuple[float, ...]
    train_sigmas: tuple[float, ...]
    frozen: tuple[float, ...]


QUICK = Profile("quick", seeds=3, epochs=40, bias_draws=3000, betas=(0.01, 0.03, 0.1, 0.3),
                sigmas=(0.0, 0.05, 0.1), train_sigmas=(0.0, 0.1), frozen=(0.0, 0.3, 0.6, 0.9))
FULL = Profile("full", seeds=10, epochs=100, bias_draws=40000, betas=(0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
               sigmas=(0.0, 0.02, 0.05, 0.1), train_sigmas=(0.0, 0.02, 0.05, 0.1),
               frozen=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9))


class History:
    """A run subscriber keeping the per-epoch metrics in memory."""

    def __init__(self):
        self.epochs: list[dict] = []

    def __call__(self, doc) -> None:
        if isinstance(doc, StepRecord) and "train_loss" in doc.scalars:
            self.epochs.append(dict(doc.scalars, epoch=doc.epoch))

    def series(self, key: str) -> np.ndarray:
        return np.array([row[key] for row in self.epochs])


def experiment_doc(rule_name: str, epochs: int, **sections) -> dict:
    """An experiment document for a rule at its defaults with its learning rate; ``sections``
    update tables."""
    lr = LEARNING_RATES[RULES[rule_name].units]
    doc = {"name": f"reproduce-{rule_name}", "rule": {"name": rule_name},
           "training": {"learning_rate": lr, "epochs": epochs}}
    for key, value in sections.items():
        doc.setdefault(key, {}).update(value)
    return doc


def train(doc: dict, seed: int, stop: threading.Event | None = None):
    """Train one configuration in memory (no run folder: for these short runs the folder's writes
    would cost more than the training); returns (History, experiment)."""
    config = resolve(doc, "<reproduce>", seed=seed)
    experiment = build_experiment(config)
    history = History()
    trainer = Trainer(simulated_substrate(experiment), experiment.task, experiment.rule, settings_from(config),
                      experiment.rngs, engine=RunEngine(None, [history], stop_event=stop))
    if trainer.run().status != "done":
        raise HwlearnError(f"reproduction run {doc['name']} seed {seed} was stopped before its end")
    return history, experiment


def curves_of(doc: dict, seed: int, *, stop: threading.Event) -> dict:
    """Per-epoch curves (train_loss, test_loss, test_accuracy, from epoch 0) and the linear
    ceiling's test accuracy of one training; runs on a worker of the executor."""
    history, experiment = train(doc, seed, stop)
    curves = {key: history.series(key) for key in ("train_loss", "test_loss", "test_accuracy")
              if key in history.epochs[0]}
    curves["ceiling"] = experiment.task.linear_ceiling().get("test_accuracy")
    return curves


class TrainingPool:
    """The reproduction's independent trainings on an executor (hwlearn.app.executors): a local
    pool of worker processes, one per core, or a Dask cluster; started once for the whole
    reproduction (starting a Python with numpy and scipy costs about a second)."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None):
        self.executor = make_executor(workers, scheduler)

    def curves(self, jobs: list[tuple[dict, int]]) -> list[dict]:
        """Per-epoch curves and the ceiling per (doc, seed), in the order of ``jobs``."""
        futures = [self.executor.submit(curves_of, doc, seed) for doc, seed in jobs]
        return [future.result() for future in futures]

    def __enter__(self) -> TrainingPool:
        return self

    def __exit__(self, *exc) -> None:
        self.executor.close()


def mean_spread(values) -> dict:
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "n": int(values.size)}


def plain(value):
    """JSON-ready copy: arrays become lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
