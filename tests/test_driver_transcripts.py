"""Protocol transcripts: the exact lines every driver sends for each command family, and how it
reads each reply, against a scripted in-memory transport (no instrument, no emulator)."""

import math

import pytest

from drivers.instruments.errors import (
    ComplianceError,
    InstrumentError,
    InstrumentTimeout,
    LimitError,
    ProtocolError,
    ReadingError,
    VerifyError,
    WatchdogTripped,
)
from drivers.instruments.keithley24xx import Keithley2400, Keithley2450, SourceLimits, ramp_points
from drivers.instruments.resistor_board import ResistorBoard, crc8
from drivers.instruments.scanning_voltmeter import Keysight34970A, scan_list
from tests.scripted_transport import CLEAR, ScriptedTransport, Timeout, expect

LIMITS = SourceLimits(max_volts=10.0, max_amps=0.1, max_watts=0.5, ramp_volts=0.5,
                      ramp_amps=0.01)

# -- Keithley 2400 ----------------------------------------------------------------------------
K2400_CONFIGURE_VOLT = [(":OUTP?", "0"), (":SOUR:FUNC VOLT", None),
                        (":SOUR:VOLT:LEV 0.000000E+00", None),
                        (":SENS:CURR:PROT 1.000000E-03", None), (":SYST:ERR?", '0,"No error"')]


def k2400(t):
    return Keithley2400(t, LIMITS, name="smu_in0")


def test_2400_identify_reads_idn():
    with expect([("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1234567,C30   Mar 17 2006")]) as t:
        identity = k2400(t).identify()
    assert (identity.model, identity.serial) == ("MODEL 2400", "1234567")


def test_2400_identify_refuses_another_model():
    with expect([("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 2410,1,C30")]) as t:
        with pytest.raises(ProtocolError, match="2410"):
            k2400(t).identify()


def test_2400_reset_enables_concurrent_volts_and_amps_and_the_three_elements():
    with expect([("*RST", None), ("*CLS", None), (":SENS:FUNC:CONC ON", None),
                 (':SENS:FUNC:ON "VOLT","CURR"', None), (":FORM:ELEM VOLT,CURR,STAT", None),
                 (":SYST:ERR?", '0,"No error"')]) as t:
        k2400(t).reset()


def test_2400_configure_volts_sets_level_zero_and_current_compliance():
    with expect(K2400_CONFIGURE_VOLT) as t:
        k2400(t).configure("VOLT", 1e-3)


def test_2400_configure_current_sets_voltage_compliance():
    with expect([(":OUTP?", "0"), (":SOUR:FUNC CURR", None), (":SOUR:CURR:LEV 0.000000E+00", None),
                 (":SENS:VOLT:PROT 5.000000E+00", None), (":SYST:ERR?", '0,"No error"')]) as t:
        k2400(t).configure("CURR", 5.0)


def test_2400_configure_raises_on_queued_instrument_errors():
    with expect(K2400_CONFIGURE_VOLT[:-1] + [(":SYST:ERR?", '-222,"Data out of range"'),
                                             (":SYST:ERR?", '0,"No error"')]) as t:
        with pytest.raises(InstrumentError, match="-222"):
            k2400(t).configure("VOLT", 1e-3)


def test_2400_configure_refuses_while_output_is_on():
    with expect([(":OUTP?", "1")]) as t:
        with pytest.raises(InstrumentError, match="output is on"):
            k2400(t).configure("VOLT", 1e-3)


def test_2400_output_on_before_compliance_is_refused_without_io():
    with expect([]) as t:
        with pytest.raises(InstrumentError, match="configure"):
            k2400(t).output_on()


def test_2400_output_on_then_level_ramps_in_steps_no_larger_than_the_ramp_step():
    with expect(K2400_CONFIGURE_VOLT + [
            (":OUTP ON", None), (":SOUR:VOLT:LEV 4.000000E-01", None),
            (":SOUR:VOLT:LEV 8.000000E-01", None), (":SOUR:VOLT:LEV 1.200000E+00", None),
            (":SOUR:VOLT:LEV 9.000000E-01", None)]) as t:
        smu = k2400(t)
        smu.configure("VOLT", 1e-3)
        smu.output_on()
        smu.set_level(1.2)
        smu.set_level(0.9)


