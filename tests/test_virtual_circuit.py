"""The virtual bench's physics against the solver and the simulated rig: a unit sourcing volts in
series is the edge's series source, output drives equal SimulatedRig's, compliance behaves as a
real source-measure unit's, board codes go through the calibration, mux channels read resistor
voltages by their polarity."""

from __future__ import annotations

import numpy as np
import pytest

from hwlearn.solver import Excitation, KirchhoffSolver
from simulator.devices import DeviceModel
from simulator.instrument_backend import SourceSetting
from simulator.rig import SimulatedRig
from simulator.virtual_circuit import VirtualCircuit
from tests.bench_helpers import example_config

BIG = 1.0  # a compliance no test reaches: amps when sourcing volts, volts when sourcing current


@pytest.fixture
def vc():
    """The example bench's circuit with varied codes on the board (not all at the safe code)."""
    circuit = VirtualCircuit(example_config())
    codes = {ch: 20 + 15 * ch for ch in range(16)}
    circuit.write_codes(codes)
    return circuit


def volts(level, compliance=BIG, on=True):
    return SourceSetting("VOLT", level, compliance, on)


def amps(level, compliance=10.0, on=True):
    return SourceSetting("CURR", level, compliance, on)


def apply(vc, **settings):
    for name, setting in settings.items():
        vc.apply_source(name, setting)


def solver_volts(vc, excitation, open_edges=()):
    """Resistor voltages of every edge, solved directly (no instruments)."""
    r = vc.true_resistances()
    r[list(open_edges)] += 1e12
    return KirchhoffSolver(vc.network).factorize(r).solve(excitation).edge_voltages()[:, 0]


def sim_rig(vc) -> SimulatedRig:
    return SimulatedRig(vc.network.with_resistances(vc.true_resistances()),
                        DeviceModel(r_min=1.0, r_max=1e7), np.random.default_rng(0))


INPUTS = np.array([0.7, -0.4])          # series source volts of Rv0_0 (HI at a), Rv1_0 (LO at a)
PLACEHOLDER = dict(smu_out0=amps(0.0, on=False), smu_out1=amps(0.0, on=False),
                   smu_out2=amps(0.0, on=False))


def drive_inputs(vc, values=INPUTS):
    # smu_in1 has LO at the edge's a node: it sources -s for a series source s
    apply(vc, smu_in0=volts(values[0]), smu_in1=volts(-values[1]), **PLACEHOLDER)


# ------------------------------------------------------------------------------ sources
def test_a_unit_sourcing_volts_in_series_is_the_edges_series_source(vc):
    drive_inputs(vc)
    net = vc.network
    expected = solver_volts(vc, Excitation(series=(net.inputs, INPUTS[:, None])))
    np.testing.assert_allclose(vc.resistor_volts(), expected, rtol=1e-12, atol=1e-15)
    # amps out of HI: the resistor's current a -> b enters HI when HI is at a
    r = vc.true_resistances()
    i = expected[net.inputs] / r[net.inputs]
    states = vc.unit_states()
    assert states["smu_in0"].amps == pytest.approx(-i[0], rel=1e-12)
    assert states["smu_in1"].amps == pytest.approx(i[1], rel=1e-12)
    assert states["smu_in0"].volts == 0.7 and not states["smu_in0"].limited


@pytest.mark.parametrize("mode, values", [("open", None), ("current", [2e-4, -1e-4, 5e-5]),
                                          ("clamp", [0.12, -0.05, 0.2])])
def test_output_units_equal_the_simulated_rigs_drives(vc, mode, values):
    polarity = {"smu_out0": 1, "smu_out1": -1, "smu_out2": 1}
    outputs = {}
    for (name, p), x in zip(polarity.items(), values or [0.0] * 3):
        if mode == "open":
            outputs[name] = amps(0.0, on=False)
        elif mode == "current":
            outputs[name] = amps(-p * x)      # j from a to b beside the resistor
        else:
            outputs[name] = volts(p * x)      # holding v = p[a] - p[b]
    apply(vc, smu_in0=volts(0.7), smu_in1=volts(0.4), **outputs)
    rig = sim_rig(vc)
    rig.set_inputs(INPUTS)
    rig.drive_outputs(mode, values)
    readable = rig.capabilities.readable
    np.testing.assert_allclose(vc.resistor_volts()[readable], rig.measure(readable),
                               rtol=1e-9, atol=1e-13)
    if mode == "clamp":
        np.testing.assert_allclose(vc.resistor_volts()[vc.network.outputs], values, rtol=1e-12)


