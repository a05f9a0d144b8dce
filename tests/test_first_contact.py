"""What real instruments do on first contact that emulators written from the happy path do not:
each as the exact bytes exchanged (tests/scripted_transport.py), some also over loopback."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from drivers.instruments.errors import BoardRebooted, LimitError, ProtocolError, VerifyError
from drivers.instruments.keithley24xx import (
    MAX_RAMP_STEPS,
    Keithley2400,
    Keithley2450,
    SourceLimits,
    ramp_points,
)
from drivers.instruments.resistor_board import ResistorBoard, crc8
from drivers.instruments.scanning_voltmeter import Keysight34970A
from drivers.instruments.transport import SerialTransport, Transport
from simulator.emulators.resistor_board import BoardFirmware
from simulator.emulators.server import TcpLineServer
from tests.fake_backend import FakeBackend
from tests.scripted_transport import CLEAR, UNASKED, Timeout, expect

ROOT = Path(__file__).resolve().parents[1]
LIMITS = SourceLimits(max_volts=10.0, max_amps=0.1, max_watts=0.5, ramp_volts=0.5, ramp_amps=0.01)
IDN_2450 = "KEITHLEY INSTRUMENTS,MODEL 2450,04096218,1.7.12b"


def framed(body: str) -> str:
    return f"{body}*{crc8(body.encode()):02X}"


class FakeTime:
    """A clock and a sleep for the relay's settling; sleeping writes '<wait s>' into the
    transcript so that its place among the lines is visible."""

    def __init__(self, transcript: list[str]):
        self.now, self.transcript = 100.0, transcript

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.transcript.append(f"<wait {seconds:.3f}>")
        self.now += seconds


# -- Keithley 2450: the command set -------------------------------------------------------------
@pytest.mark.parametrize("language", ["TSP", "SCPI2400"])
def test_a_2450_in_another_command_set_is_refused_at_identify_saying_how_to_switch(language):
    with expect([("*IDN?", IDN_2450), ("*LANG?", language)]) as t:
        with pytest.raises(ProtocolError) as info:
            Keithley2450(t, LIMITS, name="smu_in0").identify()
    message = str(info.value)
    for words in (f"*LANG? answers {language!r}", "ignores this driver's SCPI commands",
                  ":OUTP OFF", "MENU > System > Settings > Command Set > SCPI", "*LANG SCPI",
                  "power-cycle"):
        assert words in message, f"{words!r} missing from {message}"


def test_a_2450_that_does_not_answer_lang_is_refused_as_probably_tsp():
    # After the device clear, the marker's reply; then nothing: the late *LANG? reply never comes.
    with expect([("*IDN?", IDN_2450), ("*LANG?", Timeout()), (CLEAR, None),
                 ("*IDN?", [IDN_2450, Timeout()]), ("*LANG?", Timeout())]) as t:
        with pytest.raises(ProtocolError, match="no answer to \\*LANG\\?: the 2450 may be in the TSP"):
            Keithley2450(t, LIMITS, name="smu_in0").identify()


# -- Keithley 2400: the output relay ------------------------------------------------------------
K2400_SETUP = [(":OUTP:SMOD HIMP", None), (":OUTP?", "0"), (":SOUR:FUNC VOLT", None),
               (":SOUR:VOLT:LEV 0.000000E+00", None), (":SENS:CURR:PROT 1.000000E-03", None),
               (":SYST:ERR?", '0,"No error"')]


@pytest.mark.parametrize("mode, waits", [("HIMP", True), ("NORM", False)])
def test_the_2400_measures_only_once_its_output_relay_has_settled(mode, waits):
    script = [(f":OUTP:SMOD {mode}", None)] + K2400_SETUP[1:] + [
        (":OUTP ON", None), (":READ?", "+0.000000E+00,+0.000000E+00,+2.150800E+04")]
    with expect(script) as t:
        fake = FakeTime(t.sent)
        smu = Keithley2400(t, LIMITS, name="smu_out0", clock=fake.clock, sleep=fake.sleep)
        smu.set_output_off_mode(mode)
        smu.configure("VOLT", 1e-3)
        smu.output_on()
        smu.measure()
    expected = [":OUTP ON", "<wait 0.015>", ":READ?"] if waits else [":OUTP ON", ":READ?"]
    assert t.sent[-len(expected):] == expected


def test_the_relay_wait_counts_from_when_the_line_went_out_not_from_when_it_was_queued():
    with expect(K2400_SETUP + [(":OUTP ON", None), (":READ?", "+0.0,+0.0,+2.150800E+04")]) as t:
        fake = FakeTime(t.sent)
        smu = Keithley2400(t, LIMITS, name="smu_out0", clock=fake.clock, sleep=fake.sleep)
        smu.set_output_off_mode("HIMP")
        smu.configure("VOLT", 1e-3)
        smu.output_on()
        fake.now += 0.010        # a joined line carrying :OUTP ON goes out 10 ms later
        smu.restart_settling()   # the bench says when it did
        fake.now += 0.004
        smu.measure()
    assert t.sent[-2:] == ["<wait 0.011>", ":READ?"]  # 15 ms after the line went out


# -- ramps: paced by the instrument, bounded ----------------------------------------------------
def test_a_ramp_is_sent_back_to_back_without_the_host_pacing_it():
    with expect(K2400_SETUP + [(":OUTP ON", None)] + [
            (f":SOUR:VOLT:LEV {x:.6E}", None) for x in (0.5, 1.0, 1.5, 2.0)]) as t:
        fake = FakeTime(t.sent)
        smu = Keithley2400(t, LIMITS, name="smu_in1", clock=fake.clock, sleep=fake.sleep)
        smu.set_output_off_mode("HIMP")
        smu.configure("VOLT", 1e-3)
        smu.output_on()
        smu.set_level(2.0)
    assert not any(line.startswith("<wait") for line in t.sent)


def test_a_ramp_has_a_bounded_number_of_steps_and_tiny_ramp_steps_are_refused():
    with pytest.raises(ValueError, match=f"at most {MAX_RAMP_STEPS}"):
        ramp_points(0.0, 10.0, 1e-12)
    with pytest.raises(LimitError, match="ramp_volts = 1e-12 would need more than 500 steps"):
        SourceLimits(max_volts=10.0, max_amps=0.1, max_watts=0.5, ramp_volts=1e-12, ramp_amps=0.01)


class _Permissive(Transport):
    """Answers the state queries of a unit left at ``level`` volts with the output on; counts
    the level lines (a transcript of a thousand steps would say nothing more)."""

    def __init__(self, level: float):
        super().__init__("smu", timeout_s=1.0, retries=0)
        self.answers = {":SOUR:FUNC?": "VOLT", ":SOUR:VOLT:LEV?": f"{level:+.6E}", ":OUTP?": "1",
                        "*OPC?": "1"}
        self.levels: list[float] = []
        self._reply: list[str] = []

    def _send(self, line):
        if line.startswith(":SOUR:VOLT:LEV "):
            self.levels.append(float(line.split()[1]))
        if line in self.answers:
            self._reply.append(self.answers[line])

    def _receive(self, timeout_s):
        return self._reply.pop(0)

    def _close(self):
        pass


def test_the_way_down_from_a_level_beyond_the_limits_is_bounded_too():
    link = _Permissive(level=200.0)  # left by someone else, far beyond this bench's 10 V
    fine = SourceLimits(max_volts=10.0, max_amps=0.1, max_watts=0.5, ramp_volts=0.05, ramp_amps=0.01)
    Keithley2400(link, fine, name="smu").safe_state()  # 4000 steps of 50 mV: too many
    assert len(link.levels) == MAX_RAMP_STEPS and link.levels[-1] == 0.0
    steps = [a - b for a, b in zip([200.0] + link.levels, link.levels)]
    assert max(steps) <= 200.0 / MAX_RAMP_STEPS * (1 + 1e-9)


# -- 34970A: input impedance and scan timeouts --------------------------------------------------
def test_the_34970a_selects_high_input_impedance_after_configuring_every_channel():
    with expect([("CONF:VOLT:DC 1.000000E+01,DEF,(@101:120)", None),
                 ("VOLT:DC:NPLC 1.000000E+01,(@101:120)", None),
                 ("INP:IMP:AUTO ON,(@101:120)", None),   # CONFigure turned it off: after it
                 ("SYST:ERR?", '+0,"No error"')]) as t:
        Keysight34970A(t, name="dmm").configure(range(101, 121), 10.0, nplc=10)


def test_a_scan_gets_a_timeout_derived_from_its_channels_and_integration_time():
    with expect([("CONF:VOLT:DC AUTO,DEF,(@101:120)", None),
                 ("VOLT:DC:NPLC 1.000000E+01,(@101:120)", None),
                 ("INP:IMP:AUTO ON,(@101:120)", None), ("SYST:ERR?", '+0,"No error"'),
                 ("READ?", ",".join(["+1.0E-03"] * 20))]) as t:
        asked = []
        original = t.query
        t.query = lambda line, **kw: (asked.append(kw.get("timeout_s")), original(line, **kw))[1]
        meter = Keysight34970A(t, name="dmm")
        meter.configure(range(101, 121), "AUTO", nplc=10)
        meter.measure(range(101, 121))
    # 20 channels x (2 integrations of 10 PLC at 50 Hz + switching + autorange) x 2, + 1 s
    assert asked[-1] == pytest.approx(1.0 + 2 * 20 * (2 * 10 / 50 + 0.02 + 0.02))
    assert asked[-1] > 5.0  # the old fixed timeout would have cut this scan short


# -- the resistor board -------------------------------------------------------------------------
CONNECT = [("1 *IDN?*0F", framed("1 OK HWLEARN,RB16-MCP4251,RB0001,2.0.0,2.0")),
           ("2 INFO?*C2", framed("2 OK CH=16 MIN=0 MAX=256 SAFE=256 WDT=2000"))]
ALL_SAFE = ",".join(f"{k}=256" for k in range(16))


def test_connect_waits_for_the_boot_announcement_of_a_board_that_restarts_when_opened():
    with expect([(UNASKED, "garbage from the bootloader"), (UNASKED, framed("0 BOOT EXT"))]
                + CONNECT) as t:
        board = ResistorBoard(t, name="board")
        board.connect(boot_wait_s=2.0)
    assert board.boot_cause == "EXT" and board.restarts == 1


def test_a_board_restarting_when_its_port_opens_is_never_spoken_to_before_it_has_booted():
    firmware = BoardFirmware(FakeBackend(), channels=16, auto_reset=True, boot_s=0.3)
    with TcpLineServer(firmware) as server:
        with SerialTransport(f"socket://127.0.0.1:{server.port}", "board", timeout_s=5.0) as link:
            board = ResistorBoard(link)
            board.connect(boot_wait_s=5.0)
            assert board.boot_cause == "EXT" and board.status().booted
    assert firmware.dropped == []


def test_without_the_wait_the_bootloader_swallows_the_first_request():
    firmware = BoardFirmware(FakeBackend(), auto_reset=True, boot_s=0.3)
    with TcpLineServer(firmware) as server:
        with SerialTransport(f"socket://127.0.0.1:{server.port}", "board", timeout_s=0.1,
                             retries=0) as link:
            with pytest.raises(Exception):  # noqa: B017 (a timeout or the boot line: either way lost)
                ResistorBoard(link).connect(boot_wait_s=0.0)
    assert firmware.dropped and "*IDN?" in firmware.dropped[0]


def test_a_restarted_board_is_verified_before_it_is_acknowledged():
    with expect(CONNECT + [(framed("3 GET?"), framed(f"3 OK {ALL_SAFE}")),
                           (framed("4 STAT?"), framed("4 OK ARMED=0 TRIPPED=0 BOOTED=1 RESET=EXT SHDN=0")),
                           (framed("5 CLR"), framed("5 OK"))]) as t:
        board = ResistorBoard(t, name="board")
        board.connect()
        board.acknowledge_boot()


def test_a_board_in_hardware_shutdown_is_not_acknowledged_nor_counted_safe():
    with expect(CONNECT + [(framed("3 GET?"), framed(f"3 OK {ALL_SAFE}")),
                           (framed("4 STAT?"), framed("4 OK ARMED=0 TRIPPED=0 BOOTED=1 RESET=POR SHDN=1")),
                           (framed("5 SAFE"), framed("5 OK SHDN=1")),
                           (framed("6 GET?"), framed(f"6 OK {ALL_SAFE}"))]) as t:
        board = ResistorBoard(t, name="board")
        board.connect()
        with pytest.raises(VerifyError, match="SHDN is asserted"):
            board.acknowledge_boot()          # no CLR went out
        with pytest.raises(VerifyError, match="hardware shutdown"):
            board.safe_state()


def test_a_board_that_restarted_mid_run_refuses_codes_until_verified():
    with expect(CONNECT + [("3 SET 1=5*CC", framed("3 ERR 9 BOOTED"))]) as t:
        board = ResistorBoard(t, name="board")
        board.connect()
        with pytest.raises(BoardRebooted, match="restarted"):
            board.write_codes({1: 5})


def test_a_boot_announcement_read_in_place_of_a_reply_is_counted_as_a_restart():
    with expect(CONNECT + [("3 GET? 1*7A", [framed("0 BOOT WDT"), framed("3 OK 1=256")])]) as t:
        board = ResistorBoard(t, name="board")
        board.connect()
        assert board.read_codes([1]) == {1: 256}
    assert board.restarts == 1 and board.boot_cause == "WDT"


def test_the_example_bench_names_the_board_the_shipped_sketch_builds():
    sketch = (ROOT / "drivers/firmware/resistor_board/resistor_board.ino").read_text()
    chips = int(re.search(r"const uint8_t CHIPS = (\d+);", sketch).group(1))
    channels = re.search(r"\n\s+([^,\n]+),\s+// channels", sketch).group(1)
    model = re.search(r'"(RB\d+-MCP4251)", // model', sketch).group(1)
    assert channels == "2 * CHIPS" and len(re.findall(r"\b\d+\b", re.search(
        r"CHIP_SELECT\[CHIPS\] = \{([^}]*)\}", sketch).group(1))) == chips
    bench = tomllib.loads((ROOT / "examples/virtual-bench.toml").read_text())
    board = bench["instruments"]["board"]
    assert (board["channels"], board["model"]) == (2 * chips, model)
