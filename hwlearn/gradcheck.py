"""Compare every rule's gradient estimate with the exact gradient, for one network and sample.

The loss is 1/2 |y_hat - y|^2 over the output edges' resistor voltages. The exact gradient comes
from the whole-batch adjoint formula; each rule's estimate comes from its phases solved as a
bench would measure them (hwlearn.rules.simulate), finite differences from re-solving at
perturbed resistances. Cosine similarity and relative error are against the exact gradient.
"""

from __future__ import annotations

import numpy as np

from hwlearn.ports import Ports
from hwlearn.rules import (
    CoupledLearning,
    FiniteDifference,
    LinearResponse,
    Omega,
    TwoPhase,
    per_sample_gradient,
)
from hwlearn.solver import KirchhoffSolver

SCHEMA = "hwlearn.gradcheck/1"


def compare(estimate: np.ndarray, exact: np.ndarray) -> tuple[float | None, float | None]:
    """(cosine similarity, relative error |est - exact| / |exact|); None where |exact| = 0."""
    norm_exact = float(np.linalg.norm(exact))
    if norm_exact == 0.0:
        return None, None
    norm_est = float(np.linalg.norm(estimate))
    cosine = float(estimate @ exact / (norm_est * norm_exact)) if norm_est else 0.0
    return cosine, float(np.linalg.norm(estimate - exact) / norm_exact)


def gradcheck(ports: Ports, x: np.ndarray, y: np.ndarray, *, beta: float = 1e-3, eta: float = 1e-3,
              omega_eta: float = 1e-3, fd_step: float = 1e-5, backend: str = "auto") -> dict:
    """The gradcheck document (docs/schemas.md): exact gradient, each rule's estimate, metrics."""
    net = ports.network
    solver = KirchhoffSolver(net, backend=backend)
    fz = solver.factorize()
    edges = np.arange(net.n_edges)
    response = LinearResponse(fz, ports, edges)
    x = np.asarray(x, dtype=float).reshape(ports.n_inputs, 1)
    y = np.asarray(y, dtype=float).reshape(ports.n_outputs, 1)
    exact = response.exact_gradient(x, y)
    y_hat = response.outputs(x)[:, 0]
    estimates = {}
    for rule in (Omega(omega_eta), TwoPhase(beta), TwoPhase(beta, symmetric=True), CoupledLearning(eta)):
        estimates[rule.name] = per_sample_gradient(fz, ports, rule, x, y, edges)
    fd = FiniteDifference(fd_step)
    estimates[fd.name] = fd.estimate(solver, ports, net.resistance, x, y, edges)
    names = net.edge_names
    rules = {}
    for name, est in estimates.items():
        cosine, rel = compare(est, exact)
        rules[name] = {"estimate": dict(zip(names, map(float, est))), "cosine": cosine, "relative_error": rel}
    return {
        "schema": SCHEMA,
        "network": {"title": net.title, "nodes": net.n_nodes, "edges": net.n_edges, "backend": solver.backend},
        "parameters": {"beta": beta, "eta": eta, "omega_eta": omega_eta, "fd_relative_step": fd_step},
        "inputs": dict(zip(ports.input_names, map(float, x[:, 0] * ports.gain))),
        "outputs": {name: {"volts": float(v), "target": float(t)}
                    for name, v, t in zip(ports.output_names, y_hat, y[:, 0])},
        "loss": response.loss(x, y),
        "units": {"exact": "dL/dR in V^2/ohm (W), L = 1/2 |v_out - y|^2 in V^2",
                  "estimate": "same as exact"},
        "exact": dict(zip(names, map(float, exact))),
        "rules": rules,
    }
