"""The learning rules against finite differences, the projector identities, and their limits."""

import numpy as np
import pytest
import scipy.linalg as sla

from hwlearn.builders import crossbar, lattice, random_graph
from hwlearn.ports import Ports
from hwlearn.rules import (
    RULES,
    CoupledLearning,
    FiniteDifference,
    LinearResponse,
    Omega,
    PhaseMeasurement,
    Rule,
    RuleParameterError,
    SymmetricTwoPhase,
    TwoPhase,
    make_rule,
    parameters,
    per_sample_gradient,
    simulate_phases,
)
from hwlearn.solver import Excitation, KirchhoffSolver


def _setup(seed, n=12, m=30, d_in=3, d_out=2, batch=5):
    net = random_graph(n, m, seed=seed, inputs=d_in, outputs=d_out)
    ports = Ports.from_roles(net, gain=1.5)
    solver = KirchhoffSolver(net)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(d_in, batch))
    y = 0.2 * rng.normal(size=(d_out, batch))
    return net, ports, solver, solver.factorize(), x, y


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("seed", range(8))
def test_omega_equals_central_finite_differences_on_random_graphs(seed):
    net, ports, solver, fz, x, y = _setup(seed, n=8 + seed, m=14 + 3 * seed)
    edges = np.arange(net.n_edges)
    fd, _ = FiniteDifference(1e-5).simulate(fz, ports, edges, x, y)
    omega = per_sample_gradient(fz, ports, Omega(eta=2e-3), x, y, edges)
    exact = LinearResponse(fz, ports, edges).exact_gradient(x, y)
    assert _rel(omega, fd) < 1e-7, _rel(omega, fd)
    assert _rel(exact, fd) < 1e-7, _rel(exact, fd)


def test_omega_is_exact_whatever_eta():
    net, ports, solver, fz, x, y = _setup(3)
    edges = np.arange(net.n_edges)
    a = per_sample_gradient(fz, ports, Omega(eta=1e-6), x, y, edges)
    b = per_sample_gradient(fz, ports, Omega(eta=10.0), x, y, edges)
    assert _rel(a, b) < 1e-9


def _omega_matrix(net, fz):
    """Omega from the solver: v = -Omega s for unit series sources on every edge."""
    m = net.n_edges
    state = fz.solve(Excitation(series=(np.arange(m), np.eye(m))))
    return -state.edge_voltages()


@pytest.mark.parametrize("seed", range(4))
def test_omega_is_an_oblique_projector_with_the_adjoint_identity(seed):
    net = random_graph(7, 13, seed=seed)
    fz = KirchhoffSolver(net).factorize()
    omega = _omega_matrix(net, fz)
    g, r = np.diag(fz.conductance), np.diag(net.resistance)
    assert np.allclose(omega @ omega, omega, atol=1e-12)
    assert np.allclose(omega.T, g @ omega @ r, atol=1e-12)
    # Independent of the nodal form: Omega = R A^T (A R A^T)^-1 A with a cycle basis A.
    reduced = net.incidence.toarray()[np.arange(net.n_nodes) != net.ground]
    cycles = sla.null_space(reduced).T
    cycle_form = r @ cycles.T @ np.linalg.solve(cycles @ r @ cycles.T, cycles)
    assert np.allclose(omega, cycle_form, atol=1e-10)
    # ... and of the ground node.
    renamed = [f"node{k}" for k in range(net.n_nodes)]  # '0' may only name ground
    moved = KirchhoffSolver(type(net)(renamed, net.edge_a, net.edge_b, net.resistance,
                                      ground=net.n_nodes - 1)).factorize()
    assert np.allclose(_omega_matrix(net, moved), omega, atol=1e-12)


def test_adjoint_currents_are_minus_omega_transpose_minus_identity_times_drive():
    net = random_graph(7, 13, seed=9, outputs=2)
    fz = KirchhoffSolver(net).factorize()
    omega = _omega_matrix(net, fz)
    j = np.zeros(net.n_edges)
    j[net.outputs] = [1e-3, -2e-3]
    i_adj = fz.solve(Excitation(parallel=(net.outputs, j[net.outputs]))).edge_currents()[:, 0]
    assert np.allclose(i_adj, (omega.T - np.eye(net.n_edges)) @ j, atol=1e-15)


