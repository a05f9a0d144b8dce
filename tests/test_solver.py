"""The Kirchhoff solver: exact small circuits, backends, clamps, and every error path."""

import numpy as np
import pytest

from hwlearn.builders import crossbar, lattice, random_graph
from hwlearn.errors import NetworkError, SolverError
from hwlearn.netlist import parse_netlist
from hwlearn.network import Network, SourceSet
from hwlearn.solver import BACKENDS, Excitation, KirchhoffSolver, cholmod_available

AVAILABLE = [b for b in BACKENDS if b != "cholmod" or cholmod_available()]


def _solve(text):
    net = parse_netlist(text)
    return net, KirchhoffSolver(net).factorize().solve(Excitation.of_network(net))


def test_divider_with_series_source_gives_textbook_values():
    net, st = _solve("t\nV1 in 0 10\nR1 in out 1k\nR2 out 0 4k\n.end\n")
    volts = dict(zip(net.node_names, st.node_voltages()[:, 0]))
    assert volts["out"] == pytest.approx(8.0, rel=1e-14)
    assert st.edge_currents()[:, 0] == pytest.approx([2e-3, 2e-3], rel=1e-14)
    assert st.vsource_currents()[0, 0] == pytest.approx(-2e-3, rel=1e-14)  # into + terminal


def test_edge_series_source_follows_the_paper_convention():
    # One edge with source s closed by a resistor: v = p_a - p_b - s on the source edge.
    net = Network(["0", "1"], [1, 1], [0, 0], [1.0, 3.0], series_volts=[4.0, 0.0])
    st = KirchhoffSolver(net).factorize().solve(Excitation.of_network(net))
    p1 = st.node_voltages()[1, 0]
    assert p1 == pytest.approx(3.0)
    assert st.edge_voltages()[:, 0] == pytest.approx([p1 - 4.0, p1])
    assert st.edge_currents()[:, 0].sum() == pytest.approx(0.0, abs=1e-15)  # KCL at node 1


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("build", ["lattice", "crossbar", "random"])
def test_every_backend_gives_the_same_solution(backend, build):
    net = {"lattice": lambda: lattice(30, 40, inputs=3, outputs=2),
           "crossbar": lambda: crossbar(8, 5, hidden=[6]),
           "random": lambda: random_graph(300, 900, seed=2, inputs=3, outputs=2)}[build]()
    r = np.random.default_rng(0).uniform(100, 10_000, net.n_edges)
    rng = np.random.default_rng(1)
    ex = Excitation(series=(net.inputs, rng.normal(size=(net.inputs.size, 4))),
                    parallel=(net.outputs, 1e-3 * rng.normal(size=(net.outputs.size, 4))))
    reference = KirchhoffSolver(net, backend="dense").factorize(r).solve(ex).edge_voltages()
    solver = KirchhoffSolver(net, backend=backend)
    assert solver.backend == backend
    got = solver.factorize(r).solve(ex).edge_voltages()
    assert np.max(np.abs(got - reference)) <= 1e-10 * np.max(np.abs(reference))


@pytest.mark.parametrize("backend", AVAILABLE)
def test_symbolic_analysis_is_reused_across_refactorisations(backend):
    net = lattice(25, 25, inputs=2, outputs=2)
    solver = KirchhoffSolver(net, backend=backend)
    analysis = solver._analysis
    rng = np.random.default_rng(3)
    ex = Excitation(series=(net.inputs, np.ones((2, 1))))
    for _ in range(3):
        r = rng.uniform(100, 1000, net.n_edges)
        got = solver.factorize(r).solve(ex).edge_voltages()
        want = KirchhoffSolver(net, backend="dense").factorize(r).solve(ex).edge_voltages()
        assert solver._analysis is analysis
        assert np.allclose(got, want, rtol=0, atol=1e-12)


def test_factorisations_stay_valid_after_a_later_one():
    net = random_graph(50, 120, seed=1, inputs=1, outputs=1)
    solver = KirchhoffSolver(net, backend="superlu")
    ex = Excitation(series=(net.inputs, np.ones((1, 1))))
    first = solver.factorize(net.resistance)
    before = first.solve(ex).edge_voltages()
    solver.factorize(net.resistance * 3.7)
    assert np.array_equal(first.solve(ex).edge_voltages(), before)


def test_auto_backend_is_dense_for_small_and_sparse_for_large_lattices():
    assert KirchhoffSolver(lattice(10, 10)).backend == "dense"
    assert KirchhoffSolver(crossbar(64, 64)).backend == "dense"
    big = KirchhoffSolver(lattice(60, 60)).backend
    assert big == ("cholmod" if cholmod_available() else "superlu")


