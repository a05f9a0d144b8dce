"""Fault injection of the virtual bench (simulator/emulators/faults.py): the rates hold within
binomial error, a seed and a sequence of requests give the same faults, every kind is visible
to a raw client, and the counts equal what a client observes.

No waiting for time to pass: a dropped reply is proven by the next reply's content or by
counting replies up to the server's end of file."""

from __future__ import annotations

import dataclasses
import math
import socket

import pytest
import serial

from hwlearn.config.bench import parse_faults
from hwlearn.errors import ConfigError
from simulator.emulators import (
    BoardFirmware,
    FaultLog,
    FaultPlan,
    FaultRates,
    Keithley2400Emulator,
    PtyLineServer,
    TcpLineServer,
)
from simulator.emulators.faults import REPLY_KINDS
from simulator.emulators.resistor_board import crc8, frame
from simulator.virtual_bench import VirtualBench
from tests.bench_helpers import config_of, example_config, example_doc
from tests.fake_backend import FakeBackend


def plan(seed=0, name="smu", **rates) -> FaultPlan:
    return FaultPlan(FaultRates(**rates), seed, name, FaultLog())


# -- the draws ----------------------------------------------------------------------------------
def test_rates_hold_within_binomial_error_over_many_replies():
    rates = {"timeout": 0.01, "late": 0.02, "garbled": 0.05, "disconnect": 0.003, "reboot": 0.1}
    p, n = plan(seed=7, **rates), 40_000
    drawn = [p.draw_reply("*IDN?") for _ in range(n)]
    for kind, rate in rates.items():
        count = drawn.count(kind)
        sigma = math.sqrt(n * rate * (1 - rate))
        assert abs(count - n * rate) < 4.5 * sigma, (kind, count, n * rate, sigma)
    assert p.log.counts() == {"smu": {k: drawn.count(k) for k in rates}}


def test_a_seed_and_a_sequence_of_requests_give_the_same_faults():
    rates = {"timeout": 0.2, "garbled": 0.2, "stuck": 0.3}
    first, again = plan(seed=3, **rates), plan(seed=3, **rates)
    other_seed, other_name = plan(seed=4, **rates), plan(seed=3, name="smu2", **rates)

    def run(p):
        return [(p.draw_reply("q"), p.draw_event("stuck"), p.garble(b"+1.000000E+00\n"))
                for _ in range(200)]
    sequence = run(first)
    assert run(again) == sequence
    assert run(other_seed) != sequence and run(other_name) != sequence


def test_garbling_keeps_one_line_and_breaks_a_board_frame_checksum():
    p = plan(seed=1, garbled=1.0)
    board = FaultPlan(FaultRates(garbled=1.0), 1, "board", FaultLog(), framed=True)
    reply = (frame("12 OK 0=128,3=40") + "\n").encode()
    for _ in range(300):
        garbled = p.garble(b"+1.000000E+00,+5.000000E-04\n")
        assert garbled.endswith(b"\n") and b"\n" not in garbled[:-1] and b"\r" not in garbled
        assert garbled != b"+1.000000E+00,+5.000000E-04\n"
        bad = board.garble(reply).decode("latin-1")[:-1]
        body, _, check = bad.rpartition("*")
        assert crc8(body.encode("latin-1")) != int(check, 16), bad


@pytest.mark.parametrize("rates, words", [
    ({"timeout": 1.5}, "probability"), ({"late": math.nan}, "finite"),
    ({"timeout": 0.6, "reboot": 0.6}, "sum"), ({"late_s": 0.0}, "late_s")])
def test_bad_rates_are_refused(rates, words):
    with pytest.raises(ValueError, match=words):
        FaultRates(**rates)


def test_bench_file_and_command_line_faults_are_validated_like_every_key():
    doc = example_doc()
    doc["virtual"] = {"faults": {"timeout": 0.01, "late": 0.02, "seed": 5}}
    config = config_of(doc)
    assert config.virtual_faults["late"] == 0.02 and config.virtual_faults["seed"] == 5
    doc["virtual"]["faults"]["garbled"] = -0.1
    with pytest.raises(ConfigError, match=r"virtual\.faults\.garbled = -0\.1: must be >= 0"):
        config_of(doc)
    assert parse_faults("timeout=0.01, late=0.01,garbled=0.01", seed=3)["seed"] == 3
    for text, words in (("timeout=nan", "timeout = nan"), ("jitter=0.1", "unknown key 'jitter'"),
                        ("late", "not key=value"), ("timeout=0.7,late=0.7", "sum to 1.4")):
        with pytest.raises(ConfigError, match=words):
            parse_faults(text)


# -- what a raw client sees ----------------------------------------------------------------------
def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_line(sock) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            return data
        data += chunk
    return data


class ScriptedPlan(FaultPlan):
    """A plan whose reply faults are given in order (then none), so a test knows which reply
    is hit without racing the server thread."""

    def __init__(self, *kinds, late_s=3.0, framed=False):
        super().__init__(FaultRates(late_s=late_s), 0, "smu" if not framed else "board", FaultLog(),
                         framed=framed)
        self.script = list(kinds)

    def draw_reply(self, line):
        kind = self.script.pop(0) if self.script else None
        if kind:
            self.log.record(self.instrument, kind, line)
        return kind


def serve(*kinds, late_s=3.0):
    device = Keithley2400Emulator("smu", FakeBackend())
    return device, TcpLineServer(device, faults=ScriptedPlan(*kinds, late_s=late_s)).start()


def test_a_timeout_drops_the_reply():
    _, server = serve("timeout", "timeout")
    with server, connect(server) as sock:
        sock.sendall(b"*IDN?\n:SYST:ERR:COUN?\n*OPC?\n")
        assert read_line(sock) == b"1\n"
    assert server.faults.log.counts() == {"smu": {"timeout": 2}}


