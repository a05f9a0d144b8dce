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


# -- IEEE 488.2 and the status system ---------------------------------------------------------------
@pytest.fixture(params=[Keithley2400Emulator, Keithley2450Emulator, Keysight34970AEmulator])
def device(request, backend):
    cls = request.param
    return cls(backend) if cls is Keysight34970AEmulator else cls("smu", backend)


def test_mandatory_common_commands_and_status_queries_answer(device):
    assert ask(device, "*ESR?") == "128"  # power-on
    assert ask(device, "*ESR?") == "0"    # reading clears it
    for line in ("*ESE 60", "*SRE 32", ":STAT:PRES", ":STAT:QUE:CLE", "*CLS", "*WAI", "*OPC"):
        assert ask(device, line) is None, line
    assert (ask(device, "*ESE?"), ask(device, "*SRE?"), ask(device, "*OPC?")) == ("60", "32", "1")
    assert ask(device, "*STB?") == "0"
    assert device.error_queue == []


def test_an_error_sets_the_event_register_and_the_status_byte(device):
    ask(device, "*ESE 32")
    ask(device, "*SRE 36")
    ask(device, ":BOGUS")
    assert int(ask(device, "*STB?")) == 4 | 32 | 64   # error queue, event summary, service request
    assert int(ask(device, "*ESR?")) & 32             # command error
    assert ask(device, ":STAT:QUE?").startswith(("-113", "+-113"[1:]))
    assert ask(device, "*STB?") == "0"


def test_the_rest_of_a_line_after_an_error_is_ignored_and_the_commands_before_it_run(backend):
    """The 2400 manual's command execution rules (IEEE 488.2 parser behaviour)."""
    smu = Keithley2400Emulator("smu", backend)
    ask(smu, ":OUTP ON")
    ask(smu, ":SOUR:VOLT 1;:BOGUS;:OUTP OFF")
    assert smu.level["VOLT"] == 1.0 and smu.output
    assert ask(smu, ":SYST:ERR?").startswith("-113")


def test_third_party_resets_turn_the_output_off(backend):
    """pymeasure's Keithley2400Legacy.reset(), pymeasure's 2450 reset() and qcodes' 2400
    reset() (':*RST': a root colon before a common command)."""
    for cls, line in ((Keithley2400Emulator, "status:queue:clear;*RST;:stat:pres;:*CLS;"),
                      (Keithley2450Emulator, "*RST;:stat:pres;:*CLS;"),
                      (Keithley2400Emulator, ":*RST")):
        smu = cls("smu", backend)
        ask(smu, ":SOUR:VOLT 1.5")
        ask(smu, ":OUTP ON")
        ask(smu, line)
        assert not smu.output and smu.level["VOLT"] == 0.0, line
        assert smu.error_queue == [], (line, smu.error_queue)


def test_numeric_settings_answer_min_max_and_default(backend):
    smu = Keithley2400Emulator("smu", backend)
    assert ask(smu, ":SENS:CURR:PROT? MAX") == "+1.050000E+00"
    assert ask(smu, ":SENS:CURR:PROT? DEF") == "+1.050000E-04"
    assert ask(smu, ":SENS:CURR:NPLC? MIN") == "+1.000000E-02"
    ask(smu, ":SENS:CURR:NPLC MAX")
    assert ask(smu, ":SENS:VOLT:NPLC?") == "+1.000000E+01"  # the 2400's NPLC is global


# -- Keithley 2400: measurement functions, ranges, one-shot measurements ---------------------------
def test_2400_sense_function_on_adds_a_function_while_concurrent(backend):
    smu = Keithley2400Emulator("smu", backend)
    ask(smu, ":SENS:FUNC 'VOLT'")
    assert smu.sense == {"VOLT", "CURR"}
    ask(smu, ":SENS:CURR:PROT 0.01;:SOUR:VOLT 0.5;:OUTP ON")
    volts, amps = (float(x) for x in ask(smu, ":READ?").split(",")[:2])
    assert (volts, amps) == (0.5, 5e-4)
    ask(smu, ":SENS:FUNC:OFF 'CURR'")
    assert ask(smu, ":SENS:FUNC?") == '"VOLT:DC"'
    ask(smu, ":SENS:FUNC:CONC OFF;:SENS:FUNC 'RES'")
    assert ask(smu, ":SENS:FUNC?") == '"RES"'