def test_clamp_holds_the_edge_voltage_and_matches_an_explicit_voltage_source():
    net = random_graph(9, 20, seed=5, inputs=2, outputs=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3))
    target = rng.normal(size=(2, 3))
    fz = KirchhoffSolver(net).factorize()
    clamped = fz.solve(Excitation(series=(net.inputs, x), clamp=(net.outputs, target)))
    assert np.allclose(clamped.edge_voltages(net.outputs), target, atol=1e-13)
    # The same circuit with ideal V sources across the output edges, solved by elimination.
    vs = SourceSet.build(["Vc0", "Vc1"], net.edge_a[net.outputs], net.edge_b[net.outputs], [0, 0])
    with_sources = Network(net.node_names, net.edge_a, net.edge_b, net.resistance, vsources=vs)
    explicit = KirchhoffSolver(with_sources).factorize().solve(Excitation(series=(net.inputs, x), vsource=target))
    assert np.allclose(clamped.edge_voltages(), explicit.edge_voltages(), atol=1e-12)


def test_clamps_that_close_a_loop_are_refused():
    net = Network(["0", "1", "2"], [1, 2, 1], [0, 0, 2], [1.0, 1.0, 1.0])
    fz = KirchhoffSolver(net).factorize()
    with pytest.raises(SolverError, match="loop"):
        fz.solve(Excitation(clamp=(np.array([0, 1, 2]), np.ones(3))))


def test_disconnected_graph_is_refused_naming_the_floating_nodes():
    text = "t\nV1 a 0 1\nR1 a 0 1k\nR2 b c 1k\n.end\n"
    with pytest.raises(SolverError, match=r"node\(s\) b, c have no resistive path to ground"):
        _solve(text)


def test_subnetwork_joined_only_through_a_current_source_is_refused():
    text = "t\nR1 a 0 1k\nI1 a b 1m\nR2 b c 1k\n.end\n"
    with pytest.raises(SolverError, match="b, c"):
        _solve(text)


def test_node_held_only_by_voltage_sources_is_solved():
    # Node 1 touches only V sources: a supernode with ground, not a floating node.
    net, st = _solve("t\nV1 1 0 5\nV2 2 1 3\nR1 2 0 1k\n.end\n")
    volts = dict(zip(net.node_names, st.node_voltages()[:, 0]))
    assert volts == pytest.approx({"0": 0.0, "1": 5.0, "2": 8.0})
    assert st.vsource_currents()[:, 0] == pytest.approx([-8e-3, -8e-3])


def test_loop_of_voltage_sources_is_refused_naming_them():
    with pytest.raises(SolverError, match="voltage sources V1, V2, V3 form a loop"):
        _solve("t\nV1 1 0 1\nV2 2 1 1\nV3 2 0 2\nR1 1 0 1k\n.end\n")


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan, np.inf])
def test_zero_negative_or_non_finite_resistance_is_refused(bad):
    net = random_graph(5, 7, seed=0)
    r = net.resistance.copy()
    r[3] = bad
    with pytest.raises(NetworkError, match=f"edge R3: resistance {bad!r} ohm is not allowed"):
        KirchhoffSolver(net).factorize(r)
    with pytest.raises(NetworkError, match="edge R3"):
        net.with_resistances(r)


def test_resistance_vector_of_the_wrong_length_is_refused():
    net = random_graph(5, 7, seed=0)
    with pytest.raises(SolverError, match=r"shape \(6,\), expected \(7,\)"):
        KirchhoffSolver(net).factorize(np.ones(6))


def test_unknown_backend_is_refused_with_the_allowed_ones():
    with pytest.raises(SolverError, match="unknown solver backend 'umfpack'; allowed: auto, dense"):
        KirchhoffSolver(lattice(3, 3), backend="umfpack")


def test_excitation_arrays_must_agree_on_the_batch():
    net = lattice(3, 3, inputs=1, outputs=1)
    fz = KirchhoffSolver(net).factorize()
    with pytest.raises(SolverError, match="batch size"):
        fz.solve(Excitation(series=(net.inputs, np.ones((1, 2))), parallel=(net.outputs, np.ones((1, 3)))))


def test_results_are_never_nan_for_extreme_but_valid_resistances():
    net = lattice(6, 6, inputs=1, outputs=1)
    r = np.where(np.arange(net.n_edges) % 2, 1e-3, 1e9)
    st = KirchhoffSolver(net).factorize(r).solve(Excitation(series=(net.inputs, np.ones((1, 1)))))
    assert np.all(np.isfinite(st.edge_voltages()))
