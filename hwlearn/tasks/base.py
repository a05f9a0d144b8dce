"""What a task provides: train and test sets, noisy target draws, accuracy, the linear ceiling.

Arrays are column-major in samples, as everywhere in hwlearn: x is (d_in, N), y is (d_out, N).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwlearn.loss import mse_loss


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray | None = None  # class index per sample for classification tasks

    def __len__(self) -> int:
        return int(self.x.shape[1])


class Task:
    """Subclasses set name, input_names, output_names, train, test, noise_sigma."""

    name: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    train: Dataset
    test: Dataset
    noise_sigma: float = 0.0

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    @property
    def n_outputs(self) -> int:
        return len(self.output_names)

    @property
    def is_classification(self) -> bool:
        return self.train.labels is not None

    def draw_targets(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Targets as a learner sees them: zero-mean Gaussian noise of noise_sigma volts added,
        drawn afresh at every draw (so the noise never averages into a fixed offset)."""
        if self.noise_sigma == 0.0:
            return y
        return y + self.noise_sigma * rng.standard_normal(y.shape)

    def accuracy(self, outputs: np.ndarray, data: Dataset) -> float | None:
        """Share of samples whose largest output is the labelled class (None for regression)."""
        if data.labels is None:
            return None
        return float(np.mean(np.argmax(outputs, axis=0) == data.labels))

    def linear_ceiling(self) -> dict:
        """Least squares from the inputs (with an intercept) to the clean targets on the train
        set: the best any linear map, hence any passive network, can do on this split."""
        def design(x):
            return np.vstack([x, np.ones((1, x.shape[1]))]).T

        weights, *_ = np.linalg.lstsq(design(self.train.x), self.train.y.T, rcond=None)
        result = {}
        for split, data in (("train", self.train), ("test", self.test)):
            pred = (design(data.x) @ weights).T
            result[f"{split}_loss"] = mse_loss(pred, data.y)
            acc = self.accuracy(pred, data)
            if acc is not None:
                result[f"{split}_accuracy"] = acc
        return result