def test_2400_measure_current_configures_turns_the_output_on_and_reads(backend):
    """:MEASure:CURRent? = :CONFigure:CURRent + :READ? (2400 manual 17-2..17-5): the output
    turns on and the current protection goes back to its *RST value."""
    smu = Keithley2400Emulator("smu", backend)
    ask(smu, ":SENS:CURR:PROT 1E-2;:SOUR:VOLT 0.05")
    fields = ask(smu, ":MEAS:CURR?").split(",")
    assert len(fields) == 5 and float(fields[1]) == pytest.approx(5e-5)
    assert smu.output and smu.limit["VOLT"] == 1.05e-4
    assert float(ask(smu, ":MEAS:VOLT?").split(",")[0]) == 0.05


def test_2400_ranges_round_up_report_full_scale_and_overflow_when_fixed(backend):
    smu = Keithley2400Emulator("smu", backend)
    ask(smu, ":SENS:CURR:RANG 3E-4")
    assert ask(smu, ":SENS:CURR:RANG?") == "+1.050000E-03"
    assert ask(smu, ":SENS:CURR:RANG:AUTO?") == "0"
    ask(smu, ":SENS:CURR:PROT 0.1;:SOUR:VOLT 2;:OUTP ON")   # 2 mA on the 1 mA range
    volts, amps, _, _, status = ask(smu, ":READ?").split(",")
    assert float(amps) == 9.9e37 and int(float(status)) & 1
    ask(smu, ":SOUR:VOLT:RANG 2")
    assert ask(smu, ":SOUR:VOLT 5") is None and smu.level["VOLT"] == 2.0
    assert ask(smu, ":SYST:ERR?").startswith("-222")


def test_2400_trigger_count_and_auto_output_off(backend):
    smu = Keithley2400Emulator("smu", backend)
    ask(smu, ":FORM:ELEM CURR;:TRIG:COUN 3;:SOUR:CLE:AUTO ON;:SOUR:VOLT 0.1")
    assert ask(smu, ":READ?").split(",") == ["+1.000000E-04"] * 3
    assert not smu.output


# -- output-off states ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, fraction", [(Keithley2400Emulator, 0.005), (Keithley2450Emulator, 0.1)])
def test_output_off_states_are_what_the_manuals_say_the_terminals_do(backend, cls, fraction):
    smu = cls("smu", backend)
    ask(smu, ":SOUR:VOLT 1.5")
    normal = backend.settings["smu"]           # *RST: NORMal, a 0 V source with a small limit
    assert (normal.function, normal.level, normal.output_on) == ("VOLT", 0.0, True)
    assert normal.compliance == pytest.approx(fraction * 1.05e-4)
    ask(smu, ":OUTP:SMOD HIMP")
    assert not backend.settings["smu"].output_on
    ask(smu, ":OUTP:SMOD GUAR")
    guard = backend.settings["smu"]
    assert (guard.function, guard.level, guard.output_on) == ("CURR", 0.0, True)
    ask(smu, ":OUTP:SMOD ZERO")
    assert backend.settings["smu"].compliance == 1.05e-4   # sourcing volts: the programmed limit
    ask(smu, ":OUTP ON")
    assert backend.settings["smu"] == smu.setting


def test_2450_output_off_mode_is_kept_per_source_function(backend):
    """2450 reference manual: the output-off state is stored with the source function;
    :OUTPut:SMODe without a function sets it for every function."""
    smu = Keithley2450Emulator("smu", backend)
    ask(smu, ":OUTP:SMOD HIMP")
    assert ask(smu, ":OUTP:CURR:SMOD?") == "HIMP" and ask(smu, ":OUTP:VOLT:SMOD?") == "HIMP"
    ask(smu, ":OUTP:CURR:SMOD ZERO")
    assert ask(smu, ":OUTP:SMOD?") == "HIMP"
    ask(smu, ":SOUR:FUNC CURR")
    assert ask(smu, ":OUTP:SMOD?") == "ZERO"


# -- Keithley 2450: *LANG, one-shot measurements, buffers --------------------------------------------
def test_2450_lang_takes_effect_at_power_up_and_tsp_ignores_scpi(backend):
    smu = Keithley2450Emulator("smu", backend)
    assert ask(smu, "*LANG?") == "SCPI"
    ask(smu, "*LANG TSP")
    assert ask(smu, "*LANG?") == "SCPI"      # nonvolatile: applies after a power cycle
    smu.power_cycle()
    assert ask(smu, "*LANG?") == "TSP"
    assert ask(smu, "*IDN?").startswith("KEITHLEY INSTRUMENTS INC.,MODEL 2450")
    assert ask(smu, ":OUTP ON;*IDN?") is None and not smu.output
    assert ask(smu, ":SYST:ERR?") is None


