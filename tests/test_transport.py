"""Transports: retries only where safe, draining before a retry, refusing multi-line commands,
the I/O trace, and the lock, first on a scripted transport, then through the real pyvisa-py
TCPIP SOCKET and pyserial on a pseudo-terminal against loopback line devices."""

import logging
import os
import socket
import threading
import tty

import pytest

from drivers.instruments.errors import InstrumentTimeout, LimitError, TransportError
from drivers.instruments.transport import SerialTransport, Transport, VisaTransport
from simulator.emulators.server import LineDevice, PtyLineServer, TcpLineServer
from tests.scripted_transport import CLEAR, ScriptedTransport, Timeout

TIMEOUT_S = 5.0  # generous: a loaded CI machine must not turn a slow reply into a failure


class Echo(LineDevice):
    """Answers 'echo <line>'; lines in ``silent`` get no reply; the first ``drop`` queries of
    each distinct line get no reply (a reply lost on the way)."""

    def __init__(self, silent=(), drop=0):
        super().__init__()
        self.silent, self.drop, self.seen = set(silent), drop, {}

    def handle(self, line):
        self.seen[line] = self.seen.get(line, 0) + 1
        if line in self.silent or self.seen[line] <= self.drop:
            return None
        return f"echo {line}"


# -- the base class, scripted -------------------------------------------------------------------
def test_a_timed_out_query_is_resent_after_draining_the_late_reply():
    t = ScriptedTransport([("Q?", Timeout(late=["late answer"])), (CLEAR, None), ("Q?", "fresh answer")])
    assert t.query("Q?") == "fresh answer"
    t.assert_done()


def test_retries_are_bounded_and_the_error_names_instrument_command_and_attempts():
    t = ScriptedTransport([("Q?", Timeout()), (CLEAR, None)] * 2 + [("Q?", Timeout())],
                          name="smu_in0", retries=2)
    with pytest.raises(InstrumentTimeout) as info:
        t.query("Q?")
    assert "smu_in0" in str(info.value) and "'Q?'" in str(info.value)
    assert "3 attempts" in str(info.value)
    t.assert_done()


def test_a_query_marked_unsafe_to_repeat_is_sent_once():
    t = ScriptedTransport([("SET?", Timeout())], retries=3)
    with pytest.raises(InstrumentTimeout, match="1 attempt"):
        t.query("SET?", retry=False)
    assert t.sent == ["SET?"]


@pytest.mark.parametrize("line", ["*RST\n*IDN?", "A\rB", ":SOUR:VOLT 1\n", "Ω?", b"*IDN?"])
def test_commands_that_are_not_one_ascii_line_are_refused_before_io(line):
    t = ScriptedTransport([])
    with pytest.raises(LimitError, match="nothing was sent"):
        t.write(line)
    with pytest.raises(LimitError):
        t.query(line)
    assert t.sent == []


def test_a_closed_transport_refuses_io():
    t = ScriptedTransport([])
    t.close()
    with pytest.raises(TransportError, match="closed"):
        t.write("*RST")


def test_every_line_sent_and_received_is_traced_at_debug(caplog):
    t = ScriptedTransport([("*IDN?", "ACME,1,2,3")], name="dmm")
    with caplog.at_level(logging.DEBUG, logger="hwlearn.io.dmm"):
        t.query("*IDN?")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("hwlearn.io.dmm", logging.DEBUG, "-> *IDN?"),
        ("hwlearn.io.dmm", logging.DEBUG, "<- ACME,1,2,3")]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="timeout_s"):
        VisaTransport("TCPIP::127.0.0.1::1::SOCKET", "x", timeout_s=float("nan"))
    with pytest.raises(ValueError, match="retries"):
        SerialTransport("/dev/null", "x", retries=9)


# -- VISA over a real socket ----------------------------------------------------------------------
@pytest.fixture
def echo_server():
    servers = []

    def start(device):
        server = TcpLineServer(device).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_visa_query_round_trip_through_pyvisa_py(echo_server):
    server = echo_server(Echo(silent={"NOREPLY"}))
    with VisaTransport(server.resource, "echo", timeout_s=TIMEOUT_S) as t:
        assert t.query("*IDN?") == "echo *IDN?"
        t.write("NOREPLY")
        assert t.query("again") == "echo again"
    assert server.device.lines() == ["*IDN?", "NOREPLY", "again"]


def test_visa_socket_has_nagle_disabled_so_consecutive_writes_are_not_held_back(echo_server):
    server = echo_server(Echo())
    with VisaTransport(server.resource, "echo", timeout_s=TIMEOUT_S) as t:
        sock = t._res.visalib.sessions[t._res.session].interface  # pyvisa-py's socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_visa_timeout_raises_instrument_timeout(echo_server):
    server = echo_server(Echo(silent={"HANG?"}))
    with VisaTransport(server.resource, "echo", timeout_s=0.2, retries=0) as t:
        with pytest.raises(InstrumentTimeout, match="'HANG\\?'"):
            t.query("HANG?")
        assert t.query("ok?", timeout_s=TIMEOUT_S) == "echo ok?"  # the link still works


