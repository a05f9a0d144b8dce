"""Properties of every command that reaches an instrument, over sequences hypothesis draws
(out-of-limit values included), recorded on the emulator side of the virtual bench:

- no source level beyond the unit's max_volts / max_amps, no worst-case power |level| x
  compliance beyond its max_watts, and no board code outside its calibrated codes is ever sent;
- while a unit's output is on, no level step is larger than its ramp_volts / ramp_amps, and an
  output is switched on only at level 0;
- a request beyond a limit raises before any byte is sent (the emulators receive nothing) and
  changes nothing.

Once through the drivers themselves (a Keithley's setters, the board's codes), once through the
Bench's Rig calls (set_inputs, drive_outputs, program, measure). The limits are the example bench
file's (hwlearn/config/bench.py: max_volts, max_amps, max_watts, ramp_volts, ramp_amps per SMU;
the calibration's code_min..code_max per board channel). Example counts are the hypothesis
profile's (tests/conftest.py: ci, or --hypothesis-profile deep).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.instruments.errors import InstrumentError, LimitError
from drivers.instruments.resistor_board import ResistorBoard
from drivers.instruments.transport import SerialTransport
from hwlearn.rig import RigError
from simulator.emulators import ResistorBoardEmulator
from tests.bench_helpers import board_lines, twin_bench
from tests.fake_backend import FakeBackend

FUNCTIONS = ("VOLT", "CURR")
# The emulators hold levels parsed from the drivers' text (7 significant digits).
TEXT_REL = 1e-6


@dataclass(frozen=True)
class Snapshot:
    """An emulated unit's state after one change: output on, function, its level, compliance."""

    on: bool
    function: str
    level: float
    compliance: float


def record_states(device) -> list[Snapshot]:
    """Every state an emulated SMU goes through, one snapshot per change it applies."""
    states: list[Snapshot] = []
    apply = device._apply

    def apply_and_record():
        apply()
        states.append(Snapshot(device.output, device.function, device.level[device.function],
                               device.limit[device.function]))
    device._apply = apply_and_record
    return states


def violations(states: list[Snapshot], limits: dict) -> list[str]:
    """What in a unit's history breaks its limits (empty: nothing)."""
    found = []
    top = {"VOLT": limits["max_volts"], "CURR": limits["max_amps"]}
    ramp = {"VOLT": limits["ramp_volts"], "CURR": limits["ramp_amps"]}
    for before, after in zip([None, *states], states):
        f = after.function
        if abs(after.level) > top[f] * (1 + TEXT_REL):
            found.append(f"level {after.level:g} beyond {top[f]:g}")
        if after.on and abs(after.level) * after.compliance > limits["max_watts"] * (1 + 2 * TEXT_REL):
            found.append(f"{after.level:g} x compliance {after.compliance:g} beyond max_watts {limits['max_watts']:g}")
        if before is None or not after.on:
            continue
        if not before.on and after.level != 0.0:
            found.append(f"switched on at {after.level:g}, not at 0")
        if before.on and before.function == f and abs(after.level - before.level) > ramp[f] + TEXT_REL * top[f]:
            found.append(f"a step from {before.level:g} to {after.level:g}, larger than the ramp step {ramp[f]:g}")
    return found


# ====================================================================== the drivers
@pytest.fixture(scope="module")
def smus():
    """(driver, emulator, limits) of both SMU models of the example bench, through the real
    transports to the twin's emulators."""
    with twin_bench() as (vb, bench):
        found = []
        for name in ("smu_in0", "smu_in1"):  # a 2450 and a 2400
            unit = next(u for u in bench.units if u.name == name)
            found.append((unit.driver, vb.emulators[name], bench.config.instruments[name]))
        yield found


FRACTIONS = st.one_of(st.floats(-1.6, 1.6), st.sampled_from([1.0, -1.0, 1.0000001, -1.0000001, 0.0]),
                      st.sampled_from([math.nan, math.inf]))
DRIVER_OPS = st.lists(st.one_of(
    st.tuples(st.just("configure"), st.sampled_from(FUNCTIONS), st.floats(0.05, 1.5)),
    st.tuples(st.just("level"), FRACTIONS),
    st.tuples(st.just("on")),
    st.tuples(st.just("off")),
), min_size=1, max_size=10)


