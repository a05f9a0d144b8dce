"""Write and verify: bring one memristive device to a target conductance by bounded pulses.

The algorithm is a plan (Bluesky's shape, as hwlearn.messages): a generator that yields what it
wants done and receives each result, so the same code runs on a bench (drivers/bench/crossbar.py
executes it with its instruments), on a simulated device and under a property test that feeds
it arbitrary responses (tests/test_write_verify.py: no pulse ever leaves the limits).

    plan = write_verify(target_siemens, limits)
    request = next(plan)                 # READ: answer the conductance in siemens
    request = plan.send(1.2e-4)          # Pulse(volts, width_s): answer True if it hit compliance
    ...                                  # StopIteration.value: the WriteOutcome

Polarity: a pulse's volts are the device voltage, a side minus b side; positive pulses SET
(raise the conductance), negative ones RESET (lower it). Amplitudes follow incremental step
pulse programming: each polarity starts at its lowest amplitude and rises by ``step_volts`` while
a pulse moves the conductance less than half the way to the target; a pulse that overshoots
lowers the amplitude of its polarity by a step, and so does one that hit the compliance. So every
amplitude stays in its polarity's range, every pulse has the one width, and a write makes at
most ``max_pulses`` pulses (docs/crossbar.md, "Write and verify").
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass

from hwlearn.errors import HwlearnError


class LimitsError(HwlearnError, ValueError):
    """Pulse limits that are not finite, not positive or not ordered."""


@dataclass(frozen=True)
class PulseLimits:
    """Bounds of one write (SI units; device volts).

    set_volts         : (lowest, highest) amplitude of a SET pulse, > 0 (applied positive).
    reset_volts       : (lowest, highest) amplitude of a RESET pulse, > 0 (applied negative).
    step_volts        : amplitude change from one pulse to the next, > 0.
    width_s           : the width of every pulse, > 0.
    max_pulses        : pulses one write may make, >= 1.
    tolerance_siemens : a conductance within this of the target is written, > 0.
    stall_pulses      : pulses at the highest amplitude that move the conductance by less than a
                        quarter of the tolerance before the device is given up as stuck, >= 1.
    """

    set_volts: tuple[float, float]
    reset_volts: tuple[float, float]
    step_volts: float
    width_s: float
    max_pulses: int
    tolerance_siemens: float
    stall_pulses: int = 4

    def __post_init__(self):
        for key in ("set_volts", "reset_volts"):
            low, high = getattr(self, key)
            if not (_positive(low) and _positive(high) and low <= high):
                raise LimitsError(f"pulse limits: {key} = {getattr(self, key)!r}: expected finite "
                                  "0 < lowest <= highest")
        for key in ("step_volts", "width_s", "tolerance_siemens"):
            if not _positive(getattr(self, key)):
                raise LimitsError(f"pulse limits: {key} = {getattr(self, key)!r}: expected a finite number > 0")
        for key in ("max_pulses", "stall_pulses"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LimitsError(f"pulse limits: {key} = {value!r}: expected an integer >= 1")

    def amplitudes(self, polarity: int) -> tuple[float, float]:
        return self.set_volts if polarity > 0 else self.reset_volts


def _positive(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value > 0)


@dataclass(frozen=True)
class Read:
    """Read the device's conductance (siemens) at the bench's read voltage."""


READ = Read()


@dataclass(frozen=True)
class Pulse:
    """One pulse of ``volts`` across the device (a minus b) for ``width_s`` seconds."""

    volts: float
    width_s: float


@dataclass(frozen=True)
class WriteOutcome:
    """How a write ended: the last conductance read, the pulses made, and whether it is within
    the tolerance; ``reason`` says why not ('' when converged); ``stuck``: given up because the
    highest amplitude no longer moved it."""

    target_siemens: float
    siemens: float
    pulses: int
    converged: bool
    reason: str = ""
    stuck: bool = False


WritePlan = Generator[Read | Pulse, object, WriteOutcome]


def write_verify(target_siemens: float, limits: PulseLimits) -> WritePlan:
    """The write of one device to ``target_siemens`` (see the module docstring)."""
    tolerance = limits.tolerance_siemens
    amplitude = {+1: limits.set_volts[0], -1: limits.reset_volts[0]}
    g = yield READ
    if not _finite(g):
        return WriteOutcome(target_siemens, math.nan, 0, False, f"unreadable conductance {g!r}")
    g = float(g)
    pulses, last, stalled = 0, 0, 0
    while True:
        error = target_siemens - g
        if abs(error) <= tolerance:
            return WriteOutcome(target_siemens, g, pulses, True)
        if pulses >= limits.max_pulses:
            return WriteOutcome(target_siemens, g, pulses, False, f"not within {tolerance:.3g} S after "
                                f"{pulses} pulses (max_pulses)")
        polarity = 1 if error > 0 else -1
        low, high = limits.amplitudes(polarity)
        if last == -polarity:
            # The last pulse (the other polarity) went past the target: that polarity gets gentler.
            other_low, _ = limits.amplitudes(-polarity)
            amplitude[-polarity] = max(other_low, amplitude[-polarity] - limits.step_volts)
        volts = min(max(amplitude[polarity], low), high)
        limited = yield Pulse(polarity * volts, limits.width_s)
        pulses += 1
        last = polarity
        before, g = g, (yield READ)
        if not _finite(g):
            return WriteOutcome(target_siemens, math.nan, pulses, False, f"unreadable conductance {g!r}")
        g = float(g)
        moved = (g - before) * polarity
        if limited:
            amplitude[polarity] = max(low, volts - limits.step_volts)
        elif moved < 0.5 * abs(error):
            amplitude[polarity] = min(high, volts + limits.step_volts)
        stalled = stalled + 1 if (volts >= high and moved < 0.25 * tolerance) else 0
        if stalled >= limits.stall_pulses:
            return WriteOutcome(target_siemens, g, pulses, False, f"{stalled} pulses at the highest amplitude "
                                f"{polarity * high:+g} V moved it by less than {0.25 * tolerance:.3g} S: stuck?",
                                stuck=True)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
