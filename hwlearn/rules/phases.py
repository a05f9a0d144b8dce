"""The data of a phase-based rule: its phases after the free one, its terms, and what a phase
measures. Conventions and units: docs/theory.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from hwlearn.ports import Ports

FREE = "free"
Mode = Literal["current", "series", "clamp"]


def as_columns(values, rows: int, what: str) -> np.ndarray:
    """``values`` as a column block (rows, B); a vector is one column."""
    arr = np.asarray(values, dtype=float)
    arr = arr[:, None] if arr.ndim == 1 else arr
    if arr.shape[0] != rows:
        raise ValueError(f"{what} has {arr.shape[0]} rows, expected {rows}")
    return arr


def output_rows(ports: Ports, edges: np.ndarray) -> np.ndarray:
    """Row of each output within ``edges`` (-1 where an output is not among them)."""
    slot = np.full(ports.network.n_edges, -1, dtype=np.int64)
    slot[np.asarray(edges, dtype=np.int64)] = np.arange(len(edges))
    return slot[ports.outputs]


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
    """coef * mean over samples of (i_left * i_right), the branch currents of two phases."""

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


def stack(blocks: list[dict[str, PhaseMeasurement]]) -> dict[str, PhaseMeasurement]:
    """Measurements of consecutive sample blocks joined into one block per phase."""
    joined = {}
    for name, first in blocks[0].items():
        volts = np.hstack([m[name].voltages for m in blocks])
        series = None if first.series is None else np.hstack([m[name].series for m in blocks])
        joined[name] = PhaseMeasurement(volts, series)
    return joined
