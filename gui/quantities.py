"""The quantities an edge map can colour by, from a run's recorded arrays (no Qt here).

The trainer records, every ``record.array_every`` steps: ``resistances`` (m,) ohms, ``update``
(k,) ohms and ``gradient`` (k,) on the learnable edges, and ``v_free`` and ``v_<phase>`` (m,)
resistor voltages of one sample in each phase (NaN where the rig cannot read).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Quantity:
    key: str
    label: str
    unit: str
    array: str          # the recorded array it comes from
    log: bool = False    # coloured by log10 of the value
    signed: bool = False  # levels symmetric about 0, a diverging colour map
    invert: bool = False  # 1 / value (conductance from resistance)
    learnable_only: bool = False  # recorded on the learnable edges only

    def values(self, arrays: dict[str, np.ndarray], learnable: np.ndarray, m: int) -> np.ndarray | None:
        """(m,) values per edge (NaN where the edge has none), or None if not recorded."""
        raw = arrays.get(self.array)
        if raw is None:
            return None
        raw = np.asarray(raw, dtype=float)
        if self.learnable_only:
            full = np.full(m, np.nan)
            if raw.shape == (learnable.size,):
                full[learnable] = raw
            raw = full
        if raw.shape != (m,):
            return None
        if self.invert:
            with np.errstate(divide="ignore", invalid="ignore"):
                raw = 1.0 / raw
        return raw

    def colour_values(self, values: np.ndarray) -> np.ndarray:
        """What the colour scale measures: log10 of positive values for a log quantity."""
        if not self.log:
            return values
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(values > 0, np.log10(values), np.nan)


BASE = (
    Quantity("resistance", "resistance", "Ω", "resistances", log=True),
    Quantity("conductance", "conductance", "S", "resistances", log=True, invert=True),
)
UPDATES = (
    Quantity("update", "last update", "Ω", "update", signed=True, learnable_only=True),
    Quantity("gradient", "gradient estimate", "1/Ω", "gradient", signed=True, learnable_only=True),
)


def phase_quantity(array_name: str) -> Quantity:
    phase = array_name[2:]
    return Quantity(array_name, f"voltage drop, {phase} phase", "V", array_name, signed=True)


def available(array_names) -> list[Quantity]:
    """Every quantity the run records, in menu order: resistance, conductance, the free phase's
    voltage drop, the other phases', the last update, the gradient estimate."""
    names = set(array_names)
    phases = sorted(n for n in names if n.startswith("v_") and n != "v_free")
    found = [q for q in BASE if q.array in names]
    if "v_free" in names:
        found.append(phase_quantity("v_free"))
    found += [phase_quantity(n) for n in phases]
    found += [q for q in UPDATES if q.array in names]
    return found


def default_levels(quantity: Quantity, values: np.ndarray) -> tuple[float, float]:
    """Fixed colour levels for ``values`` (already in colour units): the finite range, made
    symmetric for a signed quantity, widened when it is empty."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (-1.0, 1.0) if quantity.signed else (0.0, 1.0)
    if quantity.signed:
        top = float(np.max(np.abs(finite)))
        top = top if top > 0 else 1.0
        return -top, top
    low, high = float(finite.min()), float(finite.max())
    if high - low < 1e-12 * max(abs(high), 1.0):
        pad = 0.5 if quantity.log else max(abs(high) * 0.1, 1e-12)
        return low - pad, high + pad
    return low, high


_PREFIXES = [(1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")]


def si(value: float, unit: str) -> str:
    """3 significant digits with an SI prefix: 12.3 kΩ, -450 µV; 'no value' for NaN."""
    if value is None or not math.isfinite(value):
        return "no value"
    if value == 0:
        return f"0 {unit}"
    magnitude = abs(value)
    for factor, prefix in _PREFIXES:
        if magnitude >= factor * 0.9995:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"
