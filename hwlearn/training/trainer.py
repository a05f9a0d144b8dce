"""The training loop: mini-batches, updates, evaluation, checkpoints, clean stops.

The trainer reports everything as documents through its engine (hwlearn.documents): a step, a
checkpoint, a stop event, the summary. It calls ``engine.boundary('step')`` before every step,
where the engine pauses, aborts, or asks for a clean stop; plans on a rig add sample boundaries.

Determinism: every random draw comes from a named generator (shuffle, noise, device) whose state
is checkpointed with the substrate, the epoch's sample order and the position in it, so a run
resumed from any checkpoint retraces the uninterrupted run exactly. An epoch's order is drawn
only when its first step is about to run, after the boundary: a stop at an epoch's end is
checkpointed before the draw, so the resumed run draws it once, as the uninterrupted one does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hwlearn.documents import Checkpoint, RunEvent, StepRecord, Summary
from hwlearn.engine import RunEngine
from hwlearn.loss import mse_loss
from hwlearn.tasks import Task
from hwlearn.training.substrate import StepDiscarded
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
    """Where training stands: completed epochs and steps, and the place in the current epoch.
    ``drawn``: the current epoch's order is drawn (a step given up at the epoch's start keeps it)."""

    epoch: int = 0
    step: int = 0
    offset: int = 0
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    drawn: bool = False


@dataclass
class Result:
    status: str  # 'done' or 'stopped'
    position: Position
    metrics: dict
    elapsed_seconds: float


class Trainer:
    RNG_NAMES = ("shuffle", "noise", "device")

    def __init__(self, substrate, task: Task, rule, settings: Settings, rngs: dict[str, np.random.Generator],
                 engine: RunEngine | None = None):
        """engine: the run's controller, whose subscribers get every document (a bare engine
        without subscribers when None: training without a record, for tests and studies)."""
        missing = set(self.RNG_NAMES) - set(rngs)
        if missing:
            raise ValueError(f"trainer needs random generators {sorted(missing)}")
        self.substrate = substrate
        self.task = task
        self.rule = rule
        self.settings = settings
        self.rngs = rngs
        self.engine = engine or RunEngine(substrate.rig)
        substrate.attach(self.engine)

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.task.train) // self.settings.batch_size)

    def plan_summary(self) -> dict:
        """How long the run is: for the start document, progress lines and ETAs."""
        s = self.settings
        summary = {"epochs": s.epochs, "steps_per_epoch": self.steps_per_epoch,
                   "steps_total": s.epochs * self.steps_per_epoch, "samples_per_epoch": len(self.task.train),
                   "batch_size": s.batch_size}
        measurement = getattr(self.substrate, "plan_info", None)
        if measurement:
            summary["measurement"] = dict(measurement)
        return summary

    def _rig_records(self) -> tuple[dict, dict]:
        take = getattr(self.substrate, "take_records", None)
        return take() if take is not None else ({}, {})

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
        state = {"epoch": pos.epoch, "step": pos.step, "offset": pos.offset, "drawn": pos.drawn,
                 "rng": {name: self.rngs[name].bit_generator.state for name in self.RNG_NAMES}}
        self.engine.publish(Checkpoint(pos.step, pos.epoch, arrays, state))

    def restore(self, arrays: dict, state: dict) -> Position:
        """Put substrate and generators back to a checkpoint; returns the position to go on from."""
        self.substrate.restore({k: v for k, v in arrays.items() if k != "order"})
        for name in self.RNG_NAMES:
            self.rngs[name].bit_generator.state = state["rng"][name]
        return Position(state["epoch"], state["step"], state["offset"], np.asarray(arrays["order"], dtype=np.int64),
                        bool(state.get("drawn", False)))

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
        gradient, y_hat = self.substrate.gradient(self.rule, x, y)  # may raise StepDiscarded
        # The rule's agreement with the exact gradient at the same resistances, where the
        # substrate knows it (simulations), on the steps that record arrays.
        exact = self.substrate.exact_gradient(x, y) if record_arrays else None
        before = self.substrate.resistances()[self.substrate.learnable]
        target = descend(before, gradient, s.learning_rate, s.update)
        after = self.substrate.program(target)
        pos.step += 1
        pos.offset += batch.size
        scalars = {"batch_loss": mse_loss(y_hat, y),
                   "relative_update": float(np.linalg.norm(after - before) / np.linalg.norm(before)),
                   **getattr(self.substrate, "step_scalars", {})}
        # What the rig did for this step (its wear counters, a crossbar's pulse log): at every
        # step, not only at those that record the other arrays.
        rig_scalars, rig_arrays = self._rig_records()
        scalars.update(rig_scalars)
        arrays.update(rig_arrays)
        if record_arrays:
            arrays["resistances"] = self.substrate.resistances()
            arrays["update"] = after - before
            arrays["gradient"] = gradient
            if exact is not None:
                norm = np.linalg.norm(gradient) * np.linalg.norm(exact)
                scalars["cosine_exact"] = float(gradient @ exact / norm) if norm > 0 else float("nan")
        return scalars, arrays

    def run(self, resume: Position | None = None) -> Result:
        s = self.settings
        n = len(self.task.train)
        started = time.monotonic()
        publish = self.engine.publish
        if resume is None:
            self.substrate.start()
            pos = Position()
            metrics = self.evaluate()
            # The initial programming's records (a crossbar's pulses and relay operations) too.
            rig_scalars, rig_arrays = self._rig_records()
            publish(StepRecord(0, 0, {**rig_scalars, **metrics},
                               {"resistances": self.substrate.resistances(), **rig_arrays}))
            self.engine.report_instruments(0)
            self._checkpoint(pos)
        else:
            pos = resume
            metrics = {}
        while pos.epoch < s.epochs:
            self.engine.position.update(epoch=pos.epoch + 1, step=pos.step + 1)
            if self.engine.boundary("step"):
                self._checkpoint(pos)
                publish(RunEvent("stop", f"stopped at step {pos.step}, epoch {pos.epoch}", step=pos.step))
                return Result("stopped", pos, metrics, time.monotonic() - started)
            if pos.offset == 0 and not pos.drawn:
                pos.order = self.rngs["shuffle"].permutation(n)
                pos.drawn = True
            try:
                scalars, arrays = self._step(pos)
            except StepDiscarded as exc:
                self._checkpoint(pos)
                publish(RunEvent("stop", f"stopped at step {pos.step}, epoch {pos.epoch}: {exc}", step=pos.step))
                return Result("stopped", pos, metrics, time.monotonic() - started)
            end_of_epoch = pos.offset >= n
            if end_of_epoch:
                metrics = self.evaluate()
                scalars.update(metrics)
            publish(StepRecord(pos.step, pos.epoch + 1, scalars, arrays))
            if arrays:
                self.engine.report_instruments(pos.step)
            if end_of_epoch:
                pos.epoch += 1
                pos.offset = 0
                pos.drawn = False
            if end_of_epoch or pos.step % s.checkpoint_every == 0:
                self._checkpoint(pos)
        if not metrics:  # resumed at the very end: nothing evaluated in this process yet
            metrics = self.evaluate()
        publish(Summary({"epochs_done": pos.epoch, "steps_done": pos.step, "final_metrics": metrics}))
        return Result("done", pos, metrics, time.monotonic() - started)
