"""Generalized Equilibrium Propagation: each member against its own objective, the objectives
against finite differences, and two-phase's limit in the paper's setting (docs/theory.md, GEP)."""

import numpy as np
import pytest

from hwlearn.builders import lattice, lattice_edge_names
from hwlearn.ports import Ports
from hwlearn.rules import (
    CURRENT_PROXY,
    GEP,
    LOSS,
    OBJECTIVES,
    WEIGHTED_ERROR,
    CoupledLearning,
    LinearResponse,
    Omega,
    RuleParameterError,
    SymmetricTwoPhase,
    TwoPhase,
    as_member,
    effective_conductance,
    finite_differences,
    members,
    objective_of,
    per_sample_gradient,
)
from hwlearn.solver import KirchhoffSolver


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def paper_lattice(seed, d_in=3, d_out=2, spread=0.8):
    """A random lattice in the paper's setting: inputs in series with boundary edges, outputs
    across interior edges, every edge but the inputs tunable, resistances log-normal around
    1 kOhm (so the output resistances differ from each other and from 1 ohm)."""
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(4, 7)), int(rng.integers(4, 7))
    names = lattice_edge_names(rows, cols)
    boundary = [f"Rv{r}_0" for r in range(rows - 1)] + [f"Rh0_{c}" for c in range(cols - 1)]
    interior = [f"Rh{r}_{c}" for r in range(1, rows - 1) for c in range(cols - 1)]
    inputs = list(rng.choice(boundary, size=d_in, replace=False))
    outputs = list(rng.choice(interior, size=d_out, replace=False))
    net = lattice(rows, cols, inputs=inputs, outputs=outputs)
    net = net.with_roles(tunable=~net.roles["input"]).with_resistances(
        1000.0 * np.exp(spread * rng.standard_normal(len(names))))
    ports = Ports.from_roles(net, gain=1.0)
    x = rng.standard_normal((d_in, 6))
    y = 0.05 * rng.standard_normal((d_out, 6))
    return net, ports, KirchhoffSolver(net), x, y


# ------------------------------------------------------------------------------ the family
@pytest.mark.parametrize("named, member", [
    (TwoPhase(0.03), GEP(order=1, centered=False, beta=0.03)),
    (SymmetricTwoPhase(0.03), GEP(order=1, centered=True, beta=0.03)),
    (CoupledLearning(0.03), GEP(order=2, centered=False, beta=0.03)),
], ids=lambda r: getattr(r, "name", ""))
def test_the_named_two_phase_rules_are_gep_members(named, member):
    net, ports, solver, x, y = paper_lattice(1)
    fz = solver.factorize()
    edges = np.arange(net.n_edges)
    assert as_member(named) == member
    assert {p.name for p in named.phases} == {p.name for p in member.phases}
    expected = per_sample_gradient(fz, ports, named, x, y, edges)
    assert _rel(per_sample_gradient(fz, ports, member, x, y, edges), expected) < 1e-12
    assert objective_of(named) is member.objective


def test_objectives_of_the_loss_rules_and_unknown_orders():
    assert objective_of(Omega()) is LOSS
    assert [m.objective for m in members(0.1)] == [CURRENT_PROXY, CURRENT_PROXY, WEIGHTED_ERROR, WEIGHTED_ERROR]
    with pytest.raises(RuleParameterError, match=r"gep: order = 3: must be in \[1, 2\]"):
        GEP(order=3)
    with pytest.raises(RuleParameterError, match="gep: centered = 1: must be true or false"):
        GEP(centered=1)


@pytest.mark.parametrize("member", members(0.05), ids=lambda m: m.member_label)
def test_every_member_runs_the_same_plan_on_a_rig_and_on_the_whole_batch_path(member):
    net, ports, solver, x, y = paper_lattice(2)
    fz = solver.factorize()
    edges = np.flatnonzero(net.roles["tunable"])
    phases = per_sample_gradient(fz, ports, member, x, y, edges)
    assert _rel(LinearResponse(fz, ports, edges).gradient(member, x, y), phases) < 1e-9


# ------------------------------------------------------------------------------ objectives
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("key", list(OBJECTIVES))
def test_each_objective_gradient_equals_finite_differences_of_the_objective(key, seed):
    net, ports, solver, x, y = paper_lattice(10 + seed)
    fz = solver.factorize()
    edges = np.arange(net.n_edges)
    objective = OBJECTIVES[key]
    analytic = objective.gradient(LinearResponse(fz, ports, edges), x, y)
    numeric = finite_differences(objective, solver, ports, net.resistance, x, y, edges)
    assert _rel(analytic, numeric) < 1e-6, _rel(analytic, numeric)


def test_the_effective_conductance_is_symmetric_positive_definite_and_clamps_dissipate_it():
    net, ports, solver, x, y = paper_lattice(4)
    fz = solver.factorize()
    response = LinearResponse(fz, ports, np.arange(net.n_edges))
    K = effective_conductance(response)
    assert np.allclose(K, K.T, rtol=1e-12, atol=0) and np.all(np.linalg.eigvalsh(K) > 0)
    c = np.array([0.3, -0.2])
    from hwlearn.solver import Excitation
    state = fz.solve(Excitation(clamp=(ports.outputs, c)))
    power = float(np.sum(state.edge_currents()[:, 0] * state.edge_voltages()[:, 0]))
    assert power == pytest.approx(c @ K @ c, rel=1e-10)


