"""Faults of the links: a reply that comes too late is never taken for the next request's, a
lost or garbled reply is recovered within a bound, and every fault is counted and reported.

First as exact transcripts on the scripted transport, then over loopback against raw socket
servers that delay, drop and garble replies (the instruments' own timing, emulated; nothing
here waits to synchronise)."""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest

from drivers.instruments.errors import InstrumentTimeout, ProtocolError
from drivers.instruments.faults import FaultLog
from drivers.instruments.keithley24xx import Keithley2400, SourceLimits
from drivers.instruments.resistor_board import ResistorBoard
from drivers.instruments.transport import SerialTransport, Transport, VisaTransport
from simulator.emulators.resistor_board import BoardFirmware
from simulator.emulators.server import LineDevice, TcpLineServer
from tests.fake_backend import FakeBackend
from tests.scripted_transport import CLEAR, Interrupt, ScriptedTransport, Timeout, expect

IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1234567,C30"
LIMITS = SourceLimits(max_volts=10.0, max_amps=0.1, max_watts=0.5, ramp_volts=0.5, ramp_amps=0.01)


# -- exact transcripts ----------------------------------------------------------------------------
def test_a_late_reply_is_never_paired_with_the_next_request():
    late, fresh = "+5.0E-01,+1.0E-04,+2.15E+04", "+5.1E-01,+1.1E-04,+2.15E+04"
    with expect([("*IDN?", IDN),
                 (":READ?", Timeout()),           # the measurement outlasts the timeout...
                 (CLEAR, None),                   # ...so the device is cleared,
                 ("*IDN?", [late, IDN]),          # the marker's reply comes after the late one,
                 (":READ?", fresh),               # and only then is the query sent again
                 (":OUTP?", "1")]) as t:
        smu = Keithley2400(t, LIMITS, name="smu")
        smu.identify()
        assert t.query(":READ?") == fresh
        assert t.query(":OUTP?") == "1"          # not shifted by one
    assert t.faults.count("stale_reply") == 1 and t.faults.count("timeout") == 1


def test_a_query_that_finally_failed_makes_the_next_query_resynchronise_first():
    with expect([("*IDN?", IDN), (":READ?", Timeout()),
                 (CLEAR, None), ("*IDN?", ["+1.0,+2.0,+3.0", IDN]),
                 (":OUTP?", "0")], retries=0) as t:
        Keithley2400(t, LIMITS, name="smu").identify()
        with pytest.raises(InstrumentTimeout, match="1 attempt"):
            t.query(":READ?")
        assert t.query(":OUTP?") == "0"


def test_when_the_marker_query_itself_timed_out_opc_is_the_marker():
    # A late *IDN? reply must not pass for the marker's: *OPC? (answered 1) takes its place.
    with expect([("*IDN?", Timeout()), (CLEAR, None), ("*OPC?", [IDN, "1"]), ("*IDN?", IDN)]) as t:
        t.set_marker("*IDN?", IDN)
        assert t.query("*IDN?") == IDN
    assert t.faults.count("stale_reply") == 1


def test_an_instrument_that_does_not_answer_the_marker_fails_fast_and_stays_marked():
    with expect([("*IDN?", IDN), (":READ?", Timeout()), (CLEAR, None), ("*IDN?", Timeout()),
                 (CLEAR, None), ("*IDN?", Timeout())]) as t:
        t.set_marker("*IDN?", IDN)
        t.query("*IDN?")
        with pytest.raises(InstrumentTimeout, match="after a device clear"):
            t.query(":READ?")
        with pytest.raises(InstrumentTimeout, match="after a device clear"):
            t.query(":OUTP?")   # still marked: re-synchronising again, never pairing blindly
    assert t.faults.count("resync") == 2


def test_an_interrupted_resync_leaves_no_marker_reply_behind():
    # Ctrl-C while waiting for the marker: its reply comes later and looks like the next
    # marker's. The transport reads past every reply it is owed (the lost :READ? reply's, the
    # first marker's) before it takes a marker reply for its own.
    with expect([("*IDN?", IDN), (":READ?", Timeout()),
                 (CLEAR, None), ("*IDN?", Interrupt()),
                 (CLEAR, None), ("*IDN?", [IDN, IDN, Timeout()]),
                 (":OUTP?", "1")], retries=0) as t:
        t.set_marker("*IDN?", IDN)
        assert t.query("*IDN?") == IDN
        with pytest.raises(InstrumentTimeout):
            t.query(":READ?")
        with pytest.raises(KeyboardInterrupt):
            t.query(":OUTP?")
        assert t.query(":OUTP?") == "1"


class _InterruptedAsTheLineGoesOut(Transport):
    """Ctrl-C arrives during the write system call: the line is out, its reply will come, and
    the interrupt is raised as the write returns."""

    def __init__(self):
        super().__init__("flaky", timeout_s=0.5, retries=0, drain_s=0.01)
        self.replies: list[str] = []
        self.interrupt_next_write = False

    def _send(self, line):
        self.replies.append(f"reply to {line}")
        if self.interrupt_next_write:
            self.interrupt_next_write = False
            raise KeyboardInterrupt

    def _receive(self, timeout_s):
        if not self.replies:
            raise InstrumentTimeout(self.name, "nothing to read")
        return self.replies.pop(0)

    def _discard(self, wait_s):
        stale, self.replies = self.replies, []
        return stale

    def _close(self):
        pass


