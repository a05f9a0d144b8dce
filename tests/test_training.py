"""Training on the simulated rig: exact updates with ideal devices, convergence, resumption."""

import numpy as np
import pytest

from hwlearn.app.launch import simulated_substrate
from hwlearn.config import resolve
from hwlearn.documents import Checkpoint, StepRecord
from hwlearn.engine import RunEngine
from hwlearn.experiment import build_experiment
from hwlearn.rules import FiniteDifference, LinearResponse
from hwlearn.solver import KirchhoffSolver
from hwlearn.training.session import settings_from
from hwlearn.training.trainer import Trainer
from hwlearn.training.updates import descend


def _trainer(doc, seed=0, subscribers=()):
    config = resolve(doc, "<test>", seed=seed)
    exp = build_experiment(config)
    sub = simulated_substrate(exp)
    engine = RunEngine(None, subscribers)
    return Trainer(sub, exp.task, exp.rule, settings_from(config), exp.rngs, engine=engine), exp, sub


@pytest.mark.parametrize("update", ["log_resistance", "resistance", "conductance"])
def test_ideal_devices_reproduce_the_exact_rule_bit_for_bit(update):
    lr = {"log_resistance": 30.0, "resistance": 3e5, "conductance": 3e-4}[update]
    doc = {"training": {"update": update, "learning_rate": lr, "epochs": 1}}
    trainer, exp, sub = _trainer(doc)
    batch_size = exp.config["training"]["batch_size"]
    pos = trainer.run().position
    assert pos.step == -(-len(exp.task.train) // batch_size)  # one epoch of whole batches
    # Replay the same batches by hand: exact gradient descent on the network, clipped to the
    # device bounds. The ideal device model adds nothing but the clip, so the resistances agree
    # to the bit.
    _, exp2, sub2 = _trainer(doc)
    low, high = exp2.config["device"]["r_min"], exp2.config["device"]["r_max"]
    order = exp2.rngs["shuffle"].permutation(len(exp2.task.train))
    solver = KirchhoffSolver(exp2.network)
    r = sub2.resistances()
    edges = sub2.learnable
    for start in range(0, order.size, batch_size):
        batch = order[start:start + batch_size]
        response = LinearResponse(solver.factorize(r), exp2.ports, edges)
        x, y = exp2.task.train.x[:, batch], exp2.task.train.y[:, batch]
        grad = response.gradient(exp2.rule, x, y)
        assert np.allclose(grad, response.exact_gradient(x, y), rtol=1e-12, atol=0)
        r = r.copy()
        r[edges] = np.clip(descend(r[edges], grad, lr, update), low, high)
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
    """Asks the engine for a clean stop once step ``steps`` is recorded (as Ctrl-C would)."""

    def __init__(self, steps):
        self.steps = steps
        self.engine = None

    def __call__(self, doc):
        if isinstance(doc, StepRecord) and doc.step == self.steps:
            self.engine.stop()


class _Memory:
    """Keeps the checkpoints a run publishes."""

    def __init__(self):
        self.checkpoints = []

    def __call__(self, doc):
        if isinstance(doc, Checkpoint):
            self.checkpoints.append(({k: np.array(v) for k, v in doc.arrays.items()}, doc.state))


@pytest.mark.parametrize("doc", [
    {"training": {"epochs": 3}},
    {"training": {"epochs": 3}, "task": {"noise_sigma": 0.02}, "mask": {"kind": "random"},
     "device": {"model": "digipot", "read_noise_volts": 1e-3, "write_noise": 0.01, "r_min": 500.0, "r_max": 1e5}},
], ids=["ideal", "noisy-digipot"])
def test_a_stopped_run_resumed_from_its_checkpoint_ends_exactly_where_an_uninterrupted_one_does(doc):
    whole, _, sub_whole = _trainer(doc)
    whole.run()
    memory, stopper = _Memory(), _StopAfter(10)
    first, _, _ = _trainer(doc, subscribers=[memory, stopper])
    stopper.engine = first.engine
    assert first.run().status == "stopped"
    arrays, state = memory.checkpoints[-1]
    assert state["step"] == 10 and 0 < state["offset"] < 105  # mid-epoch
    second, _, sub_second = _trainer(doc)
    position = second.restore(arrays, state)
    assert second.run(resume=position).status == "done"
    assert np.array_equal(sub_second.circuit.true_resistances(), sub_whole.circuit.true_resistances())


def test_a_stop_that_lands_at_the_end_of_an_epoch_resumes_exactly():
    # 105 training samples in batches of 16: step 7 ends the first epoch. The next epoch's
    # order must be drawn after the stop is honoured, or the resumed run draws it twice.
    doc = {"training": {"epochs": 3}}
    whole, _, sub_whole = _trainer(doc)
    whole.run()
    memory, stopper = _Memory(), _StopAfter(7)
    first, _, _ = _trainer(doc, subscribers=[memory, stopper])
    stopper.engine = first.engine
    assert first.run().status == "stopped"
    arrays, state = memory.checkpoints[-1]
    assert (state["step"], state["epoch"], state["offset"]) == (7, 1, 0)
    second, _, sub_second = _trainer(doc)
    assert second.run(resume=second.restore(arrays, state)).status == "done"
    assert np.array_equal(sub_second.circuit.true_resistances(), sub_whole.circuit.true_resistances())


def test_finite_difference_training_matches_omega_closely():
    fd, _, sub_fd = _trainer({"rule": {"name": "finite_difference"}, "training": {"epochs": 2}})
    om, _, sub_om = _trainer({"training": {"epochs": 2}})
    fd.run(), om.run()
    assert isinstance(fd.rule, FiniteDifference)
    assert np.allclose(sub_fd.resistances(), sub_om.resistances(), rtol=1e-6)