# ------------------------------------------------------------------------------ the paper's setting
@pytest.mark.parametrize("seed", range(6))
def test_two_phase_limit_is_the_proxy_gradient_on_lattices_with_unequal_output_resistances(seed):
    net, ports, solver, x, y = paper_lattice(20 + seed)
    fz = solver.factorize()
    edges = np.arange(net.n_edges)
    response = LinearResponse(fz, ports, edges)
    # The estimate is a + beta b exactly: the limit a from two nudges, without dividing by a tiny beta.
    beta = 0.01
    one, two = (per_sample_gradient(fz, ports, TwoPhase(b), x, y, edges) for b in (beta, 2 * beta))
    limit = 2 * one - two
    proxy = finite_differences(CURRENT_PROXY, solver, ports, net.resistance, x, y, edges)
    assert _rel(limit, proxy) < 1e-6, _rel(limit, proxy)
    # Closed form (docs/theory.md): grad l_1 = grad L[G_o e] - i_F * P_o^T G_o e, the loss gradient
    # with the errors weighted by the output conductances, less a term on the output edges.
    g_out = 1.0 / net.resistance[ports.outputs]
    y_hat = response.outputs(x)
    weighted = response.exact_gradient(x, y_hat - g_out[:, None] * (y_hat - y))
    i_free = fz.solve(ports.excitation(x)).edge_currents()
    direct = np.zeros(net.n_edges)
    direct[ports.outputs] = np.mean(i_free[ports.outputs] * g_out[:, None] * (y_hat - y), axis=1)
    assert _rel(limit, weighted - direct) < 1e-9
    # ... which is not the true gradient, whatever the scale: the difference the closed form names.
    exact = response.exact_gradient(x, y)
    assert _cos(limit, exact) < 0.999
    scale = (limit @ exact) / (exact @ exact)
    assert np.linalg.norm(limit - scale * exact) > 1e-3 * np.linalg.norm(limit)


def test_with_equal_fixed_output_loads_the_two_phase_limit_is_the_gradient_over_the_load():
    net, ports, solver, x, y = paper_lattice(30)
    r = net.resistance.copy()
    r[ports.outputs] = 2000.0
    fz = solver.factorize(r)
    learnable = np.setdiff1d(np.flatnonzero(net.roles["tunable"]), ports.outputs)
    response = LinearResponse(fz, ports, learnable)
    limit = CURRENT_PROXY.gradient(response, x, y)
    assert _rel(limit * 2000.0, response.exact_gradient(x, y)) < 1e-10


@pytest.mark.parametrize("member", members(1.0), ids=lambda m: m.member_label)
def test_each_gep_member_converges_to_its_own_objective_at_the_predicted_order(member):
    net, ports, solver, x, y = paper_lattice(40)
    fz = solver.factorize()
    edges = np.arange(net.n_edges)
    response = LinearResponse(fz, ports, edges)
    target = member.objective.gradient(response, x, y)
    bias = member.objective.bias(response, x, y)
    errors = []
    for beta in (0.04, 0.02, 0.01):
        estimate = per_sample_gradient(fz, ports, GEP(member.order, member.centered, beta), x, y, edges)
        errors.append(np.linalg.norm(estimate - target) / np.linalg.norm(target))
        if not member.centered:  # exactly beta b, b the objective's bias (docs/theory.md)
            assert _rel(estimate - target, beta * bias) < 1e-6
    if member.centered:  # the bias cancels: exact at every beta in a linear network
        assert max(errors) < 1e-9, errors
    else:  # order 1 in beta: halving beta halves the error
        assert errors[0] / errors[1] == pytest.approx(2.0, rel=1e-4)
        assert errors[1] / errors[2] == pytest.approx(2.0, rel=1e-4)
        assert errors[2] > 1e-4


def test_the_clamp_at_full_strength_is_the_gradient_of_the_whole_weighted_error():
    # One-sided clamp = grad l_2 (K held) + beta grad (1/2 e^T K e) (e held); at beta = 1 the two
    # add up to the gradient of l_2 with both varying: GEP's order-2 objective, in one step.
    net, ports, solver, x, y = paper_lattice(50)
    edges = np.arange(net.n_edges)

    def whole(r):
        response = LinearResponse(solver.factorize(r), ports, edges)
        error = response.outputs(x) - y
        return float(np.mean(0.5 * np.sum(error * (effective_conductance(response) @ error), axis=0)))

    r = net.resistance
    numeric = np.array([(whole(r + h * np.eye(r.size)[k]) - whole(r - h * np.eye(r.size)[k])) / (2 * h)
                        for k, h in enumerate(1e-5 * r)])
    estimate = per_sample_gradient(solver.factorize(), ports, GEP(order=2, beta=1.0), x, y, edges)
    assert _rel(estimate, numeric) < 1e-6


def test_dividing_the_clamp_difference_by_beta_squared_diverges_like_one_over_beta():
    # Why every member divides by beta: with the clamp's target held, as on a rig, the co-content
    # difference has a first-order part, so GEP's beta^-2 scaling of an order-2 nudge blows up.
    net, ports, solver, x, y = paper_lattice(60)
    fz = solver.factorize()
    edges = np.arange(net.n_edges)
    norms = [np.linalg.norm(per_sample_gradient(fz, ports, CoupledLearning(b), x, y, edges) / b)
             for b in (0.02, 0.01)]
    assert norms[1] / norms[0] == pytest.approx(2.0, rel=0.02)
    assert _cos(per_sample_gradient(fz, ports, CoupledLearning(1e-3), x, y, edges),
                WEIGHTED_ERROR.gradient(LinearResponse(fz, ports, edges), x, y)) > 0.999