def test_2450_measure_reads_the_sense_function_into_a_buffer(backend):
    smu = Keithley2450Emulator("smu", backend)
    ask(smu, ":SOUR:VOLT 0.25;:SOUR:VOLT:ILIM 0.01;:OUTP ON")
    assert float(ask(smu, ":MEAS?")) == pytest.approx(2.5e-4)
    assert float(ask(smu, ":MEAS:VOLT? 'defbuffer1'")) == pytest.approx(0.25)
    assert ask(smu, ':SENS:FUNC?') == '"VOLT:DC"'
    assert ask(smu, ":TRAC:ACT? 'defbuffer1'") == "2"
    assert ask(smu, ':TRAC:DATA? 1,2,"defbuffer1",READ,SOUR').split(",")[1::2] == ["2.500000E-01"] * 2
    ask(smu, ":SENS:CURR:RANG 1E-6;:SENS:FUNC 'CURR'")
    assert float(ask(smu, ":READ?")) == 9.9e37   # 250 uA on the 1 uA range


# -- Keysight 34970A: scanning ------------------------------------------------------------------------
def test_34970a_measure_is_one_shot_and_scan_list_query_is_a_block(backend):
    dmm = Keysight34970AEmulator(backend)
    assert ask(dmm, "MEAS:VOLT:DC? 10,DEF,(@103,101)") == "+1.00000000E-03,+3.00000000E-03"
    assert ask(dmm, "ROUT:SCAN?") == "#210(@101,103)"
    ask(dmm, "ROUT:SCAN (@)")
    assert ask(dmm, "ROUT:SCAN?") == "#13(@)"


def test_34970a_reading_memory_and_format(backend):
    dmm = Keysight34970AEmulator(backend)
    ask(dmm, "CONF:VOLT:DC AUTO,(@101:103)")
    ask(dmm, "FORM:READ:CHAN ON;:FORM:READ:UNIT ON;:FORM:READ:TIME ON")
    ask(dmm, "TRIG:COUN 2;:INIT")
    assert ask(dmm, "DATA:POIN?") == "+6"
    first = ask(dmm, "DATA:REM? 2").split(",")
    assert first == ["+1.00000000E-03 VDC", "000000000.000", "101",
                     "+2.00000000E-03 VDC", "000000000.000", "102"]
    assert ask(dmm, "DATA:POIN?") == "+4"
    assert ask(dmm, "DATA:REM? 5") is None
    assert ask(dmm, "SYST:ERR?") == '-222,"Data out of range"'


def test_34970a_timed_scan_fills_memory_as_the_clock_passes(backend):
    now = [100.0]
    dmm = Keysight34970AEmulator(backend, clock=lambda: now[0])
    ask(dmm, "CONF:VOLT:DC (@101,102);:FORM:READ:TIME ON;:FORM:READ:CHAN ON")
    ask(dmm, "TRIG:SOUR TIM;:TRIG:TIM 5;:TRIG:COUN 3;:INIT")
    assert ask(dmm, "DATA:POIN?") == "+2"     # the first sweep at INIT
    now[0] += 4.9
    assert ask(dmm, "DATA:POIN?") == "+2"
    now[0] += 0.2
    dmm.tick(now[0])                           # sweeps fall due without a query
    assert len(dmm.memory) == 4 and dmm.scanning
    now[0] += 5
    readings = ask(dmm, "DATA:REM? 6").split(",")
    assert readings[1::3] == ["000000000.000"] * 2 + ["000000005.000"] * 2 + ["000000010.000"] * 2
    assert not dmm.scanning


def test_34970a_input_impedance_follows_inp_imp_auto_and_the_range(backend):
    dmm = Keysight34970AEmulator(backend)
    ask(dmm, "CONF:VOLT:DC 10,(@101);:CONF:VOLT:DC 100,(@102)")
    assert dmm._input_ohms([101, 102]) == [10e6, 10e6]
    ask(dmm, "INP:IMP:AUTO ON,(@101,102)")
    assert ask(dmm, "INP:IMP:AUTO? (@101,102)") == "1,1"
    assert dmm._input_ohms([101, 102]) == [10e9, 10e6]
