"""The crossbar in the core: its network (line resistance, selectors, sneak paths), its layout,
the programming schedule's relay count against brute force, and write-and-verify's bounds."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwlearn.builders import crossbar
from hwlearn.crossbar import (
    READ,
    CrossbarLayout,
    LimitsError,
    LineAccess,
    Pulse,
    PulseLimits,
    ScheduleError,
    minimum_relay_operations,
    schedule,
    write_verify,
)
from hwlearn.errors import NetworkError
from hwlearn.ports import Ports
from hwlearn.solver import Excitation, KirchhoffSolver


def test_ideal_lines_and_no_selectors_give_the_plain_crossbar_edge_for_edge():
    plain = crossbar(3, 2, hidden=[4])
    same = crossbar(3, 2, hidden=[4], wire_ohms=0.0, selector_ohms=0.0)
    assert plain.edge_names == same.edge_names and plain.node_names == same.node_names
    assert np.array_equal(plain.roles["tunable"], same.roles["tunable"])


def test_wires_and_selectors_are_fixed_edges_and_only_crosspoints_are_learnable():
    net = crossbar(3, 2, wire_ohms=2.0, selector_ohms=500.0)
    cells = [k for k, n in enumerate(net.edge_names) if n.startswith("Rx")]
    assert net.role("tunable").tolist() == cells == net.role("readable").tolist()
    wires = [n for n in net.edge_names if n.startswith("W")]
    # every line: one segment per crosspoint on it (3 rows x 2 + 2 columns x 3)
    assert len(wires) == 12 and len([n for n in net.edge_names if n.startswith("S")]) == 6
    assert net.edge_names[:3] == ("Rin0", "Rin1", "Rin2")


@pytest.mark.parametrize("key, value", [("wire_ohms", -1.0), ("selector_ohms", math.nan)])
def test_negative_or_nan_parasitics_are_refused(key, value):
    with pytest.raises(NetworkError, match=key):
        crossbar(2, 2, **{key: value})


def test_the_layout_names_every_crosspoints_lines_and_what_instruments_see():
    net = crossbar(2, 3, hidden=[2], wire_ohms=1.0)
    layout = CrossbarLayout.of(net)
    assert list(layout.lines) == ["in0", "in1", "h1_0", "h1_1", "out0", "out1", "out2"]
    edge = net.edge_names.index("Rx1_1_2")
    assert layout.sensed_nodes(edge) == ("h1_1", "out2")
    assert layout.sensed_nodes(net.edge_names.index("Rout1")) == ("out1", None)
    with pytest.raises(NetworkError, match="behind a source"):
        layout.sensed_nodes(net.edge_names.index("Rin0"))
    with pytest.raises(NetworkError, match="not a crossbar"):
        CrossbarLayout.of(net.with_resistances(net.resistance)._copy(edge_names=[f"E{k}" for k in range(net.n_edges)]))


def _line_voltage_difference(net, x):
    """Each crosspoint's true voltage, and what two voltmeters on its lines' terminals read."""
    ports = Ports.from_roles(net)
    state = KirchhoffSolver(net).factorize().solve(ports.excitation(x))
    layout = CrossbarLayout.of(net)
    nodes = state.node_voltages()[:, 0]
    true, seen = [], []
    for edge, point in layout.crosspoints.items():
        true.append(state.edge_voltages([edge])[0, 0])
        seen.append(nodes[layout.lines[point.a_line].node] - nodes[layout.lines[point.b_line].node])
    return np.array(true), np.array(seen)


def test_line_resistance_makes_the_terminals_differ_from_the_crosspoint_and_ideal_lines_do_not():
    x = np.array([[1.0], [-0.5], [0.3]])
    true, seen = _line_voltage_difference(crossbar(3, 4, cross_ohms=1e4), x)
    assert np.allclose(true, seen, rtol=0, atol=1e-12)
    true, seen = _line_voltage_difference(crossbar(3, 4, cross_ohms=1e4, wire_ohms=50.0, selector_ohms=1e3), x)
    error = np.max(np.abs(true - seen))
    assert 1e-3 < error < 0.2, error  # IR drops and the selectors' share, what a bench would see


def test_sneak_paths_carry_current_through_unselected_devices():
    # One row driven, one column grounded by its load, the others floating: current still reaches
    # the other columns' loads through the rest of the array.
    net = crossbar(3, 3, cross_ohms=1e4, load_ohms=1e3)
    state = KirchhoffSolver(net).factorize().solve(Excitation(series=(np.array([0]), np.array([[1.0]]))))
    sneak = state.edge_currents([net.edge_names.index("Rx0_1_1")])[0, 0]
    assert abs(sneak) > 1e-7, sneak


# ------------------------------------------------------------------------------ the schedule
def _grid(rows, cols, prog_rows=True, prog_cols=False, hold_cols=True, hold_rows=True):
    net = crossbar(rows, cols)
    layout = CrossbarLayout.of(net)
    access = {}
    for name, line in layout.lines.items():
        is_row = line.layer == 0
        access[name] = LineAccess(name, prog=prog_rows if is_row else prog_cols, unit=True,
                                  holds=hold_rows if is_row else hold_cols)
    layers = {name: line.layer for name, line in layout.lines.items()}
    return layout, access, layers


def _brute_minimum(points, access, layers):
    lines = sorted(access)
    best = math.inf
    for size in range(len(lines) + 1):
        for chosen in itertools.combinations(lines, size):
            chosen = set(chosen)
            ok = all(any(line in chosen and access[line].prog and access[other].holds
                         for line, other in ((p.a_line, p.b_line), (p.b_line, p.a_line))) for p in points)
            if ok:
                best = min(best, sum(access[line].visit_cost for line in chosen))
    return best


@settings(deadline=None)
@given(st.data())
def test_the_schedule_uses_the_fewest_relay_operations_the_wiring_allows(data):
    rows, cols = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    layout, access, layers = _grid(rows, cols, prog_cols=data.draw(st.booleans()))
    access = {n: LineAccess(n, a.prog, data.draw(st.booleans()), a.holds) for n, a in access.items()}
    points = [p for p in layout.crosspoints.values() if data.draw(st.booleans())]
    visits = schedule(points, access, layers)
    written = sorted(w.edge for v in visits for w in v.writes)
    assert written == sorted(p.edge for p in points)
    assert minimum_relay_operations(points, access, layers) == _brute_minimum(points, access, layers)
    for visit in visits:
        for write in visit.writes:
            point = layout.crosspoints[write.edge]
            assert write.sign == (1 if write.prog_line == point.a_line else -1)
            assert access[write.hold_line].holds and access[write.prog_line].prog


def test_a_full_array_is_written_from_the_smaller_side():
    layout, access, layers = _grid(8, 3, prog_cols=True)
    visits = schedule(list(layout.crosspoints.values()), access, layers)
    assert {v.line for v in visits} == {"out0", "out1", "out2"}
    assert sum(v.relay_operations for v in visits) == 3 * 4


def test_a_crosspoint_no_line_can_carry_is_named():
    layout, access, layers = _grid(2, 2, prog_rows=False)
    with pytest.raises(ScheduleError, match="Rx0_0_0"):
        schedule([layout.crosspoints[2]], access, layers)


# ------------------------------------------------------------------------------ write and verify
LIMITS = PulseLimits(set_volts=(1.1, 1.8), reset_volts=(1.2, 1.9), step_volts=0.1, width_s=1e-3,
                     max_pulses=12, tolerance_siemens=2e-6)


@pytest.mark.parametrize("bad, words", [
    ({"set_volts": (1.8, 1.1)}, "set_volts"), ({"reset_volts": (0.0, 1.0)}, "reset_volts"),
    ({"width_s": math.inf}, "width_s"), ({"max_pulses": 0}, "max_pulses"), ({"tolerance_siemens": -1.0}, "tol")])
def test_pulse_limits_refuse_what_is_not_finite_positive_or_ordered(bad, words):
    fields = dict(set_volts=(1.1, 1.8), reset_volts=(1.2, 1.9), step_volts=0.1, width_s=1e-3, max_pulses=12,
                  tolerance_siemens=2e-6)
    with pytest.raises(LimitsError, match=words):
        PulseLimits(**{**fields, **bad})


limits_strategy = st.builds(
    lambda lo_s, span_s, lo_r, span_r, step, width, count, tol, stall: PulseLimits(
        (lo_s, lo_s + span_s), (lo_r, lo_r + span_r), step, width, count, tol, stall),
    st.floats(0.1, 5.0), st.floats(0.0, 5.0), st.floats(0.1, 5.0), st.floats(0.0, 5.0), st.floats(1e-3, 2.0),
    st.floats(1e-6, 1.0), st.integers(1, 40), st.floats(1e-9, 1e-3), st.integers(1, 6))
response = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0.0, 1e-3), st.booleans())


@settings(deadline=None)
@given(limits_strategy, st.floats(-1e-3, 1e-3), st.lists(response, min_size=0, max_size=200))
def test_no_pulse_ever_leaves_the_limits_whatever_the_device_answers(limits, target, answers):
    plan = write_verify(target, limits)
    request = next(plan)
    pulses = 0
    answers = iter(answers)
    try:
        for _ in range(3 * limits.max_pulses + 3):
            if isinstance(request, Pulse):
                pulses += 1
                low, high = limits.amplitudes(1 if request.volts > 0 else -1)
                assert low <= abs(request.volts) <= high, (request, limits)
                assert request.width_s == limits.width_s
                assert pulses <= limits.max_pulses
                request = plan.send(next(answers, False))
            else:
                assert request is READ
                answer = next(answers, 0.0)
                request = plan.send(answer if not isinstance(answer, bool) else float(answer))
        pytest.fail("the write did not end within 2 x max_pulses + 1 requests")
    except StopIteration as done:
        outcome = done.value
    assert outcome.pulses == pulses <= limits.max_pulses
    assert outcome.converged == (outcome.reason == "")


class _Device:
    """A saturating device: conductance moves towards its end by a share of the way, more for
    larger amplitudes, with a threshold."""

    def __init__(self, g=5e-5, g_min=1e-5, g_max=1e-4):
        self.g, self.g_min, self.g_max = g, g_min, g_max

    def pulse(self, volts):
        strength = max(abs(volts) - 1.0, 0.0) ** 2 / 0.25
        end = self.g_max if volts > 0 else self.g_min
        self.g += (end - self.g) * (1 - math.exp(-0.2 * strength))


@pytest.mark.parametrize("target", [1.2e-5, 4e-5, 9.5e-5])
def test_write_and_verify_reaches_a_target_of_a_saturating_device(target):
    device = _Device()
    plan = write_verify(target, LIMITS)
    request = next(plan)
    try:
        while True:
            if isinstance(request, Pulse):
                device.pulse(request.volts)
                request = plan.send(False)
            else:
                request = plan.send(device.g)
    except StopIteration as done:
        outcome = done.value
    assert outcome.converged, outcome
    assert abs(device.g - target) <= LIMITS.tolerance_siemens


def test_a_device_that_does_not_move_is_given_up_as_stuck():
    plan = write_verify(9e-5, PulseLimits((1.1, 1.3), (1.1, 1.3), 0.1, 1e-3, 30, 1e-6, stall_pulses=3))
    request, count = next(plan), 0
    try:
        while True:
            count += isinstance(request, Pulse)
            request = plan.send(False if isinstance(request, Pulse) else 2e-5)
    except StopIteration as done:
        outcome = done.value
    assert not outcome.converged and outcome.stuck and "stuck" in outcome.reason and outcome.pulses < 30
