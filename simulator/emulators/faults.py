"""Seeded fault injection for the emulators: the failures a real bench has, at given rates,
reproducible for a seed and a sequence of requests, each one logged and counted.

Per reply (the servers draw once for every line that has a reply, in order, from a generator
seeded by the seed and the instrument's name, so one instrument's faults do not depend on
another's traffic):

- ``timeout``    the reply is dropped (the host's read times out);
- ``late``       the reply is sent after ``late_s`` seconds (longer than a client's timeout: it
                 arrives when the host has given up on it and is waiting for another);
- ``garbled``    one bit of the reply is flipped or the reply is cut short (its newline kept);
                 for the resistor board the flip is in the frame, so its CRC-8 fails;
- ``disconnect`` the connection is closed instead of answering (on a serial link: the reply
                 is lost and the link stays up, as when a USB adapter drops bytes);
- ``reboot``     the instrument loses power before answering: no reply, and it comes back in
                 its power-on state (a SCPI instrument with PON set in *ESR?, a 2450 in the
                 language it saved; the board with every channel at the safe code, watchdog
                 disarmed and not tripped).

Per device event (drawn by the virtual bench):

- ``stuck``      at a board SET, with this probability one of the channels it writes stops
                 following writes from then on (a dead potentiometer);
- ``drift``      at a scan, with this probability one tunable edge starts drifting by
                 ``drift_per_read`` (relative) at every later scan.

``FaultLog`` records every fault injected (when, which instrument, what, the request it hit)
and counts them per instrument and kind.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, fields

REPLY_KINDS = ("timeout", "late", "garbled", "disconnect", "reboot")
DEVICE_KINDS = ("stuck", "drift")
KINDS = REPLY_KINDS + DEVICE_KINDS


@dataclass(frozen=True)
class FaultRates:
    """Probabilities in [0, 1] per reply (REPLY_KINDS, summing to at most 1) and per device
    event (DEVICE_KINDS); ``late_s`` the delay of a late reply, ``drift_per_read`` the relative
    change of a drifting edge per scan."""

    timeout: float = 0.0
    late: float = 0.0
    garbled: float = 0.0
    disconnect: float = 0.0
    reboot: float = 0.0
    stuck: float = 0.0
    drift: float = 0.0
    late_s: float = 3.0
    drift_per_read: float = 1e-3

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"fault {f.name} = {value!r}: expected a finite number")
            if f.name in KINDS and not 0.0 <= value <= 1.0:
                raise ValueError(f"fault rate {f.name} = {value!r}: expected a probability in [0, 1]")
        if self.late_s <= 0:
            raise ValueError(f"fault late_s = {self.late_s!r}: expected seconds > 0")
        total = sum(getattr(self, kind) for kind in REPLY_KINDS)
        if total > 1.0 + 1e-12:
            raise ValueError(f"fault rates per reply ({', '.join(REPLY_KINDS)}) sum to {total:g}, "
                             "more than 1")

    @property
    def any(self) -> bool:
        return any(getattr(self, kind) > 0 for kind in KINDS)


@dataclass(frozen=True)
class FaultEvent:
    """One injected fault: when (time.monotonic()), on which instrument, what, on which line."""

    time: float
    instrument: str
    kind: str
    line: str


class FaultLog:
    """Every fault injected on a bench, thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._events: list[FaultEvent] = []

    def record(self, instrument: str, kind: str, line: str = "") -> None:
        with self._lock:
            self._events.append(FaultEvent(time.monotonic(), instrument, kind, line))

    def events(self) -> list[FaultEvent]:
        with self._lock:
            return list(self._events)

    def counts(self) -> dict[str, dict[str, int]]:
        """instrument -> kind -> number injected (only kinds that occurred)."""
        found: dict[str, Counter] = {}
        for event in self.events():
            found.setdefault(event.instrument, Counter())[event.kind] += 1
        return {name: dict(counter) for name, counter in found.items()}

    def total(self, kind: str | None = None) -> int:
        return sum(1 for e in self.events() if kind is None or e.kind == kind)


class FaultPlan:
    """One instrument's faults: its own generator, seeded by (seed, instrument)."""

    def __init__(self, rates: FaultRates, seed: int, instrument: str, log: FaultLog, *,
                 framed: bool = False):
        self.rates = rates
        self.instrument = instrument
        self.log = log
        self.framed = framed  # replies end in '*HH' (the board): a flip lands before it
        self._rng = random.Random(f"{int(seed)}:{instrument}")
        self._lock = threading.Lock()
        self.active = True  # False: no draw and no fault (a window of a test, e.g. one run)

    def draw_reply(self, line: str) -> str | None:
        """The fault for the reply to ``line`` (one draw per reply), logged; None: none."""
        if not self.active:
            return None
        with self._lock:
            u = self._rng.random()
        edge = 0.0
        for kind in REPLY_KINDS:
            edge += getattr(self.rates, kind)
            if u < edge:
                self.log.record(self.instrument, kind, line)
                return kind
        return None

    def draw_event(self, kind: str, detail: str = "") -> bool:
        """True (and logged) if the device event ``kind`` happens now (one draw)."""
        if not self.active:
            return False
        with self._lock:
            happens = self._rng.random() < getattr(self.rates, kind)
        if happens:
            self.log.record(self.instrument, kind, detail)
        return happens

    def choose(self, options: list):
        with self._lock:
            return options[self._rng.randrange(len(options))]

    def garble(self, reply: bytes) -> bytes:
        """``reply`` (ending in LF) with one bit flipped or cut short; the LF is kept and no
        LF or CR appears inside it."""
        body = reply[:-1]
        with self._lock:
            truncate = not self.framed and len(body) > 1 and self._rng.random() < 0.5
            position = self._rng.randrange(max(len(body) - (3 if self.framed else 0), 1))
            bit = 1 << self._rng.randrange(7)
        if truncate:
            return body[:max(position, 1)] + b"\n"
        data = bytearray(body or b" ")
        flipped = data[position] ^ bit
        if flipped in (0x0A, 0x0D):
            flipped = data[position] ^ (bit << 1 if bit < 64 else 1)
        data[position] = flipped
        return bytes(data) + b"\n"
