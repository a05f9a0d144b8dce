"""Switch matrices: the exact lines of both dialects (transcripts), their safety rules (break
before make, forbidden channels, cold switching, read-back), the 2400's pulses, and the emulators
behind real sockets."""

import pytest

from drivers.instruments.errors import InstrumentError, LimitError, ProtocolError, VerifyError
from drivers.instruments.keithley24xx import Keithley2400, SourceLimits
from drivers.instruments.switch_matrix import HotSwitchError, Keithley707B, ScpiSwitch, parse_channel
from drivers.instruments.transport import VisaTransport
from simulator.emulators import Keithley707BEmulator, ScpiSwitchEmulator, TcpLineServer
from tests.scripted_transport import expect

NO_ERRORS_707B = [("print(errorqueue.count)", "0.00000e+00")]


def m707(t, **kw):
    return Keithley707B(t, name="matrix", cards={1: "7174A", 2: "7174A"}, **kw)


def test_707b_identify_reads_idn_and_refuses_another_model():
    with expect([("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 707B,04089762,01.03.00")]) as t:
        assert m707(t).identify().model == "MODEL 707B"
    with expect([("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1,C30")]) as t:
        with pytest.raises(ProtocolError, match="2400"):
            m707(t).identify()


def test_707b_reset_opens_everything_sets_break_before_make_and_the_forbidden_channels():
    script = [("reset()", None), ("errorqueue.clear()", None),
              ("channel.connectrule = channel.BREAK_BEFORE_MAKE", None),
              ('channel.setforbidden("1H12,2A01")', None), *NO_ERRORS_707B,
              ('print(channel.getclose("allslots"))', "nil")]
    with expect(script) as t:
        m707(t, forbidden=["2A01", "1H12"]).reset()


def test_707b_route_opens_reads_back_then_closes_and_reads_back_again():
    script = [('channel.open("1A01")', None), ('print(channel.getclose("allslots"))', "nil"),
              ('channel.close("1H01")', None), ('print(channel.getclose("allslots"))', "1H01")]
    calls = []
    with expect(script) as t:
        matrix = m707(t, cold_check=lambda: calls.append("asked") or None)
        matrix.route(open=["1A01"], close=["1H01"])
    assert calls == ["asked", "asked"]  # before each switching command
    assert matrix.operations == 1 and matrix.closures[parse_channel("1H01")] == 1


def test_a_route_counts_only_relays_that_changed():
    script = [('channel.close("1A01,1B02")', None), ('print(channel.getclose("allslots"))', "1A01;1B02"),
              ('channel.open("1A01")', None), ('print(channel.getclose("allslots"))', "1B02")]
    with expect(script) as t:
        matrix = m707(t)
        matrix.route(close=["1A01", "1B02"])
        matrix.route(open=["1A01"])
    assert matrix.operations == 3


def test_switching_hot_is_refused_before_any_byte():
    with expect([]) as t:
        matrix = m707(t, cold_check=lambda: "smu_in0 sources 0.3 V")
        with pytest.raises(HotSwitchError, match="smu_in0 sources 0.3 V"):
            matrix.route(close=["1A01"])


@pytest.mark.parametrize("kwargs, words", [
    ({"close": ["1A13"]}, "not on the installed cards"), ({"close": ["3A01"]}, "not on the installed cards"),
    ({"close": ["1I01"]}, "slot-row-column"), ({"close": ["1A01", "1A01"]}, "twice"),
    ({"close": ["1A01"], "open": ["1A01"]}, "both"), ({"close": ["2A01"]}, "forbidden")])
def test_bad_channels_are_refused_before_any_byte(kwargs, words):
    with expect([]) as t:
        with pytest.raises(LimitError, match=words):
            m707(t, forbidden=["2A01"]).route(**kwargs)


def test_a_relay_that_does_not_close_is_a_verify_error_naming_it():
    script = [('channel.close("1A01,1B02")', None), ('print(channel.getclose("allslots"))', "1A01")]
    with expect(script) as t:
        with pytest.raises(VerifyError, match="1A01") as caught:
            m707(t).route(close=["1A01", "1B02"])
    assert caught.value.channels == {"1B02": ("closed", "open")}


def test_707b_errors_are_read_from_the_error_queue():
    script = [("print(errorqueue.count)", "1.00000e+00"),
              ("print(errorqueue.next())", "-2.03000e+02\tCommand protected\t2.00000e+00\t0.00000e+00")]
    with expect(script) as t:
        with pytest.raises(InstrumentError, match="Command protected"):
            m707(t).check_errors()


def test_707b_safe_state_opens_every_relay_and_reads_back_and_counts_a_hot_opening():
    script = [('channel.open("allslots")', None), ('print(channel.getclose("allslots"))', "nil")]
    with expect(script) as t:
        matrix = m707(t, cold_check=lambda: "prog not at 0 V")
        matrix.safe_state()
    assert matrix.hot_openings == 1


def test_707b_close_counts():
    with expect([('print(channel.getcount("1A01,2B03"))', "12,3")]) as t:
        assert m707(t).close_counts(["1A01", "2B03"]) == {"1A01": 12, "2B03": 3}


def test_scpi_switch_writes_srcc_channel_lists_and_reads_every_relay_back():
    every = "(@1101:1104,1201:1204)"
    script = [("ROUT:OPEN (@1101)", None), (f"ROUT:CLOS? {every}", "0,0,0,0,0,0,0,0"),
              ("ROUT:CLOS (@1204)", None), (f"ROUT:CLOS? {every}", "0,0,0,0,0,0,0,1"),
              ("DIAG:REL:CYCL? (@1204)", "+7")]
    with expect(script) as t:
        matrix = ScpiSwitch(t, name="switch", cards={1: "2x4"})
        matrix.route(open=["1A01"], close=["1B04"])
        assert matrix.close_counts(["1B04"]) == {"1B04": 7}


