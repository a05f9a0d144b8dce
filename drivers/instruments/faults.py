"""Faults of the links to the instruments, counted and reported upward.

A transport or a driver that meets a fault (a reply that did not come in time, a late reply
discarded, a garbled line, a lost link, a board that rebooted) reports it here, whether it then
recovered or not; the run records one event per report. ``FaultLog`` is shared by every
transport of a bench:

    faults = FaultLog()
    faults.on_fault = lambda kind, instrument, detail: print(kind, instrument, detail)
    ...
    faults.counts            # Counter {(kind, instrument): n}
    faults.by_kind()         # {kind: n}
    faults.events            # the last MAX_EVENTS Fault records, oldest first

The hook is called in the thread that met the fault (a heartbeat thread too), after the count is
updated, outside every lock of the log; it must be quick and thread-safe. An exception raised by
a hook is logged and swallowed: reporting a fault must never add one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("hwlearn.faults")

# Kinds of fault, as reported.
TIMEOUT = "timeout"              # no complete reply within the timeout
STALE = "stale_reply"            # a late reply to an earlier request, discarded
RESYNC = "resync"                # device clear and marker query after a timeout
GARBLED = "garbled"              # a reply with a bad checksum or shape, discarded
DISCONNECT = "disconnect"        # the link failed (closed, reset, device gone)
RECONNECT = "reconnect"          # the link was opened again and the instrument verified
REBOOT = "reboot"                # the resistor board restarted (its codes went to the safe code)
WATCHDOG = "watchdog_tripped"    # the board's watchdog fired mid-run (the host was silent too long)
SAFE_STATE = "safe_state_failed" # an instrument could not be made safe
KINDS = (TIMEOUT, STALE, RESYNC, GARBLED, DISCONNECT, RECONNECT, REBOOT, WATCHDOG, SAFE_STATE)

MAX_EVENTS = 1000


@dataclass(frozen=True)
class Fault:
    kind: str
    instrument: str
    detail: str
    recovered: bool   # False: the operation that met it failed too
    time: float       # time.monotonic()


class FaultLog:
    """Thread-safe counts of faults per (kind, instrument), the recent records, and hooks."""

    def __init__(self, on_fault: Callable[[str, str, str], None] | None = None):
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.events: deque[Fault] = deque(maxlen=MAX_EVENTS)
        self.on_fault = on_fault  # (kind, instrument, detail) -> None; may be set at any time

    def report(self, kind: str, instrument: str, detail: str, *, recovered: bool = True) -> None:
        fault = Fault(kind, instrument, detail, recovered, time.monotonic())
        with self._lock:
            self.counts[(kind, instrument)] += 1
            self.events.append(fault)
        (log.warning if recovered else log.error)("%s: %s: %s", instrument, kind, detail)
        hook = self.on_fault
        if hook is not None:
            try:
                hook(kind, instrument, detail)
            except Exception:  # a failing subscriber must not turn a recovered fault into a failure
                log.exception("the on_fault hook failed on %s %s", kind, instrument)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def by_kind(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        with self._lock:
            for (kind, _), n in self.counts.items():
                out[kind] += n
        return dict(out)

    def by_instrument(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        with self._lock:
            for (_, instrument), n in self.counts.items():
                out[instrument] += n
        return dict(out)

    def count(self, kind: str, instrument: str | None = None) -> int:
        with self._lock:
            return sum(n for (k, i), n in self.counts.items()
                       if k == kind and (instrument is None or i == instrument))

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.events.clear()
