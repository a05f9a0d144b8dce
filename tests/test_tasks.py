"""Tasks: the Iris split and encoding, noisy targets, the linear ceiling, the teacher."""

import numpy as np
import pytest

from hwlearn.builders import crossbar
from hwlearn.ports import Ports
from hwlearn.solver import KirchhoffSolver
from hwlearn.tasks import IrisTask, TeacherTask, load_iris


def test_iris_data_file_has_150_flowers_in_three_balanced_classes():
    features, labels, names = load_iris()
    assert features.shape == (150, 4)
    assert np.bincount(labels).tolist() == [50, 50, 50]
    assert names == ("sepal_length", "sepal_width", "petal_length", "petal_width")
    assert features[0].tolist() == [5.1, 3.5, 1.4, 0.2]


def test_iris_split_is_stratified_and_reproducible_from_its_seed():
    a, b, c = IrisTask(seed=3), IrisTask(seed=3), IrisTask(seed=4)
    assert np.bincount(a.test.labels).tolist() == [15, 15, 15]
    assert np.array_equal(a.train.x, b.train.x)
    assert not np.array_equal(a.train.x, c.train.x)


def test_iris_differential_encoding_standardises_on_train_and_adds_bias():
    task = IrisTask(seed=0, encoding="differential", bias=1.0, target_scale=0.2)
    assert task.input_names[4:8] == tuple(f"-{n}" for n in task.input_names[:4]) and task.input_names[-1] == "bias"
    z = task.train.x[:4]
    assert np.allclose(z.mean(axis=1), 0, atol=1e-12) and np.allclose(z.std(axis=1), 1)
    assert np.array_equal(task.train.x[4:8], -z) and np.all(task.train.x[8] == 1.0)
    assert set(np.unique(task.train.y)) == {0.0, 0.2}
    assert np.array_equal(np.argmax(task.train.y, axis=0), task.train.labels)
    single = IrisTask(seed=0, encoding="single", bias=0.0)
    assert single.n_inputs == 4


def test_iris_linear_ceiling_is_near_the_expected_value():
    ceilings = [IrisTask(seed=s).linear_ceiling()["test_accuracy"] for s in range(10)]
    assert 0.75 < np.mean(ceilings) < 0.9


def test_noisy_targets_are_fresh_zero_mean_draws_of_the_given_sigma():
    task = IrisTask(seed=0, noise_sigma=0.05)
    rng = np.random.default_rng(0)
    y = task.train.y
    first, second = task.draw_targets(y, rng), task.draw_targets(y, rng)
    assert not np.array_equal(first, second)
    noise = np.concatenate([(task.draw_targets(y, rng) - y).ravel() for _ in range(200)])
    assert abs(noise.mean()) < 4 * 0.05 / np.sqrt(noise.size)
    assert noise.std() == pytest.approx(0.05, rel=0.02)
    assert task.draw_targets(y, rng) is not y
    clean = IrisTask(seed=0)
    assert clean.draw_targets(y, rng) is y


def test_accuracy_is_the_share_of_argmax_hits():
    task = IrisTask(seed=0)
    assert task.accuracy(task.test.y, task.test) == 1.0
    assert task.accuracy(np.roll(task.test.y, 1, axis=0), task.test) == 0.0


def test_teacher_targets_are_exactly_reachable_by_the_teachers_resistances():
    net = crossbar(3, 2)
    ports = Ports.from_roles(net)
    teacher = net.resistance * np.random.default_rng(1).uniform(0.5, 2, net.n_edges)
    task = TeacherTask(ports, teacher, train_samples=20, test_samples=10, seed=2)
    outputs = KirchhoffSolver(net).factorize(teacher).solve(ports.excitation(task.test.x)).edge_voltages(ports.outputs)
    assert np.allclose(outputs, task.test.y, rtol=0, atol=1e-15)
    assert task.accuracy(outputs, task.test) is None
    assert task.linear_ceiling()["train_loss"] < 1e-25
