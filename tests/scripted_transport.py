"""A scripted in-memory Transport for protocol-transcript tests (PyMeasure's expected_protocol
idea): the test lists every line the driver must send and what the instrument answers; any
other byte fails the test with the step number and both lines.

    with expect([(":SOUR:VOLT 1.000000E-01", None),      # sent, no reply expected
                 (":READ?", "1.0E-01,1.0E-05,8")]) as t:  # sent, one reply line
        ...

A reply is None (nothing), a line, a list of lines (e.g. a stale reply, then the real one), or
``Timeout(late=[...])``: the read times out, and ``late`` lines arrive afterwards (a drain finds
them). A step ``(UNASKED, line)`` is a line the device sends without a request (a boot
announcement); ``(CLEAR, None)`` is the device clear the transport must do at that point. The
transport is the real base class, so locking, retries, re-synchronisation and tracing are the
real ones.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from drivers.instruments.errors import InstrumentTimeout
from drivers.instruments.transport import Transport


@dataclass
class Timeout:
    late: list[str] = field(default_factory=list)


@dataclass
class Interrupt:
    """The read is interrupted (Ctrl-C) before the reply arrives (list the late reply in a
    later step's replies, where it arrives)."""


UNASKED = "<the device speaks unasked>"
CLEAR = "<device clear>"


class ScriptedTransport(Transport):
    def __init__(self, script, *, name: str = "scripted", retries: int = 1):
        super().__init__(name, timeout_s=1.0, retries=retries, drain_s=0.01)
        self.script = list(script)
        self.step = 0
        self.sent: list[str] = []
        self._pending: list = []
        self._late: list[str] = []

    def _clear(self) -> None:
        self._send(CLEAR)
        self._late = []

    def _send(self, line: str) -> None:
        self.sent.append(line)
        if self.step >= len(self.script):
            raise AssertionError(f"step {self.step + 1}: the driver sent {line!r} after the end of "
                                 f"the script ({len(self.script)} steps)")
        expected, reply = self.script[self.step]
        self.step += 1
        if line != expected:
            raise AssertionError(f"step {self.step}: the driver sent {line!r}, the script expects "
                                 f"{expected!r}")
        if self._pending:
            raise AssertionError(f"step {self.step}: the driver sent {line!r} without reading "
                                 f"the reply {self._pending[0]!r}")
        if reply is None:
            return
        self._pending.extend(reply if isinstance(reply, list) else [reply])

    def _receive(self, timeout_s: float) -> str:
        if not self._pending and self.step < len(self.script) and self.script[self.step][0] == UNASKED:
            self._pending.append(self.script[self.step][1])
            self.step += 1
        if not self._pending:
            raise AssertionError(f"after step {self.step}: the driver reads, but the script has "
                                 "no reply here")
        reply = self._pending.pop(0)
        if isinstance(reply, Interrupt):
            raise KeyboardInterrupt
        if isinstance(reply, Timeout):
            self._late.extend(reply.late)
            raise InstrumentTimeout(self.name, f"scripted timeout after {timeout_s:g} s")
        return reply

    def _discard(self, wait_s: float) -> list[str]:
        late, self._late = self._late, []
        return late

    def _close(self) -> None:
        pass

    def assert_done(self) -> None:
        assert self.step == len(self.script), (
            f"the driver stopped after step {self.step} of {len(self.script)}; next expected: "
            f"{self.script[self.step][0]!r}")
        assert not self._pending, f"replies left unread: {self._pending}"


@contextmanager
def expect(script, **kwargs):
    transport = ScriptedTransport(script, **kwargs)
    yield transport
    transport.assert_done()
