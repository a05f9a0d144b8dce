"""The loss every part of hwlearn trains and reports: L = batch mean of 1/2 |y_hat - y|^2.

y_hat are the output edges' resistor voltages and y the targets, both in volts, columns are
samples (d_out, B); L is in V^2. Its gradient with respect to the resistances is what every rule
estimates (docs/theory.md).
"""

from __future__ import annotations

import numpy as np


def mse_loss(y_hat, y) -> float:
    """Batch mean of 1/2 |y_hat - y|^2 (V^2) for outputs and targets (d_out, B) or (d_out,)."""
    err = np.asarray(y_hat, dtype=float) - np.asarray(y, dtype=float)
    err = err[:, None] if err.ndim == 1 else err
    return float(0.5 * np.mean(np.sum(err * err, axis=0)))