def test_2400_level_change_with_output_off_is_one_write_and_output_on_starts_at_zero():
    with expect(K2400_CONFIGURE_VOLT + [
            (":SOUR:VOLT:LEV 1.000000E+00", None), (":SOUR:VOLT:LEV 0.000000E+00", None),
            (":OUTP ON", None), (":SOUR:VOLT:LEV 5.000000E-01", None),
            (":SOUR:VOLT:LEV 1.000000E+00", None)]) as t:
        smu = k2400(t)
        smu.configure("VOLT", 1e-3)
        smu.set_level(1.0)
        smu.output_on()


def test_2400_measure_returns_volts_amps_from_one_read():
    with expect(K2400_CONFIGURE_VOLT + [
            (":OUTP ON", None), (":READ?", "+5.000000E-01,+5.000000E-04,+2.150800E+04")]) as t:
        smu = k2400(t)
        smu.configure("VOLT", 1e-3)
        smu.output_on()
        reading = smu.measure()
    assert (reading.volts, reading.amps, reading.in_compliance) == (0.5, 5e-4, False)


@pytest.mark.parametrize("reply, error", [
    ("+1.000000E+00,+1.000000E-03,+2.151600E+04", ComplianceError),   # status bit 3
    ("+1.000000E+00,+1.000000E-03,+8.755600E+04", ComplianceError),   # bit 16, range compliance
    ("+9.900000E+37,+1.000000E-03,+2.150800E+04", ReadingError),      # overflow value
    ("+1.000000E+00,+9.910000E+37,+2.150800E+04", ReadingError),      # SCPI NaN
    ("+1.000000E+00,+1.000000E-03,+2.150900E+04", ReadingError),      # status bit 0, OFLO
])
def test_2400_measure_raises_for_compliance_overrange_and_nan(reply, error):
    with expect(K2400_CONFIGURE_VOLT + [(":OUTP ON", None), (":READ?", reply)]) as t:
        smu = k2400(t)
        smu.configure("VOLT", 1e-3)
        smu.output_on()
        with pytest.raises(error, match="smu_in0"):
            smu.measure()


def test_2400_measure_with_output_off_is_refused_without_io():
    with expect(K2400_CONFIGURE_VOLT) as t:
        smu = k2400(t)
        smu.configure("VOLT", 1e-3)
        with pytest.raises(InstrumentError, match="output is off"):
            smu.measure()