@given(ops=DRIVER_OPS, which=st.integers(0, 1))
def test_a_source_meter_never_gets_a_level_beyond_its_limits_nor_a_step_beyond_its_ramp(smus, ops, which):
    driver, device, inst = smus[which]
    top = {"VOLT": inst["max_volts"], "CURR": inst["max_amps"]}
    compliance_top = {"VOLT": inst["max_amps"], "CURR": inst["max_volts"]}
    driver.safe_state()
    function = "VOLT"
    driver.configure(function, 0.5 * compliance_top[function])
    states = record_states(device)
    try:
        for op in ops:
            before, seen = device.lines(), len(states)
            try:
                if op[0] == "configure":
                    driver.configure(op[1], op[2] * compliance_top[op[1]])
                    function = op[1]
                elif op[0] == "level":
                    driver.set_level(op[1] * top[function])
                elif op[0] == "on":
                    driver.output_on()
                else:
                    driver.output_off()
            except LimitError:
                assert device.lines() == before, (op, device.lines()[len(before):])  # nothing sent
                assert len(states) == seen                                         # nothing changed
            except InstrumentError as exc:  # a refusal of order (configure first, output on)
                assert "configure" in str(exc) or "output is on" in str(exc), exc
                assert len(states) == seen
        assert not violations(states, inst), (ops, violations(states, inst))
    finally:
        del device._apply  # the emulator's own again


@pytest.fixture(scope="module")
def board():
    """The board driver on a pseudo-terminal to its emulator, allowed the example's codes
    (0..256 on channels 0-7)."""
    backend = FakeBackend()
    emulator = ResistorBoardEmulator(backend).start()
    driver = ResistorBoard(SerialTransport(emulator.path, "board", timeout_s=10.0),
                           allowed={ch: (0, 256) for ch in range(8)})
    driver.connect()
    driver.acknowledge_boot()
    yield driver, emulator.firmware, backend
    driver.transport.close()
    emulator.stop()


@given(writes=st.lists(st.dictionaries(st.integers(-2, 10), st.integers(-5, 300), min_size=1, max_size=4),
                       min_size=1, max_size=5))
def test_a_board_never_gets_a_code_outside_the_allowed_ones(board, writes):
    driver, firmware, backend = board
    for codes in writes:
        before, held = board_lines(firmware), dict(backend.codes)
        allowed = all(0 <= ch < 8 and 0 <= code <= 256 for ch, code in codes.items())
        if allowed:
            driver.write_codes(codes)
            assert {ch: backend.codes[ch] for ch in codes} == codes
        else:
            with pytest.raises(LimitError):
                driver.write_codes(codes)
            assert board_lines(firmware) == before and backend.codes == held
    assert all(0 <= code <= 256 for code in backend.codes.values()), backend.codes


# ====================================================================== the bench
@pytest.fixture(scope="module")
def bench():
    """The example bench through the real drivers to its twin; every SMU's states and every
    board write recorded on the emulator side."""
    with twin_bench() as (vb, bench):
        states = {name: record_states(vb.emulators[name]) for name in (u.name for u in bench.units)}
        written: list[dict[int, int]] = []
        port = vb.emulators["board"].backend
        write = port.write_codes

        def write_and_record(codes):
            written.append(dict(codes))
            write(codes)
        port.write_codes = write_and_record
        yield vb, bench, states, written


def _bench_lines(vb) -> dict[str, list[str]]:
    return {name: board_lines(dev) if name == "board" else dev.lines() for name, dev in vb.emulators.items()}


BENCH_OPS = st.lists(st.one_of(
    st.tuples(st.just("set_inputs"), st.lists(st.floats(-3.0, 3.0), min_size=2, max_size=2)),
    st.tuples(st.just("drive_outputs"), st.sampled_from(["open", "current", "clamp"]),
              st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3)),
    st.tuples(st.just("program"), st.lists(st.integers(0, 15), min_size=1, max_size=4, unique=True),
              st.lists(st.floats(0.0, 12000.0), min_size=4, max_size=4)),
    st.tuples(st.just("measure")),
), min_size=1, max_size=6)


@given(ops=BENCH_OPS)
def test_no_bench_plan_sends_a_value_beyond_the_limits_and_a_refused_call_sends_nothing(bench, ops):
    vb, bench, states, written = bench
    config = bench.config
    tunable = bench.capabilities.tunable
    for history in states.values():
        history.clear()
    written.clear()
    for op in ops:
        before, ohms = _bench_lines(vb), bench.resistances()
        try:
            if op[0] == "set_inputs":
                bench.set_inputs(op[1])
            elif op[0] == "drive_outputs":
                # Current in units of the output units' max_amps, clamp volts in their max_volts.
                scale = 0.002 if op[1] == "current" else 5.0
                bench.drive_outputs(op[1], None if op[1] == "open" else np.array(op[2]) * scale)
            elif op[0] == "program":
                edges = tunable[op[1]]
                bench.program(edges, op[2][:len(edges)])
            else:
                bench.measure(bench.capabilities.readable)
        except RigError as exc:
            if op[0] != "measure":  # refused before any byte: nothing sent, nothing changed
                assert "nothing was sent" in str(exc), exc
                assert _bench_lines(vb) == before, (op, exc)
                np.testing.assert_array_equal(bench.resistances(), ohms)
    for name, history in states.items():
        broken = violations(history, config.instruments[name])
        assert not broken, (name, ops, broken)
    for codes in written:
        for channel, code in codes.items():
            cal = config.calibration["board"][channel]
            assert cal.code_min <= code <= cal.code_max, (channel, code)