def test_a_late_reply_arrives_after_the_client_gave_up():
    _, server = serve("late", late_s=1.0)
    with server, connect(server) as sock:
        sock.sendall(b"*OPC?\n")
        sock.settimeout(0.05)
        with pytest.raises(TimeoutError):
            sock.recv(64)
        sock.settimeout(10)
        assert read_line(sock) == b"1\n"
    assert server.faults.log.total("late") == 1


def test_a_garbled_reply_differs_but_is_one_line():
    _, server = serve(None, "garbled")
    with server, connect(server) as sock:
        sock.sendall(b"*IDN?\n")
        clean = read_line(sock)
        sock.sendall(b"*IDN?\n")
        garbled = read_line(sock)
    assert garbled != clean and garbled.endswith(b"\n")


def test_a_disconnect_closes_the_connection_and_the_next_one_works():
    _, server = serve("disconnect")
    with server:
        with connect(server) as sock:
            sock.sendall(b"*IDN?\n")
            assert sock.recv(64) == b""
        with connect(server) as sock:
            sock.sendall(b"*OPC?\n")
            assert read_line(sock) == b"1\n"


def test_a_reboot_loses_the_reply_and_the_settings_and_sets_power_on():
    device, server = serve(None, "reboot")
    with server, connect(server) as sock:
        sock.sendall(b":SENS:CURR:PROT 0.01;:SOUR:VOLT 0.5;:OUTP ON;*ESR?\n")
        assert read_line(sock) == b"128\n"  # the emulator's own power-up
        sock.sendall(b":OUTP?\n*ESR?;:OUTP?;:SOUR:VOLT?\n")
        assert read_line(sock) == b"128;0;+0.000000E+00\n"
    assert not device.output and server.faults.log.total("reboot") == 1


def test_the_counts_equal_the_replies_a_client_missed():
    device = Keithley2400Emulator("smu", FakeBackend())
    p = plan(seed=5, timeout=0.1, reboot=0.05)
    n = 400
    with TcpLineServer(device, faults=p) as server, connect(server) as sock:
        sock.sendall(b"*OPC?\n" * n)
        sock.shutdown(socket.SHUT_WR)  # the server answers every line, then closes
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    missed = n - received.count(b"\n")
    counts = p.log.counts()["smu"]
    assert missed == counts["timeout"] + counts["reboot"] > 0


def test_a_board_reboot_returns_it_to_power_up_and_a_garbled_reply_fails_its_crc():
    firmware = BoardFirmware(FakeBackend())
    p = ScriptedPlan(None, None, "garbled", "reboot", framed=True)
    with PtyLineServer(firmware, faults=p) as server, \
            serial.Serial(server.path, 115200, timeout=10) as port:
        def line():
            return port.readline().decode("latin-1").rstrip("\n")

        def ask(body):
            port.write((frame(body) + "\n").encode())
            return line()
        assert line() == frame("0 BOOT POR")      # protocol 2.0: every start is announced
        assert ask("1 CLR") == frame("1 OK")      # acknowledged: SET is allowed
        assert ask("2 SET 0=10") == frame("2 OK")
        bad = ask("3 STAT?")
        body, _, check = bad.rpartition("*")
        assert crc8(body.encode("latin-1")) != int(check, 16)
        port.write((frame("4 GET? 0") + "\n").encode())        # lost in the reboot
        assert line() == frame("0 BOOT POR")                   # the restart announces itself
        assert ask("5 STAT?").startswith("5 OK ARMED=0 TRIPPED=0 BOOTED=1 RESET=POR")
        assert ask("6 GET? 0") == frame("6 OK 0=256")           # back at the safe code
    assert firmware.boots == 2 and p.log.counts() == {"board": {"garbled": 1, "reboot": 1}}


# -- the virtual bench ----------------------------------------------------------------------------
def test_virtual_bench_injects_stuck_and_drifting_devices_and_counts_every_fault():
    config = example_config()
    rates = FaultRates(stuck=1.0, drift=1.0)
    with VirtualBench(config, twin=True, faults=rates, fault_seed=2) as vb, \
            serial.Serial(vb.resources["board"], 115200, timeout=10) as port:
        port.write((frame("1 CLR") + "\n").encode())  # protocol 2.0: acknowledge the start
        assert port.readline().decode().startswith("0 BOOT")  # the announcement goes out first
        assert port.readline().decode().startswith("1 OK")
        port.write((frame("2 SET 0=10,1=20") + "\n").encode())
        port.readline()
        port.write((frame("3 GET? 0,1") + "\n").encode())
        reply = port.readline().decode()
        assert reply.startswith("3 OK") and reply.split()[2].count("=256") == 1  # one stuck
        dmm = vb.emulators["dmm"]
        dmm.receive("CONF:VOLT:DC (@101:102)")
        dmm.receive("READ?")
        assert len(vb.circuit.drifts) == 1
        assert vb.faults_injected() == {"board": {"stuck": 1}, "dmm": {"drift": 1}}
        assert [e.kind for e in vb.fault_log.events()] == ["stuck", "drift"]


def test_virtual_bench_takes_its_faults_from_the_bench_file():
    doc = example_doc()
    doc["virtual"] = {"faults": {"timeout": 1.0, "seed": 9}}
    vb = VirtualBench(config_of(doc), twin=True)
    assert vb.faults.timeout == 1.0 and vb.fault_seed == 9
    assert VirtualBench(config_of(doc), twin=True, fault_seed=1).fault_seed == 1
    assert not VirtualBench(example_config(), twin=True).faults.any
    assert set(REPLY_KINDS) <= {f.name for f in dataclasses.fields(FaultRates)}