def test_2400_safe_state_reads_the_instrument_ramps_to_zero_and_switches_off():
    with expect([(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT:LEV?", "+1.200000E+00"), (":OUTP?", "1"),
                 (":SOUR:VOLT:LEV 8.000000E-01", None), (":SOUR:VOLT:LEV 4.000000E-01", None),
                 (":SOUR:VOLT:LEV 0.000000E+00", None), (":OUTP OFF", None), ("*OPC?", "1")]) as t:
        k2400(t).safe_state()


def test_2400_safe_state_when_already_safe_only_switches_off_again():
    with expect([(":SOUR:FUNC?", "CURR"), (":SOUR:CURR:LEV?", "+0.000000E+00"), (":OUTP?", "0"),
                 (":OUTP OFF", None), ("*OPC?", "1")] * 2) as t:
        smu = k2400(t)
        smu.safe_state()
        smu.safe_state()


def test_2400_safe_state_zeroes_a_level_left_programmed_with_output_off():
    with expect([(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT:LEV?", "+3.000000E+00"), (":OUTP?", "0"),
                 (":OUTP OFF", None), (":SOUR:VOLT:LEV 0.000000E+00", None), ("*OPC?", "1")]) as t:
        k2400(t).safe_state()


def test_2400_safe_state_switches_off_even_when_reading_the_state_fails():
    with expect([(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT:LEV?", Timeout()), (CLEAR, None),
                 (":SOUR:VOLT:LEV?", Timeout()), (":OUTP OFF", None)]) as t:
        with pytest.raises(InstrumentTimeout):
            k2400(t).safe_state()


def test_2400_safe_state_ramps_a_current_source_with_the_current_ramp_step():
    with expect([(":SOUR:FUNC?", "CURR"), (":SOUR:CURR:LEV?", "-2.000000E-02"), (":OUTP?", "1"),
                 (":SOUR:CURR:LEV -1.000000E-02", None), (":SOUR:CURR:LEV 0.000000E+00", None),
                 (":OUTP OFF", None), ("*OPC?", "1")]) as t:
        k2400(t).safe_state()


# -- limits: refused before any byte ----------------------------------------------------------
@pytest.mark.parametrize("action, words", [
    (lambda s: s.configure("VOLT", 0.2), ["current compliance", "0.2 A", "0.1 A"]),
    (lambda s: s.configure("CURR", 12.0), ["voltage compliance", "12 V", "10 V"]),
    (lambda s: s.configure("VOLT", -1e-3), ["current compliance", "-0.001", "> 0"]),
    (lambda s: s.configure("OHMS", 1e-3), ["OHMS"]),
    (lambda s: s.configure("VOLT", float("nan")), ["not finite"]),
    (lambda s: s.configure("VOLT", "1e-3; *RST"), ["real number"]),
    (lambda s: s.configure("VOLT", True), ["real number"]),
])
def test_2400_configure_limit_violations_raise_before_any_io(action, words):
    with expect([]) as t:
        with pytest.raises(LimitError) as info:
            action(k2400(t))
    for word in ["smu_in0", "nothing was sent"] + words:
        assert word in str(info.value)


@pytest.mark.parametrize("compliance, level, words", [
    (1e-3, 11.0, ["source volts 11 V", "|V| <= 10 V"]),
    (1e-3, -10.5, ["source volts -10.5 V", "|V| <= 10 V"]),
    (0.1, 6.0, ["6 x 0.1 = 0.6 W", "0.5 W"]),
    (1e-3, math.inf, ["not finite"]),
])
def test_2400_level_limit_violations_raise_before_any_io(compliance, level, words):
    script = [(":OUTP?", "0"), (":SOUR:FUNC VOLT", None), (":SOUR:VOLT:LEV 0.000000E+00", None),
              (f":SENS:CURR:PROT {compliance:.6E}", None), (":SYST:ERR?", '0,"No error"')]
    with expect(script) as t:
        smu = k2400(t)
        smu.configure("VOLT", compliance)
        with pytest.raises(LimitError) as info:
            smu.set_level(level)
    for word in ["smu_in0"] + words:
        assert word in str(info.value)


def test_compliance_change_is_checked_against_power_at_the_present_level():
    limits = SourceLimits(max_volts=10.0, max_amps=0.1, max_watts=0.1, ramp_volts=0.5,
                          ramp_amps=0.01)
    with expect(K2400_CONFIGURE_VOLT + [(":OUTP ON", None)] + [
            (f":SOUR:VOLT:LEV {x:.6E}", None) for x in (0.5, 1.0, 1.5, 2.0)]) as t:
        smu = Keithley2400(t, limits, name="smu_in0")
        smu.configure("VOLT", 1e-3)
        smu.output_on()
        smu.set_level(2.0)
        with pytest.raises(LimitError, match="2 x 0.06 = 0.12 W exceeds the limit 0.1 W"):
            smu.set_compliance(0.06)


def test_limits_beyond_the_hardware_range_are_a_config_error():
    with pytest.raises(LimitError, match="max_volts"):
        Keithley2400(ScriptedTransport([]), SourceLimits(300, 0.1, 1, 1, 0.01))
    with pytest.raises(LimitError, match="ramp_volts"):
        SourceLimits(10, 0.1, 1, float("nan"), 0.01)


def test_ramp_points_never_step_further_than_the_ramp_step():
    for start, stop, step in [(0, 1.2, 0.5), (1.2, 0, 0.5), (-3, 3, 0.7), (0, 0.3, 0.1),
                              (0.1, 0.1, 0.5)]:
        points = [start] + ramp_points(start, stop, step)
        assert points[-1] == stop
        assert all(abs(b - a) <= step * (1 + 1e-12) for a, b in zip(points, points[1:]))
    assert len(ramp_points(0, 0.3, 0.1)) == 3


# -- Keithley 2450 ----------------------------------------------------------------------------
K2450_CONFIGURE_VOLT = [(":OUTP?", "0"), (":SOUR:FUNC VOLT", None), (":SOUR:VOLT 0.000000E+00", None),
                        (":SOUR:VOLT:ILIM 1.000000E-03", None), (':SENS:FUNC "CURR"', None),
                        (":SYST:ERR?", '0,"No error;0;2024/01/01 00:00:00.000"')]
K2450_MEASURE = ':READ? "defbuffer1",SOUR,READ,SOURSTAT'


def k2450(t):
    return Keithley2450(t, LIMITS, name="smu_out0")


def test_2450_identify_and_reset():
    with expect([("*IDN?", "KEITHLEY INSTRUMENTS,MODEL 2450,04096218,1.7.12b"), ("*LANG?", "SCPI"),
                 ("*RST", None),
                 ("*CLS", None), (":SYST:ERR?", '0,"No error;0;0"')]) as t:
        smu = k2450(t)
        assert smu.identify().firmware == "1.7.12b"
        smu.reset()


def test_2450_configure_volts_sets_current_limit_and_senses_current():
    with expect(K2450_CONFIGURE_VOLT) as t:
        k2450(t).configure("VOLT", 1e-3)


def test_2450_configure_current_sets_voltage_limit_and_senses_volts():
    with expect([(":OUTP?", "0"), (":SOUR:FUNC CURR", None), (":SOUR:CURR 0.000000E+00", None),
                 (":SOUR:CURR:VLIM 5.000000E+00", None), (':SENS:FUNC "VOLT"', None),
                 (":SYST:ERR?", '0,"No error;0;0"')]) as t:
        k2450(t).configure("CURR", 5.0)


def test_2450_level_ramps_with_its_own_level_command():
    with expect(K2450_CONFIGURE_VOLT + [(":OUTP ON", None), (":SOUR:VOLT -3.500000E-01", None),
                                        (":SOUR:VOLT -7.000000E-01", None)]) as t:
        smu = k2450(t)
        smu.configure("VOLT", 1e-3)
        smu.output_on()
        smu.set_level(-0.7)


def test_2450_measure_reads_source_readback_sense_and_source_status_in_one_query():
    with expect(K2450_CONFIGURE_VOLT + [(":OUTP ON", None),
                                        (K2450_MEASURE, "5.000000E-01,5.000000E-04,136")]) as t:
        smu = k2450(t)
        smu.configure("VOLT", 1e-3)
        smu.output_on()
        reading = smu.measure()
    assert (reading.volts, reading.amps, reading.in_compliance) == (0.5, 5e-4, False)


def test_2450_measure_when_sourcing_current_swaps_source_and_reading():
    with expect([(":OUTP?", "0"), (":SOUR:FUNC CURR", None), (":SOUR:CURR 0.000000E+00", None),
                 (":SOUR:CURR:VLIM 5.000000E+00", None), (':SENS:FUNC "VOLT"', None),
                 (":SYST:ERR?", '0,"No error;0;0"'), (":OUTP ON", None),
                 (K2450_MEASURE, "0.000000E+00,1.000000E-01,136")]) as t:
        smu = k2450(t)
        smu.configure("CURR", 5.0)
        smu.output_on()
        reading = smu.measure()
    assert (reading.volts, reading.amps) == (0.1, 0.0)


@pytest.mark.parametrize("reply, error", [
    ("1.000000E+00,1.000000E-03,168", ComplianceError),  # STAT_LIMIT (32) set
    ("1.000000E+00,9.900000E+37,136", ReadingError),
    ("1.000000E+00,9.910000E+37,136", ReadingError),
    ("1.000000E+00,NaN,136", ReadingError),
])
def test_2450_measure_raises_for_limit_overrange_and_nan(reply, error):
    with expect(K2450_CONFIGURE_VOLT + [(":OUTP ON", None), (K2450_MEASURE, reply)]) as t:
        smu = k2450(t)
        smu.configure("VOLT", 1e-3)
        smu.output_on()
        with pytest.raises(error):
            smu.measure()


def test_2450_malformed_measure_reply_is_a_protocol_error():
    with expect(K2450_CONFIGURE_VOLT + [(":OUTP ON", None), (K2450_MEASURE, "1.0,2.0")]) as t:
        smu = k2450(t)
        smu.configure("VOLT", 1e-3)
        smu.output_on()
        with pytest.raises(ProtocolError, match="2 fields, expected 3"):
            smu.measure()


def test_2450_safe_state_and_output_off():
    with expect([(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT?", "5.000000E-01"), (":OUTP?", "1"),
                 (":SOUR:VOLT 0.000000E+00", None), (":OUTP OFF", None), ("*OPC?", "1")]) as t:
        k2450(t).safe_state()
    with expect(K2450_CONFIGURE_VOLT + [(":OUTP ON", None), (":SOUR:VOLT 3.000000E-01", None),
                                        (":SOUR:VOLT 0.000000E+00", None),
                                        (":OUTP OFF", None)]) as t:
        smu = k2450(t)
        smu.configure("VOLT", 1e-3)
        smu.output_on()
        smu.set_level(0.3)
        smu.output_off()


def test_2450_errors_empties_the_queue():
    with expect([(":SYST:ERR?", '-113,"Undefined header;1;2024/01/01 00:00:00.000"'),
                 (":SYST:ERR?", '0,"No error;0;0"')]) as t:
        assert k2450(t).errors() == ['-113,"Undefined header;1;2024/01/01 00:00:00.000"']


# -- Keysight 34970A --------------------------------------------------------------------------
def dmm(t, **kwargs):
    return Keysight34970A(t, name="dmm", **kwargs)


CONFIGURE_101_105 = [("CONF:VOLT:DC 1.000000E+01,DEF,(@101:105)", None),
                     ("VOLT:DC:NPLC 1.000000E+00,(@101:105)", None),
                     ("INP:IMP:AUTO ON,(@101:105)", None),
                     ("SYST:ERR?", '+0,"No error"')]


def test_34970a_identify_and_reset():
    with expect([("*IDN?", "Agilent Technologies,34970A,MY41012345,13-2-2"), ("*RST", None),
                 ("*CLS", None), ("SYST:ERR?", '+0,"No error"')]) as t:
        meter = dmm(t)
        assert meter.identify().model == "34970A"
        meter.reset()


def test_34970a_configure_writes_range_nplc_and_a_compressed_scan_list():
    with expect([("CONF:VOLT:DC AUTO,DEF,(@101,103:105,110)", None),
                 ("VOLT:DC:NPLC 1.000000E+01,(@101,103:105,110)", None),
                 ("INP:IMP:AUTO ON,(@101,103:105,110)", None),
                 ("SYST:ERR?", '+0,"No error"')]) as t:
        dmm(t).configure([110, 103, 104, 105, 101], "AUTO", nplc=10)


def test_34970a_measure_scans_once_and_returns_readings_in_the_order_asked():
    with expect(CONFIGURE_101_105 + [
            ("ROUT:SCAN (@101,103)", None), ("READ?", "+1.00000000E-01,+3.00000000E-01"),
            ("READ?", "+1.10000000E-01,+3.10000000E-01")]) as t:
        meter = dmm(t)
        meter.configure(range(101, 106), 10.0)
        assert list(meter.measure([103, 101])) == [0.3, 0.1]
        assert list(meter.measure([101, 103])) == [0.11, 0.31]  # same list: no ROUT:SCAN


@pytest.mark.parametrize("reading", ["+9.90000000E+37", "-9.90000000E+37", "+9.91000000E+37",
                                     "NAN"])
def test_34970a_overload_and_nan_readings_raise_naming_the_channel(reading):
    with expect(CONFIGURE_101_105 + [("READ?", ",".join(["+1.0E-01"] * 4 + [reading]))]) as t:
        meter = dmm(t)
        meter.configure(range(101, 106), 10.0)
        with pytest.raises(ReadingError, match="channel 105"):
            meter.measure(range(101, 106))


def test_34970a_reading_count_must_match_the_scan_list():
    with expect(CONFIGURE_101_105 + [("READ?", "+1.0E-01,+2.0E-01")]) as t:
        meter = dmm(t)
        meter.configure(range(101, 106), 10.0)
        with pytest.raises(ProtocolError, match="2 readings for 5 channels"):
            meter.measure(range(101, 106))


@pytest.mark.parametrize("action, words", [
    (lambda m: m.configure([121], 10.0), ["121", "101-120"]),
    (lambda m: m.configure([101, 101], 10.0), ["twice"]),
    (lambda m: m.configure([101], 5.0), ["5 V", "range"]),
    (lambda m: m.configure([101], 10.0, nplc=3), ["3 NPLC"]),
    (lambda m: m.configure([], 10.0), ["no channels"]),
    (lambda m: m.measure([102]), ["[102]", "not configured"]),
    (lambda m: m.measure([101.0]), ["integer"]),
])
def test_34970a_requests_outside_the_card_or_settings_raise_before_any_io(action, words):
    with expect([]) as t:
        with pytest.raises(LimitError) as info:
            action(dmm(t))
    for word in ["dmm"] + words:
        assert word in str(info.value)


def test_34970a_safe_state_aborts_and_opens_every_relay_of_every_card():
    script = [("ABOR", None), ("ROUT:OPEN (@101:120,201:216)", None), ("*OPC?", "1")]
    with expect(script * 2) as t:
        meter = dmm(t, cards={1: "34901A", 2: "34902A"})
        meter.safe_state()
        meter.safe_state()


def test_scan_list_compresses_runs():
    assert scan_list([101]) == "(@101)"
    assert scan_list([105, 101, 102, 103, 120, 119]) == "(@101:103,105,119:120)"


# -- resistor board ---------------------------------------------------------------------------
def framed(body: str) -> str:
    return f"{body}*{crc8(body.encode()):02X}"


CONNECT = [("1 *IDN?*0F", framed("1 OK HWLEARN,RB8-MCP4251,RB0001,2.0.0,2.0")),
           ("2 INFO?*C2", framed("2 OK CH=8 MIN=0 MAX=256 SAFE=256 WDT=2000"))]


def board(t, **kwargs):
    b = ResistorBoard(t, name="board", **kwargs)
    b.connect()
    return b


def test_board_crc8_is_crc8_smbus():
    assert crc8(b"123456789") == 0xF4
    assert framed("7 SET 0=128,3=40") == "7 SET 0=128,3=40*71"


def test_board_connect_reads_identity_and_info():
    with expect(CONNECT) as t:
        b = board(t)
    assert b.identity.protocol == "2.0" and b.info.safe_code == 256 and b.info.watchdog_s == 2.0


def test_board_with_another_protocol_major_version_is_refused():
    with expect([("1 *IDN?*0F", framed("1 OK HWLEARN,RB8-MCP4251,RB0001,1.0.0,1.0"))]) as t:
        with pytest.raises(ProtocolError, match="protocol 1.0"):
            board(t)


def test_board_write_codes_sets_all_in_one_message_and_reads_back():
    with expect(CONNECT + [("3 SET 0=10,3=200*2F", framed("3 OK")),
                           ("4 GET? 0,3*9F", framed("4 OK 0=10,3=200"))]) as t:
        board(t).write_codes({3: 200, 0: 10})


def test_board_read_back_mismatch_raises_naming_the_channel():
    with expect(CONNECT + [("3 SET 0=10,3=200*2F", framed("3 OK")),
                           ("4 GET? 0,3*9F", framed("4 OK 0=10,3=199"))]) as t:
        with pytest.raises(VerifyError, match="channel 3 wrote 200 read 199"):
            board(t).write_codes({3: 200, 0: 10})


def test_board_late_reply_with_an_old_id_is_discarded():
    with expect(CONNECT + [("3 GET?*E0", [framed("2 OK CH=8 MIN=0 MAX=256 SAFE=256 WDT=2000"),
                                           framed("3 OK 0=1,1=2,2=3,3=4,4=5,5=6,6=7,7=8")])]) as t:
        assert board(t).read_codes() == {k: k + 1 for k in range(8)}


def test_board_garbled_reply_is_discarded_and_the_request_resent_with_a_new_id():
    with expect(CONNECT + [("3 GET? 1*7A", "3 OK 1=5*00"), (framed("4 GET? 1"), framed("4 OK 1=5"))]) as t:
        assert board(t).read_codes([1]) == {1: 5}
    assert t.faults.count("garbled", "scripted") == 1


def test_board_reply_garbled_more_often_than_the_retries_raises():
    with expect(CONNECT + [("3 GET? 1*7A", "3 OK 1=5*00"), (framed("4 GET? 1"), "4 OK 1=5")]) as t:
        with pytest.raises(ProtocolError, match="no checksum"):
            board(t).read_codes([1])


def test_board_heartbeat_is_one_attempt_never_resent():
    with expect(CONNECT + [("3 HB*EA", "3 OK*00")]) as t:
        with pytest.raises(ProtocolError, match="checksum 00"):
            board(t).heartbeat()


def test_board_set_with_a_garbled_reply_is_judged_by_its_read_back_never_resent():
    with expect(CONNECT + [("3 SET 1=5*CC", "3 OK*FF"),
                           ("4 GET? 1*03", framed("4 OK 1=5"))]) as t:
        board(t).write_codes({1: 5})
    assert t.faults.count("garbled") == 1


def test_board_error_replies_raise_with_code_and_name():
    with expect(CONNECT + [("3 HB*EA", framed("0 ERR 1 CHECKSUM")),
                           ("4 CLR*32", framed("4 ERR 3 UNKNOWN"))]) as t:
        b = board(t)
        with pytest.raises(InstrumentError, match="error 1 CHECKSUM"):
            b.heartbeat()
        with pytest.raises(InstrumentError, match="error 3 UNKNOWN"):
            b.clear_watchdog()


def test_board_tripped_watchdog_refusal_is_its_own_error():
    with expect(CONNECT + [("3 SET 1=5*CC", framed("3 ERR 8 TRIPPED"))]) as t:
        with pytest.raises(WatchdogTripped, match="clear_watchdog"):
            board(t).write_codes({1: 5})


def test_board_set_is_never_resent_after_a_timeout():
    with expect(CONNECT + [("3 SET 1=5*CC", Timeout())]) as t:
        with pytest.raises(InstrumentTimeout, match="1 attempt"):
            board(t).write_codes({1: 5})


def test_board_get_is_resent_after_a_timeout_and_the_late_reply_is_drained():
    with expect(CONNECT + [("3 GET? 1*7A", Timeout(late=[framed("3 OK 1=5")])), (CLEAR, None),
                           ("3 GET? 1*7A", framed("3 OK 1=5"))]) as t:
        assert board(t).read_codes([1]) == {1: 5}


def test_board_status_heartbeat_and_clear():
    with expect(CONNECT + [("3 STAT?*DF", framed("3 OK ARMED=1 TRIPPED=1 BOOTED=0 RESET=EXT SHDN=0")),
                           ("4 HB*88", framed("4 OK ARMED=1 TRIPPED=1 BOOTED=0 RESET=EXT SHDN=0")),
                           ("5 CLR*50", framed("5 OK"))]) as t:
        b = board(t)
        status = b.status()
        assert status.armed and status.tripped and not status.booted and status.reset_cause == "EXT"
        b.heartbeat()
        b.clear_watchdog()


def test_board_safe_state_sends_safe_and_verifies_every_channel():
    all_safe = ",".join(f"{k}=256" for k in range(8))
    with expect(CONNECT + [("3 SAFE*68", framed("3 OK SHDN=0")),
                           ("4 GET?*3F", framed(f"4 OK {all_safe}")),
                           ("5 SAFE*9E", framed("5 OK SHDN=0")),
                           ("6 GET?*6D", framed(f"6 OK {all_safe}"))]) as t:
        b = board(t)
        b.safe_state()
        b.safe_state()


def test_board_safe_state_raises_if_a_channel_is_not_at_the_safe_code():
    with expect(CONNECT + [("3 SAFE*68", framed("3 OK SHDN=0")),
                           ("4 GET?*3F", framed("4 OK 0=256,1=256,2=256,3=256,4=256,5=256,6=12,"
                                                "7=256"))]) as t:
        with pytest.raises(VerifyError, match="6: 12"):
            board(t).safe_state()


@pytest.mark.parametrize("codes, allowed, words", [
    ({0: 300}, None, ["channel 0 code 300", "0..256"]),
    ({8: 1}, None, ["channel 8", "0-7"]),
    ({0: 5}, {0: (10, 200)}, ["channel 0 code 5", "10..200"]),
    ({1: 50}, {0: (10, 200)}, ["channel 1", "allows"]),
    ({0: 12.0}, None, ["integer"]),
    ({0: True}, None, ["integer"]),
    ({}, None, ["no codes"]),
])
def test_board_codes_outside_the_limits_raise_before_any_io(codes, allowed, words):
    with expect(CONNECT) as t:
        b = board(t, allowed=allowed)
        with pytest.raises(LimitError) as info:
            b.write_codes(codes)
    for word in ["board"] + words:
        assert word in str(info.value)


def test_board_use_before_connect_is_refused():
    with expect([]) as t:
        with pytest.raises(InstrumentError, match="connect"):
            ResistorBoard(t, name="board").write_codes({0: 1})