def test_scpi_switch_reset_and_errors():
    script = [("*RST", None), ("*CLS", None), ("SYST:ERR?", '0,"No error"'),
              ("ROUT:CLOS? (@1101:1102)", "0,0")]
    with expect(script) as t:
        ScpiSwitch(t, name="switch", cards={1: "1x2"}).reset()


# ------------------------------------------------------------------------------ pulses (2400)
PULSE_LIMITS = SourceLimits(max_volts=1.0, max_amps=0.01, max_watts=0.01, ramp_volts=0.5, ramp_amps=0.001)


def test_2400_pulses_by_source_auto_clear_each_level_back_to_zero():
    script = [(":OUTP?", "0"), (":SOUR:FUNC VOLT", None), (":SOUR:VOLT:LEV 0.000000E+00", None),
              (":SENS:CURR:PROT 5.000000E-03", None), (":SOUR:DEL 8.000000E-04", None),
              (":SENS:CURR:NPLC 1.000000E-02", None), (":SOUR:CLE:AUTO ON", None), (":SYST:ERR?", '0,"No error"'),
              (":SOUR:VOLT:LEV 9.000000E-01", None), (":READ?", "9.0E-01,1.2E-04,0"),
              (":SOUR:VOLT:LEV 0.000000E+00", None)]
    with expect(script) as t:
        prog = Keithley2400(t, PULSE_LIMITS, name="prog")
        prog.configure_pulses(5e-3, 8e-4, 0.01)
        reading = prog.pulse(0.9)
    assert reading.amps == pytest.approx(1.2e-4) and not reading.in_compliance


@pytest.mark.parametrize("volts, words", [(1.2, "exceeds"), (float("nan"), "not finite")])
def test_a_pulse_beyond_the_limits_is_refused_before_any_byte(volts, words):
    script = [(":OUTP?", "0"), (":SOUR:FUNC VOLT", None), (":SOUR:VOLT:LEV 0.000000E+00", None),
              (":SENS:CURR:PROT 5.000000E-03", None), (":SOUR:DEL 0.000000E+00", None),
              (":SENS:CURR:NPLC 1.000000E-02", None), (":SOUR:CLE:AUTO ON", None), (":SYST:ERR?", '0,"No error"')]
    with expect(script) as t:
        prog = Keithley2400(t, PULSE_LIMITS, name="prog")
        prog.configure_pulses(5e-3, 0.0, 0.01)
        with pytest.raises(LimitError, match=words):
            prog.pulse(volts)


def test_a_pulse_before_pulses_are_configured_is_refused():
    with expect([]) as t:
        with pytest.raises(InstrumentError, match="configure_pulses"):
            Keithley2400(t, PULSE_LIMITS, name="prog").pulse(0.5)


# ------------------------------------------------------------------------------ emulators
class _Sources:
    """A backend that says which sources are on (for the switch log) and records the relays."""

    def __init__(self):
        self.hot: dict = {}
        self.relays = frozenset()

    def hot_sources(self):
        return dict(self.hot)

    def set_relays(self, closed):
        self.relays = closed


@pytest.mark.parametrize("dialect", ["707b", "scpi"])
def test_the_drivers_drive_the_emulators_over_loopback_and_the_log_tells_hot_from_cold(dialect):
    backend = _Sources()
    if dialect == "707b":
        device = Keithley707BEmulator(backend, cards={1: "7174A"})
    else:
        device = ScpiSwitchEmulator(backend, cards={1: "8x12"})
    with TcpLineServer(device) as server:
        transport = VisaTransport(server.resource, "matrix", timeout_s=2.0)
        try:
            cls = Keithley707B if dialect == "707b" else ScpiSwitch
            matrix = cls(transport, name="matrix", cards={1: "7174A" if dialect == "707b" else "8x12"},
                         forbidden=["1C03"])
            matrix.identify()
            matrix.reset()
            matrix.route(close=["1A01", "1B02"])
            assert backend.relays == {"1A01", "1B02"}
            backend.hot = {"smu_in0": 0.3}
            matrix.route(open=["1A01"])   # no cold check installed: the emulator's log sees it hot
            backend.hot = {}
            matrix.safe_state()
            assert device.is_safe() and not matrix.unsafe()
            assert matrix.close_counts(["1A01", "1B02", "1C03"]) == {"1A01": 1, "1B02": 1, "1C03": 0}
        finally:
            transport.close()
    log = device.switch_log
    assert [(e.verb, e.channels) for e in log] == [("close", ("1A01", "1B02")), ("open", ("1A01",)),
                                                   ("open", ("1B02",))]
    assert [bool(e.hot) for e in log] == [False, True, False]


def test_the_707b_emulator_refuses_to_close_a_forbidden_channel_and_closes_nothing_of_that_statement():
    device = Keithley707BEmulator(_Sources(), cards={1: "7174A"})
    device.handle('channel.setforbidden("1B02")')
    device.handle('channel.close("1A01,1B02")')
    assert device.closed == set()
    assert device.handle("print(errorqueue.count)") == "1.00000e+00"
    assert device.handle("print(errorqueue.next())").startswith("-2.03000e+02\tCommand protected")
    assert device.handle('print(channel.getclose("slot1"))') == "nil"
    device.handle('channel.close("slot1")')
    assert device.handle("print(errorqueue.next())").startswith("-2.24000e+02")
    device.handle('channel.close("1A01:1B03")')   # a block of rows A-B, columns 01-03: holds 1B02
    assert device.closed == set()
    device.handle('channel.clearforbidden("1B02") channel.close("1A01:1B03")')
    assert device.closed == {"1A01", "1A02", "1A03", "1B01", "1B02", "1B03"}
