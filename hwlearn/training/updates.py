"""Parametrisations of the descent step on resistances.

CHOICE (docs/iris.md): the default steps in log-resistance, r <- r exp(-lr r g): a relative
change, so large and small resistors move alike and r stays positive without clipping doing the
work; it is gradient descent on log r (dL/dlog r = r dL/dr). The alternatives are plain steps on
r, and on conductance G = 1/r (dL/dG = -r^2 dL/dr).
"""

from __future__ import annotations

import numpy as np

UPDATES = ("log_resistance", "resistance", "conductance")


def descend(ohms: np.ndarray, gradient: np.ndarray, learning_rate: float, update: str) -> np.ndarray:
    """Target resistances after one step (the device clips them to its bounds)."""
    if update == "log_resistance":
        return ohms * np.exp(-learning_rate * ohms * gradient)
    if update == "resistance":
        return ohms - learning_rate * gradient
    if update == "conductance":
        conductance = 1.0 / ohms + learning_rate * ohms**2 * gradient
        # A step through zero conductance asks for an open circuit: the device's largest value.
        return np.where(conductance > 0, 1.0 / np.maximum(conductance, 1e-300), np.inf)
    raise ValueError(f"unknown update '{update}'; allowed: {', '.join(UPDATES)}")
