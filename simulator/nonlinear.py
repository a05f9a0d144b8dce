"""A nonlinear element for tests of the probe plan's linearity check: edges whose conductance
grows with the voltage across them.

g(v) = g0 (1 + (v / knee_volts)^2), the cubic current-voltage curve of a memristor driven hard
(i = g0 v + g0 v^3 / knee^2): ohmic well below the knee, a few per cent off at a tenth of it.
The circuit's state is the fixed point of "solve at these conductances, set the conductances
from the voltages", found by damped iteration. Not part of any default path: a SimulatedCircuit
(so a SimulatedRig or a VirtualBench) uses it only when given one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwlearn.errors import SolverError

DAMPING = 0.5
RELATIVE_TOLERANCE = 1e-13
MAX_ITERATIONS = 500


@dataclass(frozen=True)
class VoltageDependentEdges:
    """``edges`` (indices) whose conductance follows g0 (1 + (v / knee_volts)^2)."""

    edges: tuple[int, ...]
    knee_volts: float

    def __post_init__(self):
        if not self.knee_volts > 0:
            raise ValueError(f"knee_volts = {self.knee_volts!r}: must be > 0")

    def solve(self, factorize, excitation, ohms: np.ndarray):
        """The settled State of one sample: ``factorize(ohms)`` gives a Factorization, ``ohms``
        (m,) the resistances at zero volts."""
        edges = np.asarray(self.edges, dtype=np.int64)
        base = np.asarray(ohms, dtype=float)
        g0 = 1.0 / base[edges]
        g = g0.copy()
        for _ in range(MAX_ITERATIONS):
            current = base.copy()
            current[edges] = 1.0 / g
            state = factorize(current).solve(excitation)
            volts = state.edge_voltages(edges)
            if volts.ndim == 2:
                if volts.shape[1] != 1:
                    raise SolverError("voltage-dependent edges are solved one sample at a time")
                volts = volts[:, 0]
            wanted = g0 * (1.0 + (volts / self.knee_volts) ** 2)
            if np.max(np.abs(wanted - g) / g) < RELATIVE_TOLERANCE:
                return state
            g = (1.0 - DAMPING) * g + DAMPING * wanted
        raise SolverError(f"voltage-dependent edges did not settle in {MAX_ITERATIONS} iterations "
                          f"(knee {self.knee_volts:g} V, largest voltage {np.max(np.abs(volts)):.3g} V)")
