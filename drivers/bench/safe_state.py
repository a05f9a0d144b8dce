"""Every instrument to its safe state at once, each within its own time, none stopping another.

``make_safe(actions)`` runs one thread per instrument; a frozen instrument costs its own bound,
not the sum over all instruments, and an exception in one is recorded, never raised. The result
is a ``SafeStateReport``: per instrument whether it is safe, why not, and how long it took.

    report = make_safe({"smu_in0": (unit.safe_state, 11.0), ...})
    report.ok, report.failures, report.seconds, report.describe()

An instrument that has not finished within its bound is reported as not safe ("did not finish
within 11 s"); its thread is left to end on its own (every read it can block in has a timeout)
so that the others' outcome is not held up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SafeOutcome:
    """One instrument's safe state: done (``safe``) or why not (``detail``), and its duration."""

    instrument: str
    safe: bool
    detail: str
    seconds: float

    def describe(self) -> str:
        return f"{self.instrument}: {'safe' if self.safe else self.detail} ({self.seconds:.2f} s)"


@dataclass(frozen=True)
class SafeStateReport:
    """The outcome of one safe state of a whole bench, instruments in the bench's order.

    As the Rig interface asks of safe_state(), it iterates over one line per instrument that
    could not be made safe ("name: why"), and is empty (false) when every instrument is safe."""

    outcomes: tuple[SafeOutcome, ...]
    seconds: float  # from the start until every outcome was known

    @property
    def ok(self) -> bool:
        return all(o.safe for o in self.outcomes)

    @property
    def failures(self) -> tuple[SafeOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.safe)

    def __iter__(self):
        return (f"{o.instrument}: {o.detail}" for o in self.failures)

    def __len__(self) -> int:
        return len(self.failures)

    def describe(self) -> str:
        if self.ok:
            return f"every instrument safe in {self.seconds:.2f} s"
        return "; ".join(f"{o.instrument}: {o.detail}" for o in self.failures)


EMPTY = SafeStateReport((), 0.0)


def make_safe(actions: Mapping[str, tuple[Callable[[], None], float]],
              clock: Callable[[], float] = time.monotonic) -> SafeStateReport:
    """Run ``actions`` (name -> (safe-state call, bound in seconds)) concurrently and wait for
    each at most its bound. Never raises (an interrupt in the waiting thread excepted)."""
    start = clock()
    results: dict[str, SafeOutcome] = {}
    lock = threading.Lock()

    def run(name: str, action: Callable[[], None]) -> None:
        began = clock()
        try:
            action()
            outcome = SafeOutcome(name, True, "", clock() - began)
        except Exception as exc:  # recorded: one instrument never stops the others
            detail = (str(exc) or type(exc).__name__).removeprefix(f"{name}: ")
            outcome = SafeOutcome(name, False, detail, clock() - began)
        with lock:
            results.setdefault(name, outcome)

    threads = {}
    for name, (action, _) in actions.items():
        thread = threading.Thread(target=run, args=(name, action), name=f"safe-state-{name}",
                                  daemon=True)
        thread.start()
        threads[name] = thread
    for name, thread in threads.items():
        bound = actions[name][1]
        thread.join(max(0.0, start + bound - clock()))
        if thread.is_alive():
            with lock:
                results.setdefault(name, SafeOutcome(name, False, f"did not finish within "
                                                     f"{bound:g} s", clock() - start))
    with lock:
        outcomes = tuple(results[name] for name in actions)
    return SafeStateReport(outcomes, clock() - start)
