"""Fitting the device model (simulator/memristor.py) to measured pulse responses.

A trace is what characterisation measures on one device: its conductance read after every
reference pulse of a known polarity (conductance against pulse number, both polarities). The
model predicts each read from the one before (one step of the SET or RESET curve), so the fit is
a least-squares fit of those one-step predictions over g_min, g_max, the pulses across the window
and both nonlinearities; cycle-to-cycle variation is the spread of what the fit does not explain,
counted on steps whose prediction lies inside the window (at its ends the noise is clipped). A
device whose reads do not move is reported stuck (at the end it sits at) and not fitted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from simulator.memristor import DeviceParameters

STUCK_SPREAD = 0.02   # reads within 2 % of their mean over a whole trace: the device does not respond


@dataclass(frozen=True)
class Trace:
    """``siemens`` (N+1,): reads; ``polarity`` (N,): +1 (SET) or -1 (RESET), the reference pulse
    between read k and read k+1."""

    siemens: np.ndarray
    polarity: np.ndarray

    def __post_init__(self):
        g, p = np.asarray(self.siemens, dtype=float), np.asarray(self.polarity, dtype=int)
        if g.ndim != 1 or p.shape != (g.size - 1,):
            raise ValueError(f"trace: {g.size} reads need {g.size - 1} polarities, got {p.size}")
        if not np.all(np.isfinite(g)) or np.any(g <= 0):
            raise ValueError("trace: every read must be a finite conductance > 0")
        if not np.all(np.isin(p, (-1, 1))):
            raise ValueError("trace: polarities are +1 (SET) or -1 (RESET)")
        object.__setattr__(self, "siemens", g)
        object.__setattr__(self, "polarity", p)


@dataclass(frozen=True)
class Fit:
    """The fitted parameters (None for a stuck device, whose reads stayed at ``level`` siemens),
    the residual's spread relative to the window, how many steps it used, and the model's one-step
    predictions (for the figures)."""

    parameters: DeviceParameters | None
    level: float
    steps: int
    rms_residual: float
    predicted: np.ndarray


def predict(params: np.ndarray, g: np.ndarray, polarity: np.ndarray) -> np.ndarray:
    """One-step predictions of the noise-free model, vectorised. params: g_min, g_max, pulses,
    nu_set, nu_reset."""
    g_min, g_max, pulses, nu_set, nu_reset = params
    window = g_max - g_min
    nu = np.where(polarity > 0, nu_set, nu_reset)
    nu_safe = np.maximum(nu, 1e-9)
    reach = window / -np.expm1(-nu_safe)
    target = np.where(polarity > 0, g_min + reach, g_max - reach)
    new = g + (target - g) * -np.expm1(-nu_safe / pulses)
    return np.clip(new, g_min, g_max)


def fit_trace(trace: Trace) -> Fit:
    """The device model fitted to one device's trace (see the module docstring)."""
    g, pol = trace.siemens, trace.polarity
    if np.ptp(g) < STUCK_SPREAD * np.mean(g):
        return Fit(None, float(np.mean(g)), 0, 0.0, np.full(pol.size, np.mean(g)))
    before, after = g[:-1], g[1:]
    g_low, g_high = float(np.min(g)), float(np.max(g))
    window0 = g_high - g_low
    # The pulses across the window: the longest run of one polarity that crosses most of it.
    pulses0 = max(2.0, _run_length(g, pol))
    start = np.array([np.log(g_low), np.log(g_high), np.log(pulses0), 2.0, 2.0])

    def unpack(theta):
        return np.array([np.exp(theta[0]), np.exp(theta[1]), np.exp(theta[2]), theta[3], theta[4]])

    def residual(theta):
        return (after - predict(unpack(theta), before, pol)) / window0

    lower = [np.log(g_low) - 1.0, np.log(g_high) - 1.0, np.log(1.0), 1e-3, 1e-3]
    upper = [np.log(g_low) + 1.0, np.log(g_high) + 1.0, np.log(1e5), 30.0, 30.0]
    result = least_squares(residual, np.clip(start, lower, upper), bounds=(lower, upper), x_scale="jac")
    g_min, g_max, pulses, nu_set, nu_reset = unpack(result.x)
    predicted = predict(unpack(result.x), before, pol)
    inside = (predicted > g_min + 0.02 * (g_max - g_min)) & (predicted < g_max - 0.02 * (g_max - g_min))
    spread = (after - predicted)[inside] / (g_max - g_min)
    c2c = float(np.sqrt(np.mean(spread ** 2))) if spread.size else 0.0
    params = DeviceParameters(float(g_min), float(g_max), float(pulses), float(nu_set), float(nu_reset), c2c)
    rms = float(np.sqrt(np.mean(((after - predicted) / (g_max - g_min)) ** 2)))
    return Fit(params, math.nan, int(pol.size), rms, predicted)


def _run_length(g: np.ndarray, pol: np.ndarray) -> float:
    """Reference pulses a monotone run took to cross the middle 80 % of the reads' span: a start
    for the fit's ``pulses``."""
    low, high = np.min(g), np.max(g)
    lo, hi = low + 0.1 * (high - low), low + 0.9 * (high - low)
    best = 0
    k = 0
    while k < pol.size:
        j = k
        while j + 1 < pol.size and pol[j + 1] == pol[k]:
            j += 1
        run = g[k:j + 2]
        crossing = np.flatnonzero((run >= lo) & (run <= hi)).size
        best = max(best, crossing)
        k = j + 1
    return best / 0.8 if best else float(pol.size)


def population(fits: Sequence[Fit]) -> dict:
    """Median of each fitted parameter over the devices that responded, their spread (std of
    the logs: the d2d variation) and the stuck count."""
    good = [f.parameters for f in fits if f.parameters is not None]
    out = {"devices": len(fits), "stuck": sum(1 for f in fits if f.parameters is None)}
    for key in ("g_min", "g_max", "pulses", "nu_set", "nu_reset", "c2c"):
        values = np.array([getattr(p, key) for p in good], dtype=float)
        out[key] = float(np.median(values)) if values.size else math.nan
        positive = values[values > 0]
        out[f"{key}_d2d"] = float(np.std(np.log(positive))) if positive.size > 1 else math.nan
    return out