def test_current_mode_outputs_at_zero_equal_open_ones(vc):
    drive_inputs(vc)
    off = vc.resistor_volts()
    apply(vc, smu_out0=amps(0.0), smu_out1=amps(0.0), smu_out2=amps(0.0))
    np.testing.assert_allclose(vc.resistor_volts(), off, rtol=1e-12, atol=1e-15)


def test_an_input_sourcing_current_forces_its_branch_current(vc):
    apply(vc, smu_in0=amps(2e-4), smu_in1=volts(0.3), **PLACEHOLDER)
    r = vc.true_resistances()
    e0 = vc.network.inputs[0]
    assert vc.resistor_volts()[e0] == pytest.approx(-2e-4 * r[e0], rel=1e-12)  # HI at a: i = -I
    # the same circuit as a voltage source at the volts the unit reports
    forced = vc.resistor_volts()
    apply(vc, smu_in0=volts(vc.unit_states()["smu_in0"].volts))
    np.testing.assert_allclose(vc.resistor_volts(), forced, rtol=1e-7, atol=1e-12)


def test_an_input_that_is_off_opens_its_branch(vc):
    apply(vc, smu_in0=volts(0.7), smu_in1=volts(0.0, on=False), **PLACEHOLDER)
    net = vc.network
    e1 = net.inputs[1]
    expected = solver_volts(vc, Excitation(series=(net.inputs[:1], np.array([[0.7]]))), open_edges=[e1])
    got = vc.resistor_volts()
    assert abs(got[e1]) < 1e-9
    keep = np.arange(net.n_edges) != e1
    np.testing.assert_allclose(got[keep], expected[keep], rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------ compliance
def test_a_voltage_source_over_its_current_limit_becomes_a_current_source_at_the_limit(vc):
    drive_inputs(vc)
    demand = vc.unit_states()["smu_in0"].amps   # > 0: a source delivering power drives out of HI
    assert demand > 0
    limit = demand / 3
    apply(vc, smu_in0=volts(0.7, compliance=limit))
    state = vc.unit_states()["smu_in0"]
    assert state.limited
    assert state.amps == pytest.approx(limit, rel=1e-12)   # same sign as the demand, at the limit
    assert 0.0 < state.volts < 0.7                         # short of its level
    limited = vc.resistor_volts()
    # physically the same circuit as a current source at the limit
    apply(vc, smu_in0=amps(limit))
    np.testing.assert_allclose(vc.resistor_volts(), limited, rtol=1e-7, atol=1e-12)
    assert not vc.unit_states()["smu_in0"].limited
    # and it leaves compliance as soon as the limit admits the demand
    apply(vc, smu_in0=volts(0.7, compliance=demand * 1.01))
    state = vc.unit_states()["smu_in0"]
    assert not state.limited and state.volts == 0.7


def test_a_current_source_over_its_voltage_limit_becomes_a_voltage_source_at_the_limit(vc):
    drive_inputs(vc)
    apply(vc, smu_out0=amps(2e-3, compliance=10.0))
    wanted = vc.unit_states()["smu_out0"].volts
    assert not vc.unit_states()["smu_out0"].limited
    apply(vc, smu_out0=amps(2e-3, compliance=abs(wanted) / 2))
    state = vc.unit_states()["smu_out0"]
    assert state.limited
    assert state.volts == pytest.approx(np.sign(wanted) * abs(wanted) / 2, rel=1e-12)
    assert abs(state.amps) < 2e-3
    limited = vc.resistor_volts()
    apply(vc, smu_out0=volts(state.volts))
    np.testing.assert_allclose(vc.resistor_volts(), limited, rtol=1e-9, atol=1e-12)
    apply(vc, smu_out0=amps(1e-4, compliance=abs(wanted) / 2))
    assert not vc.unit_states()["smu_out0"].limited


def test_several_units_in_compliance_settle_together(vc):
    apply(vc, smu_in0=volts(1.5, compliance=1e-5), smu_in1=volts(-1.5, compliance=1e-5),
          smu_out0=amps(1e-3, compliance=0.05), smu_out1=amps(0.0, on=False),
          smu_out2=volts(0.3, compliance=1e-6))
    states = vc.unit_states()
    assert all(states[n].limited for n in ("smu_in0", "smu_in1", "smu_out0", "smu_out2"))
    assert abs(states["smu_in0"].amps) == pytest.approx(1e-5)
    assert abs(states["smu_out0"].volts) == pytest.approx(0.05)
    assert abs(states["smu_out2"].amps) == pytest.approx(1e-6)


# ------------------------------------------------------------------------------ board and mux
def test_board_codes_set_resistances_through_the_calibration(vc):
    config = vc.config
    vc.write_codes({0: 128, 5: 3})
    r = vc.true_resistances()
    for wire in config.board_wiring:
        if wire.channel in (0, 5):
            cal = config.calibration["board"][wire.channel]
            assert r[wire.edge] == cal.ohms_of(128 if wire.channel == 0 else 3)
    assert vc.read_codes([0, 5, 7]) == {0: 128, 5: 3, 7: 20 + 15 * 7}


def test_mux_channels_read_resistor_voltages_by_polarity(vc):
    drive_inputs(vc)
    v = vc.resistor_volts()
    wires = {w.channel: w for w in vc.config.mux}
    readings = vc.read_channels(sorted(wires) + [201])
    for (_channel, wire), reading in zip(sorted(wires.items()), readings):
        assert reading == wire.polarity * v[wire.edge]
    assert wires[109].polarity == -1 and readings[-1] == 0.0  # 201: spans no edge


def test_read_noise_is_added_to_every_channel():
    config = example_config()
    noisy = VirtualCircuit(config, read_noise_volts=1e-3, seed=3)
    apply(noisy, smu_in0=volts(0.5), smu_in1=volts(0.2), **PLACEHOLDER)
    exact = {w.channel: w.polarity * noisy.resistor_volts()[w.edge] for w in config.mux}
    channels = sorted(exact)
    errors = np.array([np.array(noisy.read_channels(channels)) - [exact[c] for c in channels]
                       for _ in range(50)])
    assert 0.8e-3 < errors.std() < 1.2e-3, errors.std()


# ------------------------------------------------------------------------------ meter loading, faults
def test_a_meter_reading_loads_the_network_by_its_input_resistance():
    """With dmm_loading the reading is V_oc R_in / (R_in + R_th): checked against a solve with
    the meter's resistance really placed across the edge."""
    config = example_config()
    vc = VirtualCircuit(config, dmm_loading=True)
    apply(vc, smu_in0=volts(0.7), smu_in1=volts(0.4), **PLACEHOLDER)
    wire = next(w for w in config.mux if w.edge not in set(config.network.inputs.tolist()))
    r_in = 2e3  # a poor meter, so the loading is large and the check sharp
    loaded = vc.read_channels([wire.channel], [r_in])[0]
    r = vc.true_resistances()
    ideal = vc.read_channels([wire.channel])[0]
    with_meter = r.copy()
    with_meter[wire.edge] = r[wire.edge] * r_in / (r[wire.edge] + r_in)
    net = vc.network
    expected = KirchhoffSolver(net).factorize(with_meter).solve(
        Excitation(series=(net.inputs, np.array([[0.7], [-0.4]])))).edge_voltages()[wire.edge, 0]
    assert loaded == pytest.approx(wire.polarity * expected, rel=1e-9)
    assert abs(loaded) < abs(ideal)
    assert VirtualCircuit(config).read_channels([wire.channel], [r_in]) != [loaded]  # off by default


def test_a_stuck_board_channel_ignores_writes(vc):
    vc.stick("board", 3)
    vc.write_codes({3: 7, 4: 9})
    assert vc.read_codes([3, 4]) == {3: 20 + 15 * 3, 4: 9}


def test_a_drifting_edge_changes_with_every_scan_while_the_host_still_believes_its_value(vc):
    edge = vc.config.board_wiring[0].edge
    before = vc.true_resistances()[edge]
    vc.start_drift(edge, per_read=0.01)
    vc.read_channels([101])
    vc.read_channels([101])
    assert vc.true_resistances()[edge] == pytest.approx(before * 1.01 ** 2, rel=1e-12)
    assert vc.circuit.known_resistances()[edge] == before
