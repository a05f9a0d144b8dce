"""What each rule's estimate is the gradient of: the loss, or a GEP member's own objective.

Three objectives (docs/theory.md, "GEP"), each a function of the resistances with the quantities
a rig fixes when it applies a nudge held at their values at the current state (``r0``):

- ``LOSS``           L = mean_s 1/2 |y_hat - y|^2 (V^2); gradient in W. Omega-learning and finite
                     differences estimate it.
- ``CURRENT_PROXY``  l_1 = mean_s e^T P_o i, e = y_hat(r0) - y held (V A = W); gradient in A^2.
                     The small-beta limit of GEP order 1 (two-phase EP, series nudges).
- ``WEIGHTED_ERROR`` l_2 = mean_s 1/2 (y_hat - y)^T K (y_hat - y), K = K(r0) held (V^2 S = W);
                     gradient in A^2. K is the outputs' effective conductance matrix with the
                     inputs off: the clamps holding voltages c across the outputs dissipate
                     c^T K c. The small-beta limit of GEP order 2 (Coupled Learning's clamp).

For each: ``gradient`` (analytic, from a LinearResponse), ``frozen`` (its value as a function of
new resistances, for finite differences), and for the GEP objectives ``bias``: the b with which
a one-sided member's estimate is exactly gradient + beta * b in a linear network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from hwlearn.loss import mse_loss
from hwlearn.ports import Ports
from hwlearn.rules.linear import LinearResponse
from hwlearn.rules.phases import FREE, Phase, Term, as_columns
from hwlearn.solver import Factorization, KirchhoffSolver

Frozen = Callable[[Factorization], float]
"""An objective's value at the resistances of a factorisation, its held quantities fixed."""


class _Bilinear(NamedTuple):
    """Phases and terms for LinearResponse.gradient, outside any rule."""

    phases: tuple[Phase, ...]
    terms: tuple[Term, ...]


# Inputs off, the error e = y_hat - y applied across the outputs: as series sources (the order-1
# nudge's direction) or as clamp voltages (the order-2 nudge's).
_SERIES_ERROR = Phase("series_error", inputs_on=False, mode="series", a=1.0, b=-1.0)
_CLAMP_ERROR = Phase("clamp_error", inputs_on=False, mode="clamp", a=1.0, b=-1.0)


def effective_conductance(response: LinearResponse) -> np.ndarray:
    """(d_out, d_out) K: the currents clamps must supply to hold unit voltages across the outputs,
    inputs off (siemens; symmetric positive definite). A current source j beside the outputs
    (a -> b) gives output voltages R j with R negative definite, so K = -R^-1."""
    return -np.linalg.inv(response.R)


@dataclass(frozen=True)
class Objective:
    """An objective by name; subclasses compute it."""

    key: str
    symbol: str
    formula: str
    units: str  # of its gradient

    def gradient(self, response: LinearResponse, x, y) -> np.ndarray:
        """(k,) analytic gradient on the response's edges."""
        raise NotImplementedError

    def frozen(self, response: LinearResponse, x, y) -> Frozen:
        raise NotImplementedError

    def bias(self, response: LinearResponse, x, y) -> np.ndarray | None:
        """(k,) b: a one-sided member's estimate is gradient + beta * b; None for the loss."""
        return None


def _block(response: LinearResponse, x, y) -> tuple[np.ndarray, np.ndarray]:
    return (as_columns(x, response.ports.n_inputs, "inputs"), as_columns(y, response.ports.n_outputs, "targets"))


class _Loss(Objective):
    def gradient(self, response, x, y):
        return response.exact_gradient(x, y)

    def frozen(self, response, x, y):
        x, y = _block(response, x, y)
        ports = response.ports
        return lambda fz: mse_loss(fz.solve(ports.excitation(x)).edge_voltages(ports.outputs), y)


class _CurrentProxy(Objective):
    def gradient(self, response, x, y):
        # i_F times the branch currents of series sources e on the outputs (inputs off).
        return response.gradient(_Bilinear((_SERIES_ERROR,), (Term(1.0, FREE, _SERIES_ERROR.name),)), x, y)

    def frozen(self, response, x, y):
        x, y = _block(response, x, y)
        ports = response.ports
        error = response.outputs(x) - y
        return lambda fz: float(np.mean(np.sum(error * fz.solve(ports.excitation(x)).edge_currents(ports.outputs),
                                                axis=0)))

    def bias(self, response, x, y):
        # (beta / 2) (M P_o^T e)^2: the squared response to the nudge itself (docs/theory.md).
        return response.gradient(_Bilinear((_SERIES_ERROR,), (Term(0.5, _SERIES_ERROR.name, _SERIES_ERROR.name),)),
                                 x, y)


class _WeightedError(Objective):
    def gradient(self, response, x, y):
        # Through the outputs only (K held): the exact gradient of the loss with the error
        # K e in place of e.
        x, y = _block(response, x, y)
        y_hat = response.outputs(x)
        return response.exact_gradient(x, y_hat - effective_conductance(response) @ (y_hat - y))

    def frozen(self, response, x, y):
        x, y = _block(response, x, y)
        ports = response.ports
        weights = effective_conductance(response)

        def value(fz: Factorization) -> float:
            error = fz.solve(ports.excitation(x)).edge_voltages(ports.outputs) - y
            return float(np.mean(0.5 * np.sum(error * (weights @ error), axis=0)))
        return value

    def bias(self, response, x, y):
        # beta times the gradient of 1/2 e^T K e with e held: -1/2 of the squared currents of
        # clamps holding e across the outputs (the co-content's r-derivative).
        return response.gradient(_Bilinear((_CLAMP_ERROR,), (Term(-0.5, _CLAMP_ERROR.name, _CLAMP_ERROR.name),)),
                                 x, y)


LOSS: Objective = _Loss("loss", "L", "mean 1/2 |y_hat - y|^2", "W")
CURRENT_PROXY: Objective = _CurrentProxy("current_proxy", "l_1", "mean e^T P_o i, e = y_hat - y held", "A^2")
WEIGHTED_ERROR: Objective = _WeightedError("weighted_error", "l_2",
                                           "mean 1/2 (y_hat - y)^T K (y_hat - y), K held", "A^2")
OBJECTIVES = {o.key: o for o in (LOSS, CURRENT_PROXY, WEIGHTED_ERROR)}


def finite_differences(objective: Objective, solver: KirchhoffSolver, ports: Ports, resistance: np.ndarray,
                       x, y, edges, relative_step: float = 1e-5) -> np.ndarray:
    """(k,) central differences of ``objective`` (its held quantities at ``resistance``) on
    ``edges``, steps relative_step * r: the check of every analytic objective gradient."""
    resistance = np.asarray(resistance, dtype=float)
    value = objective.frozen(LinearResponse(solver.factorize(resistance), ports, np.zeros(0, np.int64)), x, y)
    out = np.empty(len(edges))
    for row, k in enumerate(np.asarray(edges, dtype=np.int64)):
        h = relative_step * resistance[k]
        sides = []
        for sign in (1.0, -1.0):
            r = resistance.copy()
            r[k] += sign * h
            sides.append(value(solver.factorize(r)))
        out[row] = (sides[0] - sides[1]) / (2 * h)
    return out