def test_an_interrupt_as_the_line_goes_out_does_not_shift_later_replies():
    link = _InterruptedAsTheLineGoesOut()
    link.interrupt_next_write = True
    with pytest.raises(KeyboardInterrupt):
        link.query(":SOUR:FUNC?")
    assert link.query(":SOUR:VOLT?") == "reply to :SOUR:VOLT?"   # not 'reply to :SOUR:FUNC?'


def test_every_fault_reaches_the_hook_with_kind_instrument_and_detail():
    seen = []
    faults = FaultLog(on_fault=lambda kind, instrument, detail: seen.append((kind, instrument, detail)))
    t = ScriptedTransport([("*IDN?", IDN), (":READ?", Timeout()), (CLEAR, None),
                           ("*IDN?", ["+1,+2,+3", IDN]), (":READ?", "+4,+5,+6")], name="smu_out2")
    t.faults = faults
    t.set_marker("*IDN?", IDN)
    t.query("*IDN?")
    t.query(":READ?")
    assert [(kind, instrument) for kind, instrument, _ in seen] == [("stale_reply", "smu_out2"),
                                                                    ("timeout", "smu_out2")]
    assert "'+1,+2,+3'" in seen[0][2] and "re-synchronised" in seen[1][2]
    assert faults.counts == {("stale_reply", "smu_out2"): 1, ("timeout", "smu_out2"): 1}


def test_a_failing_hook_never_turns_a_recovered_fault_into_a_failure():
    def broken(kind, instrument, detail):
        raise RuntimeError("subscriber bug")

    t = ScriptedTransport([("Q?", Timeout()), (CLEAR, None), ("Q?", "A")])
    t.faults = FaultLog(on_fault=broken)
    assert t.query("Q?") == "A"
    assert t.faults.total == 1


# -- over loopback: a raw SCPI-like server with its own timing ------------------------------------
class SlowInstrument:
    """A raw TCP server answering ``Q<n>?`` with ``A<n>`` and ``*IDN?`` with IDN, one line after
    the other as a real instrument does: the reply to some queries is delayed beyond the host's
    timeout (a long integration), some are lost. Seeded."""

    def __init__(self, seed: int, slow_s: float, p_slow: float = 0.25, p_lost: float = 0.1):
        self.rng = random.Random(seed)
        self.slow_s, self.p_slow, self.p_lost = slow_s, p_slow, p_lost
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.events: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            buffer = b""
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    reply = self._answer(line.decode())
                    if reply is not None:
                        conn.sendall(reply.encode() + b"\n")

    def _answer(self, line: str) -> str | None:
        if line == "*IDN?":
            return IDN
        draw = self.rng.random()
        if draw < self.p_lost:
            self.events.append(f"lost {line}")
            return None
        if draw < self.p_lost + self.p_slow:
            self.events.append(f"slow {line}")
            time.sleep(self.slow_s)  # the instrument is busy: everything after waits too
        return "A" + line[1:-1]

    def close(self) -> None:
        self.listener.close()


def test_over_loopback_every_reply_returned_belongs_to_its_request():
    server = SlowInstrument(seed=3, slow_s=0.3, p_slow=0.25, p_lost=0.05)
    transport = VisaTransport(f"TCPIP::127.0.0.1::{server.port}::SOCKET", "slow", timeout_s=0.15,
                              retries=2)
    try:
        transport.set_marker("*IDN?", transport.query("*IDN?"))
        answered = 0
        for n in range(16):
            try:
                reply = transport.query(f"Q{n}?")
            except InstrumentTimeout:
                continue
            assert reply == f"A{n}", f"query Q{n}? got {reply!r}: a reply paired with the wrong request"
            answered += 1
    finally:
        transport.close()
        server.close()
    assert any(e.startswith("slow") for e in server.events), server.events
    assert answered >= 12
    assert transport.faults.count("timeout") >= 1 and transport.faults.count("stale_reply") >= 1


# -- the board over loopback, with garbled and truncated replies --------------------------------
class NoisyLink(LineDevice):
    """The board's firmware behind a link that damages some replies (a byte flipped, or the line
    cut short), seeded."""

    def __init__(self, seed: int, p_damage: float = 0.3):
        super().__init__()
        self.firmware = BoardFirmware(FakeBackend())
        self.firmware.take_unsolicited()
        self.rng = random.Random(seed)
        self.p_damage = p_damage
        self.damaged = 0

    def handle(self, line: str) -> str | None:
        reply = self.firmware.receive(line)
        if reply is None or self.rng.random() >= self.p_damage:
            return reply
        self.damaged += 1
        if self.rng.random() < 0.5:
            return reply[: max(1, len(reply) // 2)]                   # truncated
        k = self.rng.randrange(len(reply))
        return reply[:k] + chr(ord(reply[k]) ^ 0x04) + reply[k + 1:]  # one bit flipped


def test_garbled_and_truncated_board_replies_are_retried_and_never_used():
    link = NoisyLink(seed=11)
    with TcpLineServer(link) as server:
        transport = SerialTransport(f"socket://127.0.0.1:{server.port}", "board", timeout_s=2.0,
                                    retries=3)
        board = ResistorBoard(transport)
        try:
            board.connect()
            board.acknowledge_boot()
            rng = random.Random(5)
            for _ in range(15):
                codes = {ch: rng.randrange(257) for ch in rng.sample(range(8), 3)}
                try:
                    board.write_codes(codes)
                    held = board.read_codes(sorted(codes))
                except ProtocolError:
                    continue  # damaged more often than the bound allows: refused, never guessed
                assert held == codes
                assert {ch: link.firmware.codes()[ch] for ch in codes} == codes
        finally:
            board.close()
            transport.close()
    assert link.damaged > 0
    assert transport.faults.count("garbled") > 0
