"""The training loop: mini-batches, updates, evaluation, recording, checkpoints, clean stops.

Determinism: every random draw comes from a named generator (shuffle, noise, device) whose state
is checkpointed with the substrate, the epoch's sample order and the position in it, so a run
resumed from any checkpoint retraces the uninterrupted run exactly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from hwlearn.rules import mse_loss
from hwlearn.tasks import Task
from hwlearn.training.updates import descend


@dataclass(frozen=True)
class Settings:
    learning_rate: float
    batch_size: int
    epochs: int
    update: str = "log_resistance"
    array_every: int = 10
    checkpoint_every: int = 20


@dataclass
class Position:
    """Where training stands: completed epochs and steps, and the place in the current epoch."""

    epoch: int = 0
    step: int = 0
    offset: int = 0
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class Result:
    status: str  # 'done' or 'stopped'
    position: Position
    metrics: dict
    elapsed_seconds: float


class NullRecorder:
    """Records nothing: for training without a run folder (tests, studies)."""

    def record_step(self, step, epoch, scalars, arrays=None):
        pass

    def event(self, kind, message, **kw):
        pass

    def checkpoint(self, step, epoch, arrays, state):
        pass

    def set_summary(self, **values):
        pass


class Trainer:
    RNG_NAMES = ("shuffle", "noise", "device")

    def __init__(self, substrate, task: Task, rule, settings: Settings, rngs: dict[str, np.random.Generator],
                 recorder=None, progress=None, stop: threading.Event | None = None):
        missing = set(self.RNG_NAMES) - set(rngs)
        if missing:
            raise ValueError(f"trainer needs random generators {sorted(missing)}")
        self.substrate = substrate
        self.task = task
        self.rule = rule
        self.settings = settings
        self.rngs = rngs
        self.recorder = recorder or NullRecorder()
        self.progress = progress
        self.stop = stop or threading.Event()

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict:
        """Loss on clean targets and accuracy, on the train and test sets."""
        metrics = {}
        for split, data in (("train", self.task.train), ("test", self.task.test)):
            outputs = self.substrate.outputs(data.x)
            metrics[f"{split}_loss"] = mse_loss(outputs, data.y)
            accuracy = self.task.accuracy(outputs, data)
            if accuracy is not None:
                metrics[f"{split}_accuracy"] = accuracy
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, pos: Position) -> None:
        arrays = {**self.substrate.state(), "order": pos.order}
        state = {"epoch": pos.epoch, "step": pos.step, "offset": pos.offset,
                 "rng": {name: self.rngs[name].bit_generator.state for name in self.RNG_NAMES}}
        self.recorder.checkpoint(pos.step, pos.epoch, arrays, state)

    def restore(self, arrays: dict, state: dict) -> Position:
        """Put substrate and generators back to a checkpoint; returns the position to go on from."""
        self.substrate.restore({k: v for k, v in arrays.items() if k != "order"})
        for name in self.RNG_NAMES:
            self.rngs[name].bit_generator.state = state["rng"][name]
        return Position(state["epoch"], state["step"], state["offset"], np.asarray(arrays["order"], dtype=np.int64))

    # ------------------------------------------------------------------ the loop
    def _step(self, pos: Position) -> tuple[dict, dict]:
        s, data = self.settings, self.task.train
        batch = pos.order[pos.offset: pos.offset + s.batch_size]
        x = data.x[:, batch]
        y = self.task.draw_targets(data.y[:, batch], self.rngs["noise"])
        record_arrays = (pos.step + 1) % s.array_every == 0
        arrays = {}
        if record_arrays:  # before the update, so the voltages belong to these resistances
            for name, volts in self.substrate.phase_voltages(self.rule, x[:, :1], y[:, :1]).items():
                arrays[f"v_{name}"] = volts
        gradient, y_hat = self.substrate.gradient(self.rule, x, y)
        before = self.substrate.resistances()[self.substrate.learnable]
        target = descend(before, gradient, s.learning_rate, s.update)
        after = self.substrate.program(target)
        pos.step += 1
        pos.offset += batch.size
        scalars = {"batch_loss": mse_loss(y_hat, y),
                   "relative_update": float(np.linalg.norm(after - before) / np.linalg.norm(before))}
        if record_arrays:
            arrays["resistances"] = self.substrate.resistances()
            arrays["update"] = after - before
            arrays["gradient"] = gradient
        return scalars, arrays

    def _stopped(self, pos: Position, metrics: dict, started: float) -> Result:
        self._checkpoint(pos)
        self.recorder.event("stop", f"stopped at step {pos.step}, epoch {pos.epoch}", step=pos.step)
        return Result("stopped", pos, metrics, time.monotonic() - started)

    def run(self, resume: Position | None = None) -> Result:
        s = self.settings
        n = len(self.task.train)
        started = time.monotonic()
        if resume is None:
            pos = Position()
            metrics = self.evaluate()
            self.recorder.record_step(0, 0, metrics, {"resistances": self.substrate.resistances()})
            self._checkpoint(pos)
        else:
            pos = resume
            metrics = {}
        steps_total = s.epochs * -(-n // s.batch_size)
        while pos.epoch < s.epochs:
            if pos.offset == 0:
                # A stop is taken before the epoch's order is drawn or after a step, never between:
                # a checkpoint at offset 0 must hold the generator before the shuffle, which the
                # resume then draws exactly once.
                if self.stop.is_set():
                    return self._stopped(pos, metrics, started)
                pos.order = self.rngs["shuffle"].permutation(n)
            while pos.offset < n:
                if self.stop.is_set() and pos.offset > 0:
                    return self._stopped(pos, metrics, started)
                scalars, arrays = self._step(pos)
                end_of_epoch = pos.offset >= n
                if end_of_epoch:
                    metrics = self.evaluate()
                    scalars.update(metrics)
                self.recorder.record_step(pos.step, pos.epoch + 1, scalars, arrays or None)
                if end_of_epoch:
                    pos.epoch += 1
                    pos.offset = 0
                if end_of_epoch or pos.step % s.checkpoint_every == 0:
                    self._checkpoint(pos)
                if self.progress is not None:
                    self.progress.update(pos.epoch, s.epochs, pos.step, steps_total, scalars)
                if end_of_epoch:
                    break
        if not metrics:  # resumed at the very end: nothing evaluated in this process yet
            metrics = self.evaluate()
        self.recorder.set_summary(epochs_done=pos.epoch, steps_done=pos.step, final_metrics=metrics)
        return Result("done", pos, metrics, time.monotonic() - started)
