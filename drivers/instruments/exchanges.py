"""Counting instrument round trips, and joining SCPI commands into one exchange.

A round trip (an exchange) is one line sent to an instrument: a write, or a query with its
reply. The Bench counts them per Rig call (``RoundTrips``) so that a benchmark can compare the
cost of a sample across rules and benches.

``JoiningTransport`` wraps a SCPI instrument's transport. Inside ``batch()``, the lines a driver
writes wait and go out with the next query as one line, ``cmd1;cmd2;query?`` (SCPI-99: several
commands in one program message, separated by ``;``). The instrument executes them in order and
answers the query: one exchange instead of three, and the reply also proves that every command
before it was executed (which a bare write never does). Commands are made absolute (a leading
``:``) so that the SCPI path rule cannot reinterpret a command after a ``;``. A joined line is
never retried (the writes in it must not be applied twice). If a batch ends in an exception,
the writes still waiting are dropped: nothing partial goes out.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from drivers.instruments.errors import LimitError

BACKGROUND = "background"  # exchanges outside any Rig call: the board's heartbeat thread


class RoundTrips:
    """Exchanges per (Rig call, instrument). ``call(name)`` marks the calling thread's work as
    belonging to that Rig call; exchanges from other threads count as 'background'."""

    def __init__(self):
        self._lock = threading.Lock()
        self._local = threading.local()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._calls: Counter[str] = Counter()

    @contextmanager
    def call(self, name: str, *, counted: bool = True) -> Iterator[None]:
        """Count this thread's exchanges for Rig call ``name``; ``counted=False`` lends the
        name to a helper thread of a call already counted (the safe state's per-instrument
        threads)."""
        outer = getattr(self._local, "call", None)
        if outer is None:  # a nested call (close -> safe_state) counts for the outer one
            self._local.call = name
            if counted:
                with self._lock:
                    self._calls[name] += 1
        try:
            yield
        finally:
            if outer is None:
                self._local.call = None

    @property
    def current(self) -> str | None:
        """The Rig call this thread is working for, if any."""
        return getattr(self._local, "call", None)

    def count(self, instrument: str) -> None:
        call = getattr(self._local, "call", None) or BACKGROUND
        with self._lock:
            self._counts[(call, instrument)] += 1

    # -- reading the counts --------------------------------------------------------------------
    @property
    def total(self) -> int:
        with self._lock:
            return sum(n for (call, _), n in self._counts.items() if call != BACKGROUND)

    @property
    def by_call(self) -> dict[str, int]:
        """Exchanges per Rig call name (all calls of that name together)."""
        out: Counter[str] = Counter()
        with self._lock:
            for (call, _), n in self._counts.items():
                out[call] += n
        return dict(out)

    @property
    def by_instrument(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        with self._lock:
            for (call, instrument), n in self._counts.items():
                if call != BACKGROUND:
                    out[instrument] += n
        return dict(out)

    @property
    def calls(self) -> dict[str, int]:
        """How many times each Rig call was made."""
        with self._lock:
            return dict(self._calls)

    def detail(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._calls.clear()


class CountingTransport:
    """A transport that counts every line it sends. Everything else is the wrapped one's."""

    def __init__(self, inner, counter: RoundTrips):
        self.inner = inner
        self.counter = counter
        self.name = inner.name
        self.lock = inner.lock
        self.log = inner.log

    def write(self, line: str) -> None:
        with self.lock:
            self.inner.write(line)
            self.counter.count(self.name)

    def query(self, line: str, *, retry: bool = True, timeout_s: float | None = None) -> str:
        with self.lock:
            self.counter.count(self.name)
            return self.inner.query(line, retry=retry, timeout_s=timeout_s)

    def read_line(self, timeout_s: float | None = None) -> str:
        return self.inner.read_line(timeout_s)  # the rest of an exchange already counted

    def drain(self) -> list[str]:
        return self.inner.drain()

    def set_marker(self, query: str, reply: str) -> None:
        self.inner.set_marker(query, reply)

    def resync(self, failed: str | None = None) -> int:
        return self.inner.resync(failed)

    def report_fault(self, kind: str, detail: str, *, recovered: bool = True) -> None:
        self.inner.report_fault(kind, detail, recovered=recovered)

    @property
    def faults(self):
        return self.inner.faults

    def reopen(self) -> None:
        self.inner.reopen()

    def close(self) -> None:
        self.inner.close()

    @property
    def closed(self) -> bool:
        return self.inner.closed

    @property
    def timeout_s(self) -> float:
        return self.inner.timeout_s

    @property
    def retries(self) -> int:
        return self.inner.retries


class JoiningTransport(CountingTransport):
    """A SCPI transport whose writes, inside ``batch()``, travel with the next query."""

    MAX_LINE = 240  # characters; well inside the input buffers of the instruments we drive

    def __init__(self, inner, counter: RoundTrips):
        super().__init__(inner, counter)
        self._pending: list[str] = []
        self._capture: list[str] | None = None
        self._depth = 0

    @contextmanager
    def batch(self) -> Iterator[JoiningTransport]:
        """Hold writes until the next query; at the end, send what still waits as one line.
        On an exception, what still waits is dropped."""
        with self.lock:
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._pending.clear()
                raise
            self._depth -= 1
            if self._depth == 0:
                self.flush()

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Collect the lines written inside (not sent, not counted): a command sequence to put
        after a query with ``query(..., then=lines)``."""
        with self.lock:
            self._capture = lines = []
            try:
                yield lines
            finally:
                self._capture = None

    def write(self, line: str) -> None:
        _check_command(self.name, line)
        with self.lock:
            if self._capture is not None:
                self._capture.append(line)
            elif self._depth:
                if self._pending and len(self._joined(self._pending + [line])) > self.MAX_LINE:
                    self.flush()
                self._pending.append(line)
            else:
                super().write(line)

    def query(self, line: str, *, retry: bool = True, timeout_s: float | None = None,
              then: Iterable[str] = ()) -> str:
        """Send the waiting writes, ``line`` and the commands ``then`` (executed after the
        query has been answered) as one exchange; returns the query's reply."""
        _check_command(self.name, line)
        then = list(then)
        for command in then:
            _check_command(self.name, command)
        with self.lock:
            parts = self._pending + [line] + then
            self._pending = []
            if len(parts) == 1:
                return super().query(line, retry=retry, timeout_s=timeout_s)
            return super().query(self._joined(parts), retry=False, timeout_s=timeout_s)

    def flush(self) -> None:
        """Send the waiting writes now, as one line."""
        with self.lock:
            if self._pending:
                parts, self._pending = self._pending, []
                super().write(parts[0] if len(parts) == 1 else self._joined(parts))

    def discard(self) -> list[str]:
        """Drop the waiting writes (they were never sent); returns them."""
        with self.lock:
            dropped, self._pending = self._pending, []
            return dropped

    @staticmethod
    def _joined(parts: list[str]) -> str:
        return ";".join(p if p.startswith((":", "*")) else ":" + p for p in parts)


def _check_command(instrument: str, line: str) -> None:
    """The transport's rule, applied before a line waits: one line of ASCII per command."""
    if not isinstance(line, str) or "\n" in line or "\r" in line or not line.isascii():
        raise LimitError(instrument, f"a command must be one line of ASCII, got {line!r}; "
                                     "nothing was sent")
