"""The emulators as instruments: SCPI syntax as the real units accept it, their state, error
queues and readings. Lines go straight into the device (no socket): one layer."""

import math

import pytest

from simulator.emulators import (
    Keithley2400Emulator,
    Keithley2450Emulator,
    Keysight34970AEmulator,
)
from simulator.emulators.scpi import Header
from tests.fake_backend import FakeBackend


@pytest.fixture
def backend():
    return FakeBackend(load_ohms=1000.0, channel_volts={119: math.nan, 120: 1e6, 118: -50.0})


@pytest.fixture(params=[Keithley2400Emulator, Keithley2450Emulator])
def smu(request, backend):
    return request.param("smu", backend)


def ask(device, line):
    return device.receive(line)


# -- SCPI syntax ----------------------------------------------------------------------------------
def test_header_patterns_accept_short_long_optional_nodes_and_suffix_1():
    header = Header("[:SOURce[1]]:VOLTage[:LEVel][:IMMediate][:AMPLitude]")
    for text in ("VOLT", "SOUR:VOLT", "SOURCE1:VOLTAGE:LEVEL:IMM:AMPL", "SOUR:VOLT:AMPL"):
        tokens = [(w.rstrip("0123456789"), w[len(w.rstrip("0123456789")):])
                  for w in text.upper().split(":")]
        assert header.matches(tokens), text
    for text in ("SOUR2:VOLT", "SOURC:VOLT", "VOLT:LEV:LEV", "SOUR"):
        tokens = [(w.rstrip("0123456789"), w[len(w.rstrip("0123456789")):])
                  for w in text.upper().split(":")]
        assert not header.matches(tokens), text


def test_smu_accepts_short_long_and_any_case(smu):
    for line in (":SOUR:FUNC CURR", ":source:function:mode voltage", "sour1:func volt"):
        assert ask(smu, line) is None
    assert ask(smu, ":SOURce:FUNCtion?") == "VOLT"
    assert smu.error_queue == []


def test_compound_line_continues_the_previous_path(backend):
    smu = Keithley2400Emulator("smu", backend)
    assert ask(smu, ":SOUR:VOLT:LEV 1.5;:SOUR:CURR:LEV 2E-3;:SOUR:FUNC?;*IDN?").startswith(
        "VOLT;KEITHLEY INSTRUMENTS INC.,MODEL 2400")
    ask(smu, ":SOUR:VOLT 1;CURR 3E-3")  # CURR continues the path :SOUR
    ask(smu, ":SENS:CURR:PROT 0.01;:SENS:VOLT:PROT 3")
    assert (smu.level, smu.limit) == ({"VOLT": 1.0, "CURR": 3e-3}, {"VOLT": 0.01, "CURR": 3.0})
    ask(smu, ":SENS:CURR:PROT 0.02;VOLT:PROT 4")  # the path is :SENS:CURR, so this is undefined
    assert smu.limit == {"VOLT": 0.02, "CURR": 3.0}
    assert ask(smu, ":SYST:ERR?").startswith("-113")


def test_unknown_header_goes_to_the_error_queue_and_the_query_gets_no_reply(smu):
    assert ask(smu, ":SOUR:VOLTS?") is None
    assert ask(smu, ":SYST:ERR?").startswith('-113,"Undefined header')
    assert ask(smu, ":SYST:ERR?").startswith('0,"No error')


def test_error_queue_overflow_replaces_the_last_entry(smu):
    for _ in range(15):
        ask(smu, ":BOGUS")
    errors = [ask(smu, ":SYST:ERR?") for _ in range(11)]
    assert [e.split(",")[0] for e in errors] == ["-113"] * 9 + ["-350", "0"]


def test_out_of_range_level_is_refused_and_the_level_kept(smu):
    ask(smu, ":SOUR:FUNC VOLT")
    assert ask(smu, ":SOUR:VOLT 300") is None
    assert smu.level["VOLT"] == 0.0
    assert ask(smu, ":SYST:ERR?").startswith('-222,"Data out of range')


def test_reset_restores_the_documented_state(smu):
    ask(smu, ":SOUR:FUNC CURR")
    ask(smu, ":OUTP ON")
    ask(smu, "*RST")
    assert smu.setting.function == "VOLT" and smu.setting.level == 0.0
    assert smu.setting.compliance == 1.05e-4 and not smu.setting.output_on


def test_every_change_reaches_the_backend(smu, backend):
    ask(smu, ":SOUR:FUNC VOLT")
    ask(smu, ":OUTP ON")
    assert backend.settings["smu"].output_on
    assert ask(smu, ":OUTP?") == "1"


# -- Keithley 2400 ---------------------------------------------------------------------------------
def test_2400_read_with_output_off_is_error_803_and_no_reply(backend):
    smu = Keithley2400Emulator("smu", backend)
    assert ask(smu, ":READ?") is None
    assert ask(smu, ":SYST:ERR?") == '803,"Not permitted with OUTPUT off"'


