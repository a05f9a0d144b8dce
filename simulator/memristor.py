"""A memristive device that responds to voltage pulses as the published models do.

Each device has a conductance window [g_min, g_max]. A SET pulse (positive device voltage) raises
its conductance, a RESET pulse (negative) lowers it, by steps that shrink as the conductance nears
the end it moves towards: the exponential-saturation form of the nonlinear weight-update models
used in crossbar simulators (NeuroSim's, after Chen and Yu):

    SET:    G' = G + (S_set - G) (1 - exp(-p nu_set / P)),    S_set   = g_min + W / (1 - exp(-nu_set))
    RESET:  G' = G - (G - S_reset) (1 - exp(-p nu_reset / P)), S_reset = g_max - W / (1 - exp(-nu_reset))

with W = g_max - g_min, P the reference pulses that take the device across its window, nu_set and
nu_reset the nonlinearities (0 would be linear; different values make SET and RESET asymmetric),
and p the pulse's strength in reference pulses. From g_min, P reference SET pulses reach exactly
g_max, and P RESET pulses from g_max reach exactly g_min. The result is clipped to the window.
Cycle-to-cycle variation adds Gaussian noise of ``c2c`` W sqrt(p) to every pulse's change;
device-to-device variation draws each device's parameters around the population's; a fraction of
devices is stuck (at g_min or g_max) and ignores pulses.

A pulse's strength depends on its amplitude and width (a threshold, VTEAM-like kinetics): below
the polarity's threshold nothing happens (a read, a half-selected device in the V/2 scheme), above
it p = (width / reference width) ((|v| - threshold) / (reference volts - threshold))^exponent, so the
reference pulse is one step. docs/crossbar.md, "The device model", has the parameters of the
virtual crossbar and the literature they follow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

STUCK = ("", "low", "high")


@dataclass(frozen=True)
class DeviceParameters:
    """One device's pulse response (siemens; ``pulses`` in reference pulses; ``c2c`` a fraction
    of the window per reference pulse; ``stuck`` '' or 'low'/'high': held at g_min/g_max)."""

    g_min: float
    g_max: float
    pulses: float
    nu_set: float
    nu_reset: float
    c2c: float = 0.0
    stuck: str = ""

    def __post_init__(self):
        for key in ("g_min", "g_max", "pulses"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"device parameters: {key} = {value!r}: must be a finite number > 0")
        if not self.g_min < self.g_max:
            raise ValueError(f"device parameters: g_min = {self.g_min!r} must be below g_max = {self.g_max!r}")
        for key in ("nu_set", "nu_reset", "c2c"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"device parameters: {key} = {value!r}: must be a finite number >= 0")
        if self.stuck not in STUCK:
            raise ValueError(f"device parameters: stuck = {self.stuck!r}: one of {STUCK}")

    @property
    def window(self) -> float:
        return self.g_max - self.g_min

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PulseKinetics:
    """How amplitude and width set a pulse's strength (shared by a bench's devices)."""

    set_threshold_volts: float = 1.0
    reset_threshold_volts: float = 1.0
    reference_volts: float = 1.5
    reference_width_s: float = 1e-3
    exponent: float = 2.0

    def __post_init__(self):
        for key, value in asdict(self).items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"pulse kinetics: {key} = {value!r}: must be a finite number > 0")
        if self.reference_volts <= max(self.set_threshold_volts, self.reset_threshold_volts):
            raise ValueError(f"pulse kinetics: reference_volts = {self.reference_volts!r} must exceed both "
                             "thresholds (the reference pulse switches the device)")

    def strength(self, volts: np.ndarray, width_s: float) -> np.ndarray:
        """Reference pulses a pulse of ``volts`` (per device, signed) and ``width_s`` is worth
        (0 below the threshold of its polarity)."""
        v = np.asarray(volts, dtype=float)
        threshold = np.where(v >= 0, self.set_threshold_volts, self.reset_threshold_volts)
        over = np.maximum(np.abs(v) - threshold, 0.0) / (self.reference_volts - threshold)
        return (width_s / self.reference_width_s) * over ** self.exponent


def saturation(p: DeviceParameters, polarity: int) -> float:
    """The conductance each step of ``polarity`` heads for (beyond the window's end)."""
    nu = p.nu_set if polarity > 0 else p.nu_reset
    reach = p.window / -math.expm1(-nu) if nu > 1e-12 else math.inf
    return p.g_min + reach if polarity > 0 else p.g_max - reach


def step(p: DeviceParameters, g: float, polarity: int, strength: float = 1.0) -> float:
    """The conductance after a noise-free pulse of ``polarity`` worth ``strength`` reference
    pulses, from ``g`` (clipped to the window)."""
    if strength <= 0 or p.stuck:
        return g
    nu = p.nu_set if polarity > 0 else p.nu_reset
    if nu > 1e-12:
        target = saturation(p, polarity)
        new = g + (target - g) * -math.expm1(-strength * nu / p.pulses)
    else:
        new = g + polarity * p.window * strength / p.pulses
    return min(max(new, p.g_min), p.g_max)


@dataclass(frozen=True)
class Population:
    """The devices of a crossbar: population parameters and how devices differ.

    d2d           : relative (log-normal) spread of each device's g_min, g_max, pulses, nu_set
                    and nu_reset around the population's.
    stuck_fraction: share of devices stuck, half at g_min and half at g_max.
    """

    typical: DeviceParameters
    d2d: float = 0.0
    stuck_fraction: float = 0.0

    def draw(self, count: int, rng: np.random.Generator) -> list[DeviceParameters]:
        t = self.typical
        devices = []
        for _ in range(count):
            spread = np.exp(self.d2d * rng.standard_normal(5))
            g_min, g_max = t.g_min * spread[0], t.g_max * spread[1]
            if g_max <= 1.5 * g_min:
                g_max = 1.5 * g_min  # a device keeps a window
            stuck = ""
            if rng.random() < self.stuck_fraction:
                stuck = "low" if rng.random() < 0.5 else "high"
            devices.append(replace(t, g_min=g_min, g_max=g_max, pulses=t.pulses * spread[2],
                                   nu_set=t.nu_set * spread[3], nu_reset=t.nu_reset * spread[4], stuck=stuck))
        return devices


@dataclass
class MemristorArray:
    """Devices, their conductances and the pulses that change them."""

    devices: list[DeviceParameters]
    kinetics: PulseKinetics
    rng: np.random.Generator
    g: np.ndarray = field(default=None)
    pulses_seen: int = 0   # pulses above a threshold, over all devices (a counter for tests)

    def __post_init__(self):
        if self.g is None:
            self.g = np.array([self._rest(d) for d in self.devices], dtype=float)
        self.g = np.asarray(self.g, dtype=float).copy()

    @staticmethod
    def _rest(d: DeviceParameters) -> float:
        if d.stuck == "high":
            return d.g_max
        if d.stuck == "low":
            return d.g_min
        return math.sqrt(d.g_min * d.g_max)

    @classmethod
    def of(cls, population: Population, count: int, kinetics: PulseKinetics, seed: int) -> MemristorArray:
        rng = np.random.default_rng(seed)
        return cls(population.draw(count, rng), kinetics, rng)

    @property
    def g_min(self) -> np.ndarray:
        return np.array([d.g_min for d in self.devices])

    @property
    def g_max(self) -> np.ndarray:
        return np.array([d.g_max for d in self.devices])

    def pulse(self, volts: np.ndarray, width_s: float) -> np.ndarray:
        """Every device sees its voltage (signed: a side minus b side) for ``width_s``; returns
        the strengths (reference pulses) that reached them."""
        strength = self.kinetics.strength(volts, width_s)
        for k in np.flatnonzero(strength > 0):
            d = self.devices[k]
            if d.stuck:
                continue
            polarity = 1 if volts[k] > 0 else -1
            new = step(d, float(self.g[k]), polarity, float(strength[k]))
            if d.c2c:
                new += d.c2c * d.window * math.sqrt(strength[k]) * self.rng.standard_normal()
            self.g[k] = min(max(new, d.g_min), d.g_max)
            self.pulses_seen += 1
        return strength

    def set_conductance(self, siemens: Sequence[float]) -> None:
        """Put the devices at these conductances (a fresh array's state; stuck ones keep theirs)."""
        for k, value in enumerate(siemens):
            d = self.devices[k]
            if not d.stuck:
                self.g[k] = min(max(float(value), d.g_min), d.g_max)

    def state(self) -> dict:
        return {"g": self.g.tolist(), "devices": [d.as_dict() for d in self.devices]}


def parameters_from(doc: Mapping) -> DeviceParameters:
    """DeviceParameters from a mapping (a calibration file's entry); unknown keys ignored."""
    keys = {f for f in DeviceParameters.__dataclass_fields__}
    return DeviceParameters(**{k: v for k, v in doc.items() if k in keys})
