"""Third-party conformance: drivers nobody here wrote (pymeasure's and qcodes' Keithley 2400 and
2450 drivers, and a raw-pyvisa 34970A logging script as a user writes one) drive the virtual
bench's emulators through pyvisa-py on loopback. Each goes through identify, reset, source,
limit, measure, output off and shutdown; what comes back is checked against the simulated
circuit behind the emulators, and every third-party reset or shutdown must leave the output off.

pymeasure and qcodes are test-only dependencies (the ``thirdparty`` extra); without them those
tests are skipped with the reason. The 34970A script needs only pyvisa."""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest
import pyvisa

from simulator.virtual_bench import VirtualBench
from tests.bench_helpers import example_config

needs_pymeasure = pytest.mark.skipif(importlib.util.find_spec("pymeasure") is None,
                                     reason="pymeasure is not installed (pip install -e '.[thirdparty]')")
needs_qcodes = pytest.mark.skipif(importlib.util.find_spec("qcodes") is None,
                                  reason="qcodes is not installed (pip install -e '.[thirdparty]')")
VISA = {"read_termination": "\n", "write_termination": "\n", "timeout": 5000}


@pytest.fixture(scope="module")
def vb():
    """The example bench (2400s and 2450s on a 4 x 4 lattice, one 34970A) on ephemeral ports."""
    with VirtualBench(example_config(), twin=True) as bench:
        yield bench


@pytest.fixture(autouse=True)
def instruments_reset(vb):
    yield
    for name, device in vb.emulators.items():
        if name.startswith("smu"):
            device.power_cycle()
            device.esr = 0


def unit_amps(vb, name: str) -> float:
    return vb.circuit.unit_states()[name].amps


def assert_off(vb, name: str, sync) -> None:
    """``sync()``: a query through the driver's own link, so that every line it wrote before
    has been executed (the emulator handles a link's lines in order)."""
    sync()
    device = vb.emulators[name]
    assert not device.output, f"{name}: the output is still on at {device.level}"


def no_unanswered_queries(vb, name: str) -> list[str]:
    return [r.line for r in vb.emulators[name].received if r.reply is None and "?" in r.line]


# -- pymeasure --------------------------------------------------------------------------------------
@needs_pymeasure
def test_pymeasure_keithley2400_sources_measures_and_shuts_down(vb):
    from pymeasure.instruments.keithley import Keithley2400

    smu = Keithley2400(vb.resources["smu_in1"], visa_library="@py", **VISA)
    assert "MODEL 2400" in smu.id
    smu.reset()
    smu.source_mode = "voltage"
    smu.compliance_current = 1e-3
    smu.source_voltage = 0.5
    smu.current_range = 1e-4
    smu.current_nplc = 2
    assert smu.current_range == pytest.approx(1.05e-4) and smu.current_nplc == 2
    smu.enable_source()
    amps = smu.current  # :MEAS:CURR? (it sets the current protection back to 105 uA)
    assert amps == pytest.approx(unit_amps(vb, "smu_in1"), rel=1e-6) and abs(amps) > 1e-6
    assert smu.compliance_current == pytest.approx(1.05e-4)
    assert smu.voltage == pytest.approx(0.5)
    assert smu.check_errors() == []
    smu.shutdown()
    assert_off(vb, "smu_in1", lambda: smu.complete)
    assert vb.emulators["smu_in1"].level["VOLT"] == 0.0
    smu.adapter.close()
    assert no_unanswered_queries(vb, "smu_in1") == []


@needs_pymeasure
def test_pymeasure_keithley2450_current_equals_the_circuit_and_i_times_r_the_dmm(vb):
    from pymeasure.instruments.keithley import Keithley2450

    smu = Keithley2450(vb.resources["smu_in0"], visa_library="@py", **VISA)
    assert "MODEL 2450" in smu.id
    smu.reset()
    smu.source_mode = "voltage"
    smu.compliance_current = 1e-3
    smu.source_voltage = 0.5
    smu.measure_current(nplc=1)
    smu.enable_source()
    amps = smu.current
    assert amps == pytest.approx(unit_amps(vb, "smu_in0"), rel=1e-6) and abs(amps) > 1e-6
    # the scanning voltmeter across the unit's series resistor reads I x R
    config = vb.config
    wire = next(w for w in config.mux if w.edge == config.inputs[0].edge)
    dmm = vb.emulators["dmm"]
    volts = float(dmm.receive(f"MEAS:VOLT:DC? AUTO,(@{wire.channel})"))
    r = vb.circuit.true_resistances()[wire.edge]
    assert volts == pytest.approx(-wire.polarity * amps * r, rel=1e-6)  # amps has 7 digits
    smu.shutdown()
    assert_off(vb, "smu_in0", lambda: smu.complete)
    smu.adapter.close()
    assert no_unanswered_queries(vb, "smu_in0") == []


@needs_pymeasure
@pytest.mark.parametrize("cls_name, name", [("Keithley2400", "smu_in1"),
                                            ("Keithley2400Legacy", "smu_in1"),
                                            ("Keithley2450", "smu_in0")])
def test_pymeasure_resets_leave_the_output_off(vb, cls_name, name):
    import pymeasure.instruments.keithley as keithley

    smu = getattr(keithley, cls_name)(vb.resources[name], visa_library="@py", **VISA)
    vb.emulators[name].receive(":SOUR:VOLT 1.0;:OUTP ON")
    smu.reset()
    assert_off(vb, name, lambda: smu.ask("*OPC?"))
    smu.adapter.close()
    assert vb.emulators[name].error_queue == []


