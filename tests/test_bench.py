"""The Bench through the virtual bench: the real drivers over pyvisa-py sockets and pyserial's
socket:// to emulators backed by one simulated circuit.

Pinned here: Rig semantics equal SimulatedRig's on the same circuit; limits raise before any
byte is sent (the emulators' logs say so); no reading taken in compliance, overrange or NaN is
returned; safe_state after an exception and on close leaves every emulated instrument safe;
instruments that are not the bench file's are refused; a sample of every rule costs at most
1.5x the essential exchanges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.bench import Bench, BenchError
from hwlearn.plans import minimum_exchanges_per_sample
from hwlearn.ports import Ports
from hwlearn.rig import RigError
from hwlearn.rules import CoupledLearning, Omega, SymmetricTwoPhase, TwoPhase
from hwlearn.training.rig_substrate import RigSubstrate
from simulator.devices import DeviceModel
from simulator.rig import SimulatedRig
from simulator.virtual_bench import VirtualBench
from tests.bench_helpers import board_lines, example_config, twin_bench

ATOL = 2e-9  # volts: the DMM's 9 significant digits on readings below 1 V


@pytest.fixture
def rig():
    with twin_bench() as (vb, bench):
        yield vb, bench


def simulated_twin(bench) -> SimulatedRig:
    """The simulated rig of the same circuit: same network, the resistances the bench holds."""
    return SimulatedRig(bench.network.with_resistances(bench.resistances()),
                        DeviceModel(r_min=1.0, r_max=1e7), np.random.default_rng(0))


def logs(vb) -> dict[str, list[str]]:
    return {name: board_lines(dev) if name == "board" else dev.lines()
            for name, dev in vb.emulators.items()}


# ------------------------------------------------------------------------------ semantics
def test_rig_calls_give_the_simulated_rigs_numbers(rig):
    vb, bench = rig
    learnable = bench.capabilities.learnable
    achieved = bench.program(learnable, np.linspace(300.0, 9000.0, learnable.size))
    sim = simulated_twin(bench)
    np.testing.assert_array_equal(sim.resistances(), bench.resistances())
    # a perfect calibration: what the host knows is what the circuit has
    np.testing.assert_array_equal(bench.resistances(), vb.circuit.true_resistances())
    readable = bench.capabilities.readable
    np.testing.assert_array_equal(readable, sim.capabilities.readable)
    steps = [([0.8, -0.3], "open", None), ([0.8, -0.3], "current", [1e-4, -2e-4, 5e-5]),
             (None, "current", [3e-4, 1e-4, -1e-4]), ([0.5, 0.25], "clamp", [0.1, -0.05, 0.2]),
             ([0.5, 0.25], "open", None), ([-1.0, 1.5], "clamp", [0.25, 0.125, -0.5])]
    for inputs, mode, values in steps:
        for r in (bench, sim):
            r.set_inputs(inputs)
            r.drive_outputs(mode, values)
        np.testing.assert_allclose(bench.measure(readable), sim.measure(readable), rtol=0, atol=ATOL,
                                   err_msg=f"inputs {inputs}, outputs {mode} {values}")
    # program again: only changed codes go out, the returned ohms are the codes held
    again = bench.program(learnable[:3], achieved[:3] * 1.3)
    sim.program(learnable[:3], again)
    bench.set_inputs([0.5, 0.5])
    sim.set_inputs([0.5, 0.5])
    for r in (bench, sim):
        r.drive_outputs("open")
    np.testing.assert_allclose(bench.measure(readable), sim.measure(readable), rtol=0, atol=ATOL)
    # measure returns edges in the order asked, repeats included
    order = readable[::-1][:5].tolist() + [readable[0]]
    np.testing.assert_allclose(bench.measure(order), sim.measure(order), rtol=0, atol=ATOL)


def test_program_picks_the_nearest_calibrated_code_and_writes_only_changes(rig):
    vb, bench = rig
    edge = bench.network.edge_indices(["Rh0_0"])[0]        # board channel 0: 71 + 9620 code / 256
    cal = bench.config.calibration["board"][0]
    got = bench.program([edge], [1000.0])
    code = round((1000.0 - 71.0) * 256 / 9620.0)
    assert vb.emulators["board"].codes()[0] == code and got[0] == cal.ohms_of(code)
    assert bench.resistances()[edge] == got[0]
    before = board_lines(vb.emulators["board"])
    bench.round_trips.reset()
    bench.program([edge], [1000.0 + 1.0])               # the same code: nothing to write
    assert bench.round_trips.by_call == {"program": 0} or bench.round_trips.by_call == {}
    assert board_lines(vb.emulators["board"]) == before


def test_ohms_range_is_what_program_accepts(rig):
    vb, bench = rig
    low, high = bench.ohms_range()
    tunable = bench.capabilities.tunable
    np.testing.assert_array_equal(bench.program(tunable, low[tunable]), low[tunable])
    np.testing.assert_array_equal(bench.program(tunable, high[tunable]), high[tunable])
    with pytest.raises(RigError, match="outside the calibrated range"):
        bench.program(tunable[:1], high[tunable[:1]] * 1.001)
    fixed = np.setdiff1d(np.arange(bench.network.n_edges), tunable)
    np.testing.assert_array_equal(low[fixed], bench.network.resistance[fixed])


def test_set_inputs_and_drive_outputs_stage_and_measure_applies(rig):
    vb, bench = rig
    before = logs(vb)
    bench.set_inputs([0.5, 0.5])
    bench.drive_outputs("current", [1e-4, 1e-4, 1e-4])
    assert logs(vb) == before, "staging must not talk to any instrument"
    bench.apply()
    assert vb.emulators["smu_in0"].output and vb.emulators["smu_in0"].level["VOLT"] == 0.5
    assert vb.emulators["smu_in1"].level["VOLT"] == -0.5           # LO at the edge's a node
    assert vb.emulators["smu_out0"].level["CURR"] == -1e-4         # HI at a: j = -I
    assert vb.emulators["smu_out1"].level["CURR"] == 1e-4          # LO at a
    assert all(vb.emulators[n].off_mode == "HIMP" for n in ("smu_in0", "smu_out1"))


# ------------------------------------------------------------------------------ limits
def test_limit_violations_raise_before_any_byte_is_sent(rig):
    vb, bench = rig
    bench.set_inputs([0.4, 0.2])
    bench.drive_outputs("open")
    reference = bench.measure(bench.capabilities.readable)
    before = logs(vb)
    violations = [
        (lambda: bench.set_inputs([2.5, 0.0]), ["smu_in0", "2.5 V", "max_volts = 2 V"]),
        (lambda: bench.set_inputs([math.nan, 0.0]), ["finite"]),
        (lambda: bench.drive_outputs("current", [0.0, 3e-3, 0.0]), ["smu_out1", "max_amps"]),
        (lambda: bench.drive_outputs("clamp", [6.0, 0.0, 0.0]), ["smu_out0", "6 V", "max_volts"]),
        (lambda: bench.drive_outputs("sideways"), ["'sideways'", "allowed: open, current, clamp"]),
        (lambda: bench.program([bench.network.edge_indices(["Rh0_1"])[0]], [2e4]),
         ["Rh0_1", "board channel 1", "outside the calibrated range"]),
        (lambda: bench.program([bench.network.edge_indices(["Rh3_0"])[0]], [1e3]),
         ["Rh3_0", "not tunable"]),
        (lambda: bench.measure(bench.network.edge_indices(["Rh3_1"])), ["Rh3_1", "not readable"]),
    ]
    for violate, words in violations:
        with pytest.raises(RigError) as info:
            violate()
        for word in words:
            assert word in str(info.value), f"{word!r} missing from {info.value}"
    assert logs(vb) == before, "a refused request reached an instrument"
    # the staged state is what it was: the next measurement repeats the reference
    np.testing.assert_allclose(bench.measure(bench.capabilities.readable), reference, atol=ATOL)


def test_the_total_power_limit_is_a_bench_level_check():
    config = example_config()
    config = type(config)(**{**config.__dict__, "max_total_watts": 0.015})
    with twin_bench(config) as (vb, bench):
        before = logs(vb)
        bench.set_inputs([2.0, 0.0])            # 2 V x 5 mA = 0.01 W: allowed alone
        with pytest.raises(RigError, match=r"worst-case power would be 0.02 W, above "
                                           r"bench.max_total_watts = 0.015 W"):
            bench.set_inputs([2.0, 2.0])
        assert logs(vb) == before


# ------------------------------------------------------------------------------ bad readings
def test_a_measurement_with_an_input_in_compliance_returns_nothing():
    with twin_bench(example_config(smu_in1={"compliance_amps": 2e-5})) as (vb, bench):
        bench.set_inputs([0.1, 1.5])
        bench.drive_outputs("open")
        with pytest.raises(RigError, match=r"smu_in1 .*input Rv1_0.* is in compliance.*no value"):
            bench.measure(bench.capabilities.readable)
        assert vb.circuit.unit_states()["smu_in1"].limited
        bench.set_inputs([0.1, 0.001])           # within the limit again: readings flow
        assert bench.measure(bench.capabilities.readable).shape == (20,)


def test_a_measurement_with_an_output_current_source_at_its_voltage_limit_returns_nothing():
    with twin_bench(example_config(smu_out1={"compliance_volts": 0.5})) as (vb, bench):
        bench.set_inputs([0.1, 0.0])
        bench.drive_outputs("current", [0.0, 1.5e-3, 0.0])
        with pytest.raises(RigError, match=r"smu_out1 .* within 2% of its voltage limit 0.5 V: in "
                                           r"compliance; no value"):
            bench.measure(bench.capabilities.learnable)
        assert vb.circuit.unit_states()["smu_out1"].limited


def test_a_measurement_with_a_clamp_at_its_current_limit_returns_nothing(rig):
    vb, bench = rig
    bench.set_inputs([0.1, 0.1])
    bench.drive_outputs("clamp", [4.9, 0.0, 0.0])   # 4.9 V across 1 kOhm wants ~5 mA; limit 2 mA
    with pytest.raises(RigError, match=r"smu_out0 .* is in compliance sourcing 4.9 V.*no value"):
        bench.measure(bench.capabilities.readable)
    bench.drive_outputs("clamp", [0.2, 0.0, 0.0])
    volts = bench.measure(bench.network.outputs)
    assert volts[0] == pytest.approx(0.2, abs=ATOL)


@pytest.mark.parametrize("fault, words", [
    ({"channel": 105, "value": math.nan}, ["channel 105", "9.91", "spans Rh1_1"]),
    ({"channel": 117, "value": 400.0}, ["channel 117", "9.9", "spans Rv0_3"]),
    ({"source": "smu_in0", "value": math.nan}, ["smu_in0", "overrange or NaN"]),
])
def test_overrange_and_nan_readings_return_nothing(rig, fault, words):
    vb, bench = rig
    bench.set_inputs([0.3, 0.3])
    bench.drive_outputs("open")
    bench.measure(bench.capabilities.readable)
    if "channel" in fault:
        vb.circuit.fault_channels[fault["channel"]] = fault["value"]
    else:
        vb.circuit.fault_sources[fault["source"]] = fault["value"]
    with pytest.raises(RigError) as info:
        bench.measure(bench.capabilities.readable)
    for word in words:
        assert word in str(info.value), f"{word!r} missing from {info.value}"


# ------------------------------------------------------------------------------ safe state
def test_safe_state_after_an_exception_and_on_close_leaves_every_instrument_safe():
    config = example_config(smu_in1={"compliance_amps": 2e-5})
    with VirtualBench(config, twin=True) as vb:
        bench = Bench.open(vb.bench_config())
        bench.program(bench.capabilities.learnable, np.full(16, 2000.0))
        bench.set_inputs([0.5, 1.5])
        bench.drive_outputs("current", [1e-4, 1e-4, 1e-4])
        with pytest.raises(RigError):
            bench.measure(bench.capabilities.readable)
        assert not any(safe for name, safe in vb.is_safe().items() if name.startswith("smu"))
        bench.safe_state()
        assert all(vb.is_safe().values()), vb.is_safe()
        assert bench.verify_safe() == [] and bench.safe_state_failures == []
        assert set(vb.emulators["board"].codes().values()) == {256}
        bench.safe_state()                          # idempotent
        assert all(vb.is_safe().values())
        bench.set_inputs([0.2, 0.0])                # and the bench works again afterwards
        bench.drive_outputs("clamp", [0.1, 0.1, 0.1])
        bench.measure(bench.capabilities.readable)
        assert not vb.emulators["smu_in0"].is_safe()
        bench.close()
        assert all(vb.is_safe().values()), vb.is_safe()
        assert all(vb.emulators[n].off_mode == "HIMP" for n in vb.emulators if n.startswith("smu"))
        bench.close()                               # idempotent
        with pytest.raises(RigError, match="closed"):
            bench.measure(bench.capabilities.readable)


def test_a_failing_instrument_does_not_stop_the_others_from_going_safe():
    config = example_config(smu_out2={"timeout_s": 0.5, "retries": 0})
    with VirtualBench(config, twin=True) as vb:
        bench = Bench.open(vb.bench_config())
        bench.set_inputs([0.5, 0.5])
        bench.drive_outputs("current", [1e-4, 1e-4, 1e-4])
        bench.measure(bench.capabilities.readable)
        vb.servers.pop("smu_out2").stop()           # the unit dies
        bench.safe_state()                          # must not raise
        assert len(bench.safe_state_failures) == 1 and "smu_out2" in bench.safe_state_failures[0]
        safe = vb.is_safe()
        assert all(safe[name] for name in safe if name != "smu_out2"), safe
        bench.close()


def test_the_bench_is_a_context_manager_that_ends_safe():
    with VirtualBench(example_config(), twin=True) as vb:
        with pytest.raises(ZeroDivisionError):
            with Bench.open(vb.bench_config()) as bench:
                bench.set_inputs([0.5, 0.5])
                bench.measure(bench.capabilities.readable)
                raise ZeroDivisionError("a bug in the caller")
        assert all(vb.is_safe().values())


# ------------------------------------------------------------------------------ identity
def test_an_instrument_that_is_not_the_bench_files_model_is_refused():
    with VirtualBench(example_config(), twin=True, drivers={"smu_out1": "keithley2400"}) as vb:
        with pytest.raises(BenchError, match=r"smu_out1 \(Keithley 2450\).*'MODEL 2400'.*2450"):
            Bench.open(vb.bench_config())
        assert all(vb.is_safe().values())


def test_a_serial_number_other_than_the_bench_files_is_refused():
    doc_config = example_config(smu_in0={"serial": "4096218"})
    with VirtualBench(doc_config, twin=True) as vb:
        Bench.open(vb.bench_config()).close()       # the emulator reports the file's serial
        config = example_config(smu_in0={"serial": "0000001"}).with_resources(vb.resources)
        with pytest.raises(BenchError, match=r"smu_in0: \*IDN\? reports serial number '4096218'; "
                                             r"the bench file expects '0000001'"):
            Bench.open(config)


def test_a_tripped_board_watchdog_is_refused_unless_cleared():
    with VirtualBench(example_config(), twin=True) as vb:
        vb.emulators["board"].tripped = True
        with pytest.raises(BenchError, match="watchdog has tripped.*clear_watchdog"):
            Bench.open(vb.bench_config())
        with Bench.open(vb.bench_config(), clear_watchdog=True) as bench:
            assert not vb.emulators["board"].tripped
            bench.program(bench.capabilities.learnable[:1], [5000.0])


# ------------------------------------------------------------------------------ round trips
RULES = {"omega": Omega(1e-3), "ep": TwoPhase(0.01), "ep_symmetric": SymmetricTwoPhase(0.01),
         "coupled": CoupledLearning(0.1)}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_a_sample_through_the_plans_costs_at_most_one_and_a_half_times_the_minimum(rig, rule):
    vb, bench = rig
    ports = Ports.from_roles(bench.network, gain=0.5)
    substrate = RigSubstrate(bench, ports, bench.capabilities.learnable, RULES[rule])
    rng = np.random.default_rng(5)
    batch = 4
    x, y = rng.uniform(-1, 1, (2, batch + 1)), rng.uniform(-0.1, 0.1, (3, batch + 1))
    substrate.gradient(RULES[rule], x[:, :1], y[:, :1])   # the first sample switches units on
    bench.round_trips.reset()
    gradient, _ = substrate.gradient(RULES[rule], x[:, 1:], y[:, 1:])
    substrate.program(substrate.resistances()[substrate.learnable] * np.exp(-0.2 * np.sign(gradient)))
    spent = bench.round_trips.by_call
    assert spent.get("set_inputs", 0) == 0 and spent.get("drive_outputs", 0) == 0
    assert spent["program"] == 2                     # SET and its read-back
    minimum = minimum_exchanges_per_sample(RULES[rule], 2, 3, batch) * batch
    total = sum(spent.values())
    assert total <= 1.5 * minimum, f"{rule}: {dict(spent)} = {total} exchanges, minimum {minimum}"


def test_an_emergency_stop_from_another_thread_stops_a_measurement_in_progress():
    import threading
    import time

    with twin_bench() as (vb, bench):
        vb.set_latency(0.03)                        # a slow link: the measurement takes a while
        bench.set_inputs([0.5, 0.5])
        bench.drive_outputs("current", [1e-4, 1e-4, 1e-4])
        outcome = {}

        def run():
            try:
                outcome["volts"] = bench.measure(bench.capabilities.readable)
            except RigError as exc:
                outcome["error"] = exc

        for device in vb.emulators.values():
            device.clear_log()
        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 30
        while not any(vb.emulators[n].lines() for n in vb.emulators if n.startswith("smu")):
            assert time.monotonic() < deadline, "the measurement never started"
            time.sleep(0.001)
        bench.safe_state()                          # the E-stop, while the worker is mid-way
        worker.join(timeout=60)
        assert "error" in outcome and "safe_state() was called meanwhile" in str(outcome["error"])
        assert all(vb.is_safe().values()), vb.is_safe()
        vb.set_latency(0.0)