def test_visa_lost_reply_is_recovered_by_one_retry(echo_server):
    server = echo_server(Echo(drop=1))
    # The first wait must time out (the reply was dropped); the second must not, even on a
    # loaded machine: 1 s is plenty for a loopback echo and keeps the test short.
    with VisaTransport(server.resource, "echo", timeout_s=1.0, retries=1, drain_s=0.05) as t:
        assert t.query("Q?") == "echo Q?"
    assert server.device.lines() == ["Q?", "Q?"]


def test_two_threads_never_interleave_a_query(echo_server):
    server = echo_server(Echo())
    errors = []
    with VisaTransport(server.resource, "echo", timeout_s=TIMEOUT_S) as t:
        def worker(tag):
            for i in range(40):
                reply = t.query(f"{tag}-{i}")
                if reply != f"echo {tag}-{i}":
                    errors.append((tag, i, reply))

        threads = [threading.Thread(target=worker, args=(tag,)) for tag in "abc"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert len(server.device.lines()) == 120


def test_an_instrument_that_is_not_there_gives_a_transport_error_naming_the_resource():
    with socket.socket() as s:  # a port that was free a moment ago: nobody listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransportError, match=f"{port}::SOCKET"):
        # pyvisa-py connects lazily: opening or the first query fails, never silently
        with VisaTransport(f"TCPIP::127.0.0.1::{port}::SOCKET", "ghost", timeout_s=1.0) as t:
            t.query("*IDN?")


# -- the TCP server itself ----------------------------------------------------------------------
def test_tcp_server_binds_loopback_only_on_an_ephemeral_port():
    with TcpLineServer(Echo(), port=0) as server:
        host, port = server._listener.getsockname()
        assert host == "127.0.0.1" and port > 0 and server.resource.endswith(f"{port}::SOCKET")


def test_tcp_server_stops_from_another_thread_with_a_client_connected():
    server = TcpLineServer(Echo()).start()
    t = VisaTransport(server.resource, "echo", timeout_s=TIMEOUT_S)
    assert t.query("x") == "echo x"
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(timeout=20)
    assert not stopper.is_alive()
    t.close()


def test_device_log_records_each_line_with_time_and_reply():
    device = Echo(silent={"quiet"})
    device.receive("a")
    device.receive("quiet")
    log = device.received
    assert [(r.line, r.reply) for r in log] == [("a", "echo a"), ("quiet", None)]
    assert log[0].time <= log[1].time


# -- serial over a real pseudo-terminal ---------------------------------------------------------
def test_serial_query_round_trip_on_a_pty():
    with PtyLineServer(Echo()) as server:
        with SerialTransport(server.path, "echo", timeout_s=TIMEOUT_S) as t:
            assert t.query("*IDN?") == "echo *IDN?"
            assert t.query("again") == "echo again"


def test_serial_lost_reply_is_recovered_by_one_retry():
    with PtyLineServer(Echo(drop=1)) as server:
        with SerialTransport(server.path, "echo", timeout_s=1.0, retries=1, drain_s=0.05) as t:
            assert t.query("Q?") == "echo Q?"
        assert server.device.lines() == ["Q?", "Q?"]


def test_serial_partial_line_is_kept_across_a_timeout_and_completed():
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        with SerialTransport(os.ttyname(slave), "raw", timeout_s=0.2) as t:
            os.write(master, b"hel")
            with pytest.raises(InstrumentTimeout):
                t.read_line()
            os.write(master, b"lo\r\nworld\n")
            assert t.read_line(TIMEOUT_S) == "hello"
            assert t.read_line(TIMEOUT_S) == "world"
    finally:
        os.close(master)
        os.close(slave)


def test_opening_a_missing_serial_port_is_a_transport_error(tmp_path):
    with pytest.raises(TransportError, match="no-such-port"):
        SerialTransport(str(tmp_path / "no-such-port"), "ghost")


class _InterruptedOnce(Transport):
    """Answers every line with 'reply to <line>'; the first read is interrupted (Ctrl-C)."""

    def __init__(self):
        super().__init__("flaky", timeout_s=0.5, retries=0, drain_s=0.01)
        self.replies: list[str] = []
        self.interrupt = True

    def _send(self, line):
        self.replies.append(f"reply to {line}")

    def _receive(self, timeout_s):
        if self.interrupt:
            self.interrupt = False
            raise KeyboardInterrupt
        if not self.replies:
            raise InstrumentTimeout(self.name, "nothing to read")
        return self.replies.pop(0)

    def _discard(self, seconds):
        stale, self.replies = self.replies, []
        return stale

    def _close(self):
        pass


def test_a_query_interrupted_mid_exchange_does_not_shift_later_replies():
    link = _InterruptedOnce()
    with pytest.raises(KeyboardInterrupt):
        link.query("*IDN?")
    assert link.query(":OUTP?") == "reply to :OUTP?"  # not the late answer to *IDN?