# -- qcodes -----------------------------------------------------------------------------------------
@needs_qcodes
def test_qcodes_keithley2450_is_built_measures_and_snapshots_without_a_timeout(vb):
    from qcodes.instrument_drivers.Keithley import Keithley2450

    k = Keithley2450("vb_k2450", vb.resources["smu_in0"], visalib="@py", terminator="\n", timeout=5)
    try:
        assert k.IDN()["model"] == "2450"
        k.reset()
        k.source_function("voltage")
        k.sense_function("current")
        k.source.limit(1e-3)
        k.source.voltage(0.5)
        k.output_enabled(True)
        amps = k.sense.current()
        assert amps == pytest.approx(unit_amps(vb, "smu_in0"), rel=1e-6) and abs(amps) > 1e-6
        assert k.source.limit_tripped() == 0
        for submodule in k.submodules.values():
            if "user_number" in getattr(submodule, "parameters", {}):
                submodule.user_number(1)  # qcodes leaves it None and would ask USERNone?
        k.snapshot(update=True)
        k.output_enabled(False)
        assert_off(vb, "smu_in0", lambda: k.ask("*OPC?"))
        k.source.voltage(1.0)
        k.output_enabled(True)
        k.reset()
        assert_off(vb, "smu_in0", lambda: k.ask("*OPC?"))
    finally:
        k.close()
    assert no_unanswered_queries(vb, "smu_in0") == []


@needs_qcodes
def test_qcodes_keithley2450_refuses_a_unit_in_tsp_mode(vb):
    from qcodes.instrument_drivers.Keithley import Keithley2450

    device = vb.emulators["smu_in0"]
    device.saved_language = "TSP"
    device.power_cycle()
    try:
        k = Keithley2450("vb_k2450_tsp", vb.resources["smu_in0"], visalib="@py", terminator="\n")
        assert "source_function" not in k.parameters   # qcodes builds nothing in TSP mode
        k.close()
    finally:
        device.saved_language = "SCPI"
        device.power_cycle()


@needs_qcodes
def test_qcodes_keithley2400_sources_measures_and_resets(vb):
    from qcodes.instrument_drivers.Keithley import Keithley2400

    k = Keithley2400("vb_k2400", vb.resources["smu_in1"], visalib="@py", terminator="\n", timeout=5)
    try:
        k.reset()  # ':*RST'
        k.mode("VOLT")
        k.compliancei(1e-3)
        k.volt(0.5)
        k.output(True)
        amps = k.curr()
        assert amps == pytest.approx(unit_amps(vb, "smu_in1"), rel=1e-6) and abs(amps) > 1e-6
        assert k.nplci() == 1.0 and k.rangei() > 0
        k.snapshot(update=True)
        k.reset()
        assert_off(vb, "smu_in1", lambda: k.ask("*OPC?"))
    finally:
        k.close()
    assert no_unanswered_queries(vb, "smu_in1") == []


# -- 34970A: a logging script in raw pyvisa ---------------------------------------------------------
def test_34970a_timed_scan_read_back_from_reading_memory(vb):
    rm = pyvisa.ResourceManager("@py")
    dmm = rm.open_resource(vb.resources["dmm"], **VISA)
    try:
        assert dmm.query("*IDN?").split(",")[1] == "34970A"
        dmm.write("*RST;*CLS")
        dmm.write("CONF:VOLT:DC AUTO,DEF,(@101:104)")
        dmm.write("VOLT:DC:NPLC 1,(@101:104)")
        dmm.write("INP:IMP:AUTO ON,(@101:104)")
        dmm.write("FORM:READ:CHAN ON;:FORM:READ:TIME ON;:FORM:READ:TIME:TYPE REL")
        dmm.write("TRIG:SOUR TIM;:TRIG:TIM 0.05;:TRIG:COUN 4")
        assert dmm.query("ROUT:SCAN?") == "#218(@101,102,103,104)"
        dmm.write("INIT")
        collected: list[str] = []
        deadline = time.monotonic() + 30
        while len(collected) < 3 * 16 and time.monotonic() < deadline:  # as a logging script polls
            points = int(dmm.query("DATA:POIN?"))
            if points:
                collected += dmm.query(f"DATA:REM? {points}").split(",")
            else:
                time.sleep(0.01)
        assert int(dmm.query("DATA:POIN?")) == 0
        values = np.array(collected[0::3], dtype=float).reshape(4, 4)
        stamps = np.array(collected[1::3], dtype=float).reshape(4, 4)
        channels = np.array(collected[2::3], dtype=int).reshape(4, 4)
        assert (channels == [101, 102, 103, 104]).all()
        np.testing.assert_allclose(stamps[:, 0], [0.0, 0.05, 0.10, 0.15])
        wires = {w.channel: w for w in vb.config.mux}
        v = vb.circuit.resistor_volts()
        expected = [wires[ch].polarity * v[wires[ch].edge] if ch in wires else 0.0 for ch in channels[0]]
        np.testing.assert_allclose(values, np.tile(expected, (4, 1)), rtol=1e-12, atol=1e-15)
        assert dmm.query("SYST:ERR?") == '+0,"No error"'
        one_shot = dmm.query("MEAS:VOLT:DC? 10,(@101,102)").split(",")
        np.testing.assert_allclose(np.array(one_shot, dtype=float), expected[:2], atol=1e-15)
    finally:
        dmm.write("ABOR")
        dmm.close()
    assert no_unanswered_queries(vb, "dmm") == []
