"""What every learning rule shares: phases, measured phase quantities, and the estimate.

Every rule of PAPER.md except finite differences has the same shape. After the free phase
(inputs on, outputs open) it runs one or two more phases, each driving the output edges with
a * y_hat + b * y (y_hat: free outputs, y: targets) as current sources, series sources or
voltage clamps, with the inputs on or off. Its gradient estimate is then, edge by edge, a sum
of terms coef * mean_over_samples(i_p * i_q) over pairs of phase currents. Writing rules in
that form lets one piece of code evaluate them from measured voltages (a bench), from solver
states (simulation), or for a whole batch at once through linearity (hwlearn.rules.linear).

Estimates are in gradient units (dL/dr, watts for L in V^2 and r in ohms): a perfect estimator
returns grad_r L, and the descent step is r <- r - lr * estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

FREE = "free"
Mode = Literal["current", "series", "clamp"]


@dataclass(frozen=True)
class Phase:
    """A phase after the free one. The output drive is ``a * y_hat + b * y`` per output:
    amps for 'current' (beside the resistor, a -> b), volts for 'series' (in series with the
    resistor, positive terminal at a) and 'clamp' (holding the resistor's voltage)."""

    name: str
    inputs_on: bool
    mode: Mode
    a: float
    b: float

    def drive_values(self, y_hat: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.a * y_hat + self.b * y

    def rig_drive(self, y_hat: np.ndarray, y: np.ndarray, output_ohms: np.ndarray) -> tuple[str, np.ndarray]:
        """The drive as a rig applies it: ('current', amps) or ('clamp', volts), shape (d_out, B).

        A series source s beside nothing is realised in its Norton form: a current source
        -s / r beside the output resistor gives the same branch current g (v - s).
        """
        values = self.drive_values(y_hat, y)
        if self.mode == "series":
            return "current", -values / np.asarray(output_ohms, dtype=float)[:, None]
        return self.mode, values

    def series_equivalent(self, y_hat: np.ndarray, y: np.ndarray, output_rows: np.ndarray,
                          n_edges: int) -> np.ndarray | None:
        """(k, B) series source volts to subtract on the measured edges (rows ``output_rows``
        of the measured set are the outputs, in output order; -1 where an output is not
        measured), or None when the phase has no series source."""
        if self.mode != "series":
            return None
        values = self.drive_values(y_hat, y)
        series = np.zeros((n_edges, values.shape[1]))
        hit = output_rows >= 0
        series[output_rows[hit]] = values[hit]
        return series


@dataclass(frozen=True)
class Term:
    coef: float
    left: str
    right: str


@dataclass(frozen=True)
class PhaseMeasurement:
    """Resistor voltages measured in one phase, (k, B) over the measured edges.

    ``series`` holds the series-source volts of a 'series' phase on the same rows (the
    outputs), so that branch currents are g (v - s) as the theory has them.
    """

    voltages: np.ndarray
    series: np.ndarray | None = None

    def currents(self, resistance: np.ndarray) -> np.ndarray:
        v = self.voltages if self.series is None else self.voltages - self.series
        return v / np.asarray(resistance, dtype=float)[:, None]


class BilinearRule:
    """A rule given by its phases and its terms; subclasses set ``name``, ``phases`` and ``terms``."""

    name: str
    phases: tuple[Phase, ...]
    terms: tuple[Term, ...]

    def gradient_from_currents(self, currents: Mapping[str, np.ndarray]) -> np.ndarray:
        """(k,) estimate from branch currents (k, B) per phase name (incl. 'free')."""
        total = None
        for term in self.terms:
            part = term.coef * np.mean(currents[term.left] * currents[term.right], axis=1)
            total = part if total is None else total + part
        return total

    def gradient_from_measurements(self, measurements: Mapping[str, PhaseMeasurement],
                                   resistance: np.ndarray) -> np.ndarray:
        """(k,) estimate from measured phase voltages on k edges with these resistances (ohms)."""
        missing = {FREE, *(p.name for p in self.phases)} - set(measurements)
        if missing:
            raise ValueError(f"rule '{self.name}' needs phase(s) {sorted(missing)}; "
                             f"got {sorted(measurements)}")
        currents = {name: m.currents(resistance) for name, m in measurements.items()}
        return self.gradient_from_currents(currents)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"