def _ep_limit(fz, ports, x, y):
    """lim beta->0 of two-phase: i_F times the current response to series sources e on the outputs."""
    free = fz.solve(ports.excitation(x))
    e = free.edge_voltages(ports.outputs) - y
    response = fz.solve(Excitation(series=(ports.outputs, e))).edge_currents()
    return np.mean(free.edge_currents() * response, axis=1), response


def test_two_phase_limit_is_the_gradient_of_the_output_current_proxy():
    net, ports, solver, fz, x, y = _setup(5)
    limit, _ = _ep_limit(fz, ports, x, y)
    e = fz.solve(ports.excitation(x)).edge_voltages(ports.outputs) - y

    def proxy(r):  # mean_s e_s^T P_o i(r), e frozen
        return np.mean(np.sum(e * solver.factorize(r).solve(ports.excitation(x)).edge_currents(ports.outputs), axis=0))

    r = net.resistance
    fd = np.array([(proxy(r + h * (np.arange(r.size) == k)) - proxy(r - h * (np.arange(r.size) == k))) / (2 * h)
                   for k, h in enumerate(1e-5 * r)])
    assert _rel(limit, fd) < 1e-7


def test_two_phase_bias_is_first_order_in_beta_and_matches_the_paper():
    net, ports, solver, fz, x, y = _setup(6)
    edges = np.arange(net.n_edges)
    limit, response = _ep_limit(fz, ports, x, y)
    errors = []
    for beta in (4e-2, 2e-2, 1e-2):
        est = per_sample_gradient(fz, ports, TwoPhase(beta), x, y, edges)
        errors.append(np.linalg.norm(est - limit))
        # docs/theory.md: bias (beta/2) (M P_o^T e)^2, M P_o^T e = minus the current response to e.
        predicted = beta / 2 * np.mean(response ** 2, axis=1)
        assert _rel(est - limit, predicted) < 1e-6
    assert errors[0] / errors[1] == pytest.approx(2.0, rel=1e-3)
    assert errors[1] / errors[2] == pytest.approx(2.0, rel=1e-3)


def test_symmetric_nudging_cancels_the_bias_to_rounding_in_a_linear_network():
    # Branch currents are affine in beta, so (i_+^2 - i_-^2) / 4 beta has no O(beta^2) term at all.
    net, ports, solver, fz, x, y = _setup(7)
    edges = np.arange(net.n_edges)
    limit, _ = _ep_limit(fz, ports, x, y)
    for beta in (1e-1, 1e-2, 1e-3):
        est = per_sample_gradient(fz, ports, SymmetricTwoPhase(beta), x, y, edges)
        assert _rel(est, limit) < 1e-9
        one_sided = per_sample_gradient(fz, ports, TwoPhase(beta), x, y, edges)
        assert _rel(one_sided, limit) > 1e3 * _rel(est, limit)


@pytest.mark.parametrize("seed", range(6))
def test_coupled_learning_aligns_with_the_exact_gradient_for_small_eta(seed):
    net, ports, solver, fz, x, y = _setup(seed + 20)
    edges = np.arange(net.n_edges)
    exact = LinearResponse(fz, ports, edges).exact_gradient(x, y)
    for eta in (1e-2, 1e-3):
        assert _cos(per_sample_gradient(fz, ports, CoupledLearning(eta), x, y, edges), exact) > 0


@pytest.mark.parametrize("rule", [Omega(1e-3), TwoPhase(1e-2), SymmetricTwoPhase(1e-2),
                                  CoupledLearning(0.05)], ids=lambda r: r.name)
@pytest.mark.parametrize("build", ["random", "lattice", "crossbar"])
def test_whole_batch_linear_path_equals_per_sample_phases(rule, build):
    if build == "random":
        net = random_graph(15, 40, seed=4, inputs=3, outputs=2)
    elif build == "lattice":
        net = lattice(5, 6, inputs=3, outputs=2)
    else:
        net = crossbar(3, 2, hidden=[4])
    ports = Ports.from_roles(net, gain=0.7)
    fz = KirchhoffSolver(net).factorize(np.random.default_rng(1).uniform(500, 5000, net.n_edges))
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(3, 17)), 0.1 * rng.normal(size=(2, 17))
    edges = np.flatnonzero(net.roles["tunable"])
    per_sample = per_sample_gradient(fz, ports, rule, x, y, edges)
    linear = LinearResponse(fz, ports, edges).gradient(rule, x, y)
    assert _rel(linear, per_sample) < 1e-9


