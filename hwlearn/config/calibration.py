"""Code <-> ohms maps of the resistor board's channels (the bench file's [calibration]).

A channel's calibration lists the resistance of every code the bench allows on it, codes
``code_min`` .. ``code_max``: either a linear model of a digital potentiometer used as a rheostat,
R(code) = wiper_ohms + end_to_end_ohms * code / levels (MCP4251: levels 256, codes 0..256), or an
explicit table measured on the bench. Going from ohms to a code picks the nearest calibrated
value; a request outside the calibrated span raises instead of clipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChannelCalibration:
    """Ohms of codes ``code_min`` .. ``code_min + len(ohms) - 1`` of one board channel."""

    code_min: int
    ohms: tuple[float, ...]
    description: str = ""

    @classmethod
    def linear(cls, *, wiper_ohms: float, end_to_end_ohms: float, levels: int, code_min: int,
               code_max: int) -> ChannelCalibration:
        codes = np.arange(code_min, code_max + 1, dtype=float)
        ohms = wiper_ohms + end_to_end_ohms * codes / levels
        return cls(code_min, tuple(float(r) for r in ohms),
                   f"linear {wiper_ohms:g} + {end_to_end_ohms:g} x code / {levels}")

    @classmethod
    def table(cls, ohms, *, code_min: int) -> ChannelCalibration:
        return cls(code_min, tuple(float(r) for r in ohms), f"table of {len(ohms)} codes")

    @property
    def code_max(self) -> int:
        return self.code_min + len(self.ohms) - 1

    @property
    def lowest_ohms(self) -> float:
        return min(self.ohms)

    @property
    def highest_ohms(self) -> float:
        return max(self.ohms)

    def covers(self, code: int) -> bool:
        return self.code_min <= code <= self.code_max

    def ohms_of(self, code: int) -> float:
        """Ohms of ``code``; ValueError for a code this calibration does not cover."""
        if not self.covers(code):
            raise ValueError(f"code {code} is outside the calibrated codes "
                             f"{self.code_min}..{self.code_max}")
        return self.ohms[code - self.code_min]

    def nearest_code(self, ohms: float) -> int:
        """The code whose calibrated resistance is nearest ``ohms``; ValueError outside the
        calibrated span [lowest_ohms, highest_ohms] (nothing is clipped)."""
        if not (np.isfinite(ohms) and self.lowest_ohms <= ohms <= self.highest_ohms):
            raise ValueError(f"{ohms!r} ohm is outside the calibrated range "
                             f"{self.lowest_ohms:g}..{self.highest_ohms:g} ohm")
        return self.code_min + int(np.argmin(np.abs(np.asarray(self.ohms) - ohms)))