def test_2400_read_returns_elements_in_fixed_order_with_status_word(backend):
    smu = Keithley2400Emulator("smu", backend)
    for line in (':SENS:FUNC:ON "VOLT","CURR"', ":FORM:ELEM STAT,CURR,VOLT",
                 ":SENS:CURR:PROT 1E-3", ":SOUR:VOLT 0.5", ":OUTP ON"):
        ask(smu, line)
    volts, amps, status = ask(smu, ":READ?").split(",")
    assert (float(volts), float(amps)) == (0.5, 5e-4)
    assert not int(float(status)) & 8
    ask(smu, ":SOUR:VOLT 2")  # 2 mA wanted, 1 mA allowed
    volts, amps, status = ask(smu, ":READ?").split(",")
    assert int(float(status)) & 8 and float(amps) == 1e-3


def test_2400_unmeasured_quantity_reads_nan(backend):
    smu = Keithley2400Emulator("smu", backend)  # *RST: current is the only sense function
    ask(smu, ":FORM:ELEM VOLT,CURR")
    ask(smu, ":SOUR:FUNC CURR")
    ask(smu, ":OUTP ON")
    assert float(ask(smu, ":READ?").split(",")[0]) == 9.91e37


# -- Keithley 2450 ---------------------------------------------------------------------------------
def test_2450_read_buffer_elements_and_limit_status(backend):
    smu = Keithley2450Emulator("smu", backend)
    for line in (":SOUR:VOLT:ILIM 1E-3", ":SOUR:VOLT 0.5", ":OUTP ON"):
        ask(smu, line)
    assert ask(smu, ':READ? "defbuffer1",SOUR,READ,SOURSTAT') == "5.000000E-01,5.000000E-04,136"
    assert ask(smu, ":READ?") == "5.000000E-04"
    assert ask(smu, ":SOUR:VOLT:ILIM:TRIP?") == "0"
    ask(smu, ":SOUR:VOLT 2")
    source, reading, status = ask(smu, ':READ? "defbuffer1", SOURce, READing, SOURSTATus').split(",")
    assert int(status) & 32 and float(reading) == 1e-3
    assert ask(smu, ":SOUR:VOLT:ILIM:TRIP?") == "1"


def test_2450_changing_the_source_function_switches_the_output_off(backend):
    smu = Keithley2450Emulator("smu", backend)
    ask(smu, ":OUTP ON")
    ask(smu, ":SOUR:FUNC CURR")
    assert not smu.output


def test_2450_sense_function_needs_quotes(backend):
    smu = Keithley2450Emulator("smu", backend)
    assert ask(smu, ':SENS:FUNC "VOLT";:SENS:FUNC?') == '"VOLT:DC"'
    ask(smu, ":SENS:FUNC VOLT")
    assert ask(smu, ":SYST:ERR?").startswith("-104")


# -- Keysight 34970A -------------------------------------------------------------------------------
def test_34970a_scans_in_ascending_order_whatever_the_list_order(backend):
    dmm = Keysight34970AEmulator(backend)
    ask(dmm, "CONF:VOLT:DC 10,DEF,(@105,101,103)")
    assert dmm.scan == [101, 103, 105]
    assert ask(dmm, "READ?") == "+1.00000000E-03,+3.00000000E-03,+5.00000000E-03"
    assert ask(dmm, "ROUT:SCAN:SIZE?") == "+3"  # a signed integer, as the 34970A writes it


def test_34970a_overload_and_nan_readings(backend):
    dmm = Keysight34970AEmulator(backend)
    ask(dmm, "CONF:VOLT:DC 10,(@117:120)")
    assert ask(dmm, "READ?").split(",") == ["+1.70000000E-02", "-9.90000000E+37",
                                             "+9.91000000E+37", "+9.90000000E+37"]
    ask(dmm, "CONF:VOLT:DC AUTO,(@118)")
    assert ask(dmm, "READ?") == "-5.00000000E+01"  # 50 V fits the 100 V range on autorange


def test_34970a_scan_of_an_unconfigured_or_missing_channel_is_refused(backend):
    dmm = Keysight34970AEmulator(backend)
    ask(dmm, "ROUT:SCAN (@101)")
    ask(dmm, "ROUT:SCAN (@121)")
    assert ask(dmm, "READ?") is None
    assert [ask(dmm, "SYST:ERR?") for _ in range(4)] == [
        '-221,"Settings conflict"', '-224,"Illegal parameter value"', '-221,"Settings conflict"',
        '+0,"No error"']


def test_34970a_relays_close_one_per_bank_and_open(backend):
    dmm = Keysight34970AEmulator(backend)
    ask(dmm, "ROUT:CLOS (@103)")
    ask(dmm, "ROUT:CLOS (@105)")
    assert ask(dmm, "ROUT:CLOS? (@103,105)") == "0,1"
    assert not dmm.is_safe()
    ask(dmm, "ROUT:OPEN (@101:120)")
    assert dmm.is_safe()


def test_34970a_nplc_and_range_settings_per_channel(backend):
    dmm = Keysight34970AEmulator(backend)
    ask(dmm, "VOLT:DC:NPLC 10,(@101:102)")
    ask(dmm, "SENS:VOLT:DC:RANG 1,(@102)")
    assert ask(dmm, "VOLT:DC:NPLC? (@101,103)") == "+1.00000000E+01,+1.00000000E+00"
    assert ask(dmm, "VOLT:DC:RANG? (@102)") == "+1.00000000E+00"