def test_estimates_on_a_subset_of_edges_equal_the_full_estimate_restricted():
    net, ports, solver, fz, x, y = _setup(11)
    full = per_sample_gradient(fz, ports, Omega(), x, y, np.arange(net.n_edges))
    subset = np.array([5, 1, 17, 3])
    assert np.allclose(per_sample_gradient(fz, ports, Omega(), x, y, subset), full[subset], rtol=1e-12)


def test_rules_computed_from_measured_voltages_only():
    # What a bench hands over: resistor voltages on the measured edges per phase (outputs in
    # Norton form), and the resistances from calibration.
    net, ports, solver, fz, x, y = _setup(12)
    edges = np.r_[ports.outputs, np.flatnonzero(net.roles["tunable"])[:6]]
    for rule in (Omega(), TwoPhase(0.01), CoupledLearning(0.1)):
        measured, _ = simulate_phases(fz, ports, rule, x, y, edges)
        volts_only = {name: PhaseMeasurement(np.array(m.voltages), m.series) for name, m in measured.items()}
        est = rule.gradient_from_measurements(volts_only, net.resistance[edges])
        assert np.allclose(est, LinearResponse(fz, ports, edges).gradient(rule, x, y), rtol=1e-9, atol=0)


def test_a_rule_refuses_measurements_missing_a_phase():
    net, ports, solver, fz, x, y = _setup(13)
    measured, _ = simulate_phases(fz, ports, Omega(), x, y, np.arange(4))
    del measured["adjoint"]
    with pytest.raises(ValueError, match="adjoint"):
        Omega().gradient_from_measurements(measured, net.resistance[:4])


@pytest.mark.parametrize("make", [lambda: Omega(0), lambda: TwoPhase(-1), lambda: CoupledLearning(2),
                                  lambda: FiniteDifference(0.5)])
def test_rule_parameters_out_of_range_are_refused(make):
    with pytest.raises(ValueError, match="must be"):
        make()


# ------------------------------------------------------------------------------ the registry
def test_every_registered_rule_meets_the_rule_protocol_and_shows_only_its_parameters():
    assert list(RULES) == ["omega", "ep", "ep_symmetric", "coupled", "finite_difference", "gep"]
    for name, cls in RULES.items():
        rule = cls()
        assert isinstance(rule, Rule), name
        assert rule.name == name and rule.units in ("W", "A^2") and rule.label
        shown = ", ".join(f"{key}={getattr(rule, key)!r}" for key in parameters(cls))
        assert repr(rule) == f"{cls.__name__}({shown})"
        assert all(spec.doc for spec, _ in parameters(cls).values())


def test_an_unknown_rule_or_parameter_is_refused_naming_what_is_known():
    with pytest.raises(RuleParameterError, match="unknown rule 'backprop'; known rules: omega, ep, ep_symmetric, "
                                                  "coupled, finite_difference, gep"):
        make_rule("backprop")
    with pytest.raises(RuleParameterError, match="omega: unknown parameter 'beta'; allowed: eta"):
        make_rule("omega", beta=0.1)


@pytest.mark.parametrize("make, message", [
    (lambda: CoupledLearning(2), "coupled: eta = 2: must be in (0, 1]"),
    (lambda: Omega(float("nan")), "omega: eta = nan: must be a finite number"),
    (lambda: TwoPhase("big"), "ep: beta = 'big': must be a number, > 0"),
    (lambda: FiniteDifference(0.5), "finite_difference: relative_step = 0.5: must be in (0, 0.1]"),
])
def test_rule_errors_name_the_rule_the_parameter_the_value_and_what_is_allowed(make, message):
    with pytest.raises(RuleParameterError) as info:
        make()
    assert str(info.value).startswith(message), str(info.value)


def test_rules_are_immutable_values():
    rule = Omega(2e-3)
    with pytest.raises(AttributeError):
        rule.eta = 1.0
    assert rule == Omega(2e-3) and rule != Omega(1e-3)
    assert make_rule("omega", eta=2e-3) == rule
