"""Supervision: what holds a run while a condition lasts, and what refuses a reading.

A bench run lasts hours, unattended. The supervisor watches three conditions and suspends the
run (the rig idle, the run paused with the reason recorded) while any of them holds:

- the rig says it must not go on (``Rig.holds()``: a board whose heartbeat was lost, an
  instrument that is not answering);
- readings were refused (compliance, out of band) more often than ``compliance_per_minute``
  within the last minute;
- link faults (timeouts, garbled replies, lost links the transports survived) came more often
  than ``faults_per_minute`` within the last minute.

When every condition has cleared the run resumes, or aborts, as ``on_clear`` says; a suspension
longer than ``max_suspended_s`` aborts. A refused reading (a unit in compliance, a voltage beyond
``reading_band_volts``) never reaches a rule: the engine measures again, up to
``reading_retries`` times, and counts the trip.

The [supervision] table of the experiment file sets the policy (docs/configuration.md); without
one, a refused reading fails the run at once, as it always did.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hwlearn.rig import RigError

WINDOW_S = 60.0


class ReadingRefused(RigError):
    """A reading that must not reach a rule (a source in compliance, a value out of band,
    overrange or NaN); the same measurement may be taken again. ``kind`` says which."""

    def __init__(self, message: str, kind: str = "compliance"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Policy:
    """The experiment file's [supervision] table (None: no limit of that kind)."""

    compliance_per_minute: float | None = None
    faults_per_minute: float | None = None
    reading_band_volts: float | None = None
    reading_retries: int = 0
    on_clear: str = "resume"
    max_suspended_s: float = 300.0
    poll_s: float = 1.0

    @classmethod
    def from_config(cls, table: dict | None) -> Policy:
        return cls(**(table or {}))

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.compliance_per_minute, self.faults_per_minute,
                                            self.reading_band_volts)) or self.reading_retries > 0


class Supervisor:
    """Counts trips and faults in a sliding minute and says what holds the run now."""

    def __init__(self, policy: Policy, clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self.clock = clock
        self._trips: deque[float] = deque()
        self._faults: deque[float] = deque()

    def trip(self) -> None:
        """A refused reading (compliance, out of band)."""
        self._trips.append(self.clock())

    def fault(self) -> None:
        """A fault of an instrument link, survived or not."""
        self._faults.append(self.clock())

    def reasons(self, rig_holds: list[str]) -> list[str]:
        """Why the run must wait now; empty when it may go on."""
        now = self.clock()
        for times in (self._trips, self._faults):
            while times and now - times[0] > WINDOW_S:
                times.popleft()
        found = list(rig_holds)
        p = self.policy
        if p.compliance_per_minute is not None and len(self._trips) > p.compliance_per_minute:
            found.append(f"{len(self._trips)} readings refused in the last minute "
                         f"(supervision.compliance_per_minute = {p.compliance_per_minute:g})")
        if p.faults_per_minute is not None and len(self._faults) > p.faults_per_minute:
            found.append(f"{len(self._faults)} link faults in the last minute "
                         f"(supervision.faults_per_minute = {p.faults_per_minute:g})")
        return found

    def out_of_band(self, volts) -> float | None:
        """The largest |reading| when it lies beyond the band, else None."""
        band = self.policy.reading_band_volts
        if band is None or len(volts) == 0:
            return None
        worst = float(np.max(np.abs(volts)))
        return worst if not worst <= band else None
