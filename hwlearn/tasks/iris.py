"""Iris classification (Fisher 1936; 150 flowers, 4 measurements, 3 species).

The data file ships in the package (hwlearn/data/iris.csv). Features are standardised with the
train set's mean and std; a constant bias input lets the network add an offset; CHOICE: with
``encoding = 'differential'`` every feature is also fed with its sign flipped, because a passive
network such as a crossbar forms only non-negative combinations of its inputs and needs both
polarities to realise signed weights (docs/iris.md). Targets are one-hot scaled to
``target_scale`` volts; the predicted class is the largest output voltage.
"""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np

from hwlearn.tasks.base import Dataset, Task

SPECIES = ("setosa", "versicolor", "virginica")


def load_iris() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(features (150, 4) in cm, labels (150,), feature names)."""
    with resources.files("hwlearn").joinpath("data/iris.csv").open() as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    features = np.array([[float(v) for v in row[:4]] for row in body])
    labels = np.array([SPECIES.index(row[4]) for row in body])
    return features, labels, tuple(name.removesuffix("_cm") for name in header[:4])


def stratified_split(labels: np.ndarray, test_fraction: float, rng: np.random.Generator):
    """Train and test indices with each class split in the same proportion."""
    train, test = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(round(test_fraction * members.size))
        test.extend(members[:n_test])
        train.extend(members[n_test:])
    return np.sort(np.array(train)), np.sort(np.array(test))


class IrisTask(Task):
    name = "iris"

    def __init__(self, *, test_fraction: float = 0.3, encoding: str = "differential", bias: float = 1.0,
                 target_scale: float = 0.2, noise_sigma: float = 0.0, seed: int = 0):
        features, labels, names = load_iris()
        train_idx, test_idx = stratified_split(labels, test_fraction, np.random.default_rng(seed))
        mean = features[train_idx].mean(axis=0)
        std = features[train_idx].std(axis=0)
        z = ((features - mean) / std).T
        blocks, input_names = [z], list(names)
        if encoding == "differential":
            blocks.append(-z)
            input_names += [f"-{n}" for n in names]
        if bias:
            blocks.append(np.full((1, z.shape[1]), float(bias)))
            input_names.append("bias")
        x = np.vstack(blocks)
        y = target_scale * np.eye(len(SPECIES))[labels].T
        self.input_names = tuple(input_names)
        self.output_names = SPECIES
        self.noise_sigma = float(noise_sigma)
        self.train = Dataset(x[:, train_idx], y[:, train_idx], labels[train_idx])
        self.test = Dataset(x[:, test_idx], y[:, test_idx], labels[test_idx])
