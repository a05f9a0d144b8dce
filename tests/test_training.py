"""Training on the simulated rig: exact updates with ideal devices, convergence, resumption."""

import threading

import numpy as np
import pytest

from hwlearn.app.launch import simulated_substrate
from hwlearn.config import resolve
from hwlearn.experiment import build_experiment
from hwlearn.rules import FiniteDifference, LinearResponse
from hwlearn.training.session import settings_from
from hwlearn.training.trainer import Trainer
from hwlearn.training.updates import descend


def _trainer(doc, seed=0, stop=None, progress=None):
    config = resolve(doc, "<test>", seed=seed)
    exp = build_experiment(config)
    sub = simulated_substrate(exp)
    return Trainer(sub, exp.task, exp.rule, settings_from(config), exp.rngs, stop=stop, progress=progress), exp, sub


@pytest.mark.parametrize("update", ["log_resistance", "resistance", "conductance"])
def test_ideal_devices_reproduce_the_exact_rule_bit_for_bit(update):
    lr = {"log_resistance": 30.0, "resistance": 3e5, "conductance": 3e-4}[update]
    trainer, exp, sub = _trainer({"training": {"update": update, "learning_rate": lr, "epochs": 1}})
    pos = trainer.run().position
    assert pos.step == 7
    # Replay the same batches by hand with the rule (exact to rounding): the ideal device model
    # adds nothing but the clip, so the resistances agree to the bit.
    replay, exp2, sub2 = _trainer({"training": {"update": update, "learning_rate": lr, "epochs": 1}})
    order = exp2.rngs["shuffle"].permutation(len(exp2.task.train))
    r = sub2.resistances()
    edges = sub2.learnable
    for start in range(0, order.size, 16):
        batch = order[start:start + 16]
        fz = sub2.circuit.solver.factorize(r)
        response = LinearResponse(fz, sub2.ports, edges)
        x, y = exp2.task.train.x[:, batch], exp2.task.train.y[:, batch]
        grad = response.gradient(exp2.rule, x, y)
        assert np.allclose(grad, response.exact_gradient(x, y), rtol=1e-12, atol=0)
        r = r.copy()
        r[edges] = np.clip(descend(r[edges], grad, lr, update), 100.0, 1e6)
    assert np.array_equal(sub.resistances(), r)


def test_omega_drives_the_teacher_loss_below_a_millionth_of_its_start():
    trainer, exp, sub = _trainer({"task": {"name": "teacher", "inputs": 3, "outputs": 2, "teacher_spread": 0.5},
                                  "training": {"learning_rate": 30.0, "epochs": 300, "batch_size": 120}}, seed=1)
    start = trainer.evaluate()["train_loss"]
    final = trainer.run().metrics["train_loss"]
    assert final < 1e-6 * start, (start, final)


def test_default_iris_config_comes_within_five_points_of_the_linear_ceiling():
    accuracies, ceilings = [], []
    for seed in range(5):
        trainer, exp, sub = _trainer({}, seed=seed)
        accuracies.append(trainer.run().metrics["test_accuracy"])
        ceilings.append(exp.task.linear_ceiling()["test_accuracy"])
    assert np.mean(ceilings) - np.mean(accuracies) < 0.05, (accuracies, ceilings)


class _StopAfter:
    def __init__(self, stop, steps):
        self.stop, self.steps = stop, steps

    def update(self, epoch, epochs, step, steps_total, scalars):
        if step >= self.steps:
            self.stop.set()


class _Memory:
    """A recorder keeping the latest checkpoint in memory."""

    def __init__(self):
        self.steps, self.checkpoints = [], []

    def record_step(self, step, epoch, scalars, arrays=None):
        self.steps.append(step)

    def event(self, *a, **k):
        pass

    def checkpoint(self, step, epoch, arrays, state):
        self.checkpoints.append(({k: np.array(v) for k, v in arrays.items()}, state))

    def set_summary(self, **values):
        pass


@pytest.mark.parametrize("doc", [
    {"training": {"epochs": 3}},
    {"training": {"epochs": 3}, "task": {"noise_sigma": 0.02}, "mask": {"kind": "random"},
     "device": {"model": "digipot", "read_noise_volts": 1e-3, "write_noise": 0.01, "r_min": 500.0, "r_max": 1e5}},
], ids=["ideal", "noisy-digipot"])
def test_a_stopped_run_resumed_from_its_checkpoint_ends_exactly_where_an_uninterrupted_one_does(doc):
    whole, _, sub_whole = _trainer(doc)
    whole.run()
    stop = threading.Event()
    first, _, _ = _trainer(doc, stop=stop, progress=_StopAfter(stop, 10))
    first.recorder = memory = _Memory()
    assert first.run().status == "stopped"
    arrays, state = memory.checkpoints[-1]
    assert state["step"] == 10 and 0 < state["offset"] < 105  # mid-epoch
    second, _, sub_second = _trainer(doc)
    position = second.restore(arrays, state)
    assert second.run(resume=position).status == "done"
    assert np.array_equal(sub_second.circuit.true_resistances(), sub_whole.circuit.true_resistances())


def test_finite_difference_training_matches_omega_closely():
    fd, _, sub_fd = _trainer({"rule": {"name": "finite_difference"}, "training": {"epochs": 2}})
    om, _, sub_om = _trainer({"training": {"epochs": 2}})
    fd.run(), om.run()
    assert isinstance(fd.rule, FiniteDifference)
    assert np.allclose(sub_fd.resistances(), sub_om.resistances(), rtol=1e-6)


def test_a_stop_at_an_epoch_boundary_resumes_without_a_second_shuffle():
    """A stop requested as an epoch ends used to be taken after the next epoch's order was drawn,
    and the resume drew it again: the resumed run took another path."""
    doc = {"training": {"epochs": 3}}
    whole, _, sub_whole = _trainer(doc)
    whole.run()
    stop = threading.Event()
    first, _, _ = _trainer(doc, stop=stop, progress=_StopAfter(stop, 7))  # 105 samples / 16 per batch: 7 steps
    first.recorder = memory = _Memory()
    assert first.run().status == "stopped"
    arrays, state = memory.checkpoints[-1]
    assert state["step"] == 7 and state["epoch"] == 1 and state["offset"] == 0
    second, _, sub_second = _trainer(doc)
    assert second.run(resume=second.restore(arrays, state)).status == "done"
    assert np.array_equal(sub_second.circuit.true_resistances(), sub_whole.circuit.true_resistances())
