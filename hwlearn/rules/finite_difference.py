"""Central finite differences of the loss: the reference estimator."""

from __future__ import annotations

import numpy as np

from hwlearn.ports import Ports
from hwlearn.solver import KirchhoffSolver


def mse_loss(y_hat: np.ndarray, y: np.ndarray) -> float:
    """Batch mean of 1/2 |y_hat - y|^2, columns are samples."""
    err = np.asarray(y_hat) - np.asarray(y)
    err = err[:, None] if err.ndim == 1 else err
    return float(0.5 * np.mean(np.sum(err * err, axis=0)))


class FiniteDifference:
    """(L(r + h e_k) - L(r - h e_k)) / 2h with h = relative_step * r_k.

    On a bench the losses come from programming r_k +- h and measuring the outputs; in
    simulation from two refactorisations per edge. Error O(h^2) from truncation plus
    O(eps / h) from rounding: 1e-5 balances them for losses near 1.
    """

    name = "finite_difference"

    def __init__(self, relative_step: float = 1e-5):
        if not 0 < relative_step < 0.1:
            raise ValueError(f"finite_difference: relative_step must be in (0, 0.1), got {relative_step!r}")
        self.relative_step = float(relative_step)

    def steps(self, resistance: np.ndarray) -> np.ndarray:
        return self.relative_step * np.asarray(resistance, dtype=float)

    @staticmethod
    def gradient_from_losses(loss_plus, loss_minus, steps) -> np.ndarray:
        return (np.asarray(loss_plus) - np.asarray(loss_minus)) / (2 * np.asarray(steps))

    def estimate(self, solver: KirchhoffSolver, ports: Ports, resistance, x, y, edges) -> np.ndarray:
        """(k,) estimate on ``edges`` by re-solving the circuit at perturbed resistances."""
        r = np.asarray(resistance, dtype=float)
        edges = np.asarray(edges, dtype=np.int64)
        h = self.steps(r[edges])
        excitation = ports.excitation(x)
        losses = np.zeros((2, len(edges)))
        for row, k in enumerate(edges):
            for side, sign in enumerate((1.0, -1.0)):
                trial = r.copy()
                trial[k] += sign * h[row]
                y_hat = solver.factorize(trial).solve(excitation).edge_voltages(ports.outputs)
                losses[side, row] = mse_loss(y_hat, y)
        return self.gradient_from_losses(losses[0], losses[1], h)
