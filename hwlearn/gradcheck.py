"""Compare every rule's gradient estimate with the exact gradient, for one network and sample.

The loss is 1/2 |y_hat - y|^2 over the output edges' resistor voltages (hwlearn.loss). The exact
gradient comes from the whole-batch adjoint formula; every registered rule's estimate comes from
its own plans executed on the solver as a bench would run them (``rule.simulate`` without the
linear shortcut), finite differences from re-solving at perturbed resistances. Cosine similarity
and relative error are against the exact gradient; the rules in A^2 estimate a proxy's gradient
(docs/theory.md), so their relative error is not expected to be small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwlearn.ports import Ports
from hwlearn.rules import RULES, LinearResponse, Rule, make_rule, parameters
from hwlearn.solver import KirchhoffSolver

SCHEMA = "hwlearn.gradcheck/2"
UNITS = {"W": "dL/dR in V^2/ohm (W), as exact",
         "A^2": "A^2 = V^2/ohm^2: the gradient of the output-current proxy, not of L (docs/theory.md)"}


def compare(estimate: np.ndarray, exact: np.ndarray) -> tuple[float | None, float | None]:
    """(cosine similarity, relative error |est - exact| / |exact|); None where |exact| = 0."""
    norm_exact = float(np.linalg.norm(exact))
    if norm_exact == 0.0:
        return None, None
    norm_est = float(np.linalg.norm(estimate))
    cosine = float(estimate @ exact / (norm_est * norm_exact)) if norm_est else 0.0
    return cosine, float(np.linalg.norm(estimate - exact) / norm_exact)


def check_rules(values: Mapping[str, Mapping[str, Any]] | None = None) -> list[Rule]:
    """Every registered rule at its gradcheck values (``check_values``, else its defaults),
    updated by ``values`` {rule name: {parameter: value}}."""
    values = values or {}
    return [make_rule(name, **{**cls.check_values, **values.get(name, {})}) for name, cls in RULES.items()]


def gradcheck(ports: Ports, x: np.ndarray, y: np.ndarray, *, rules: Sequence[Rule] | None = None,
              backend: str = "auto") -> dict:
    """The gradcheck document (docs/schemas.md): exact gradient, each rule's estimate, metrics."""
    rules = check_rules() if rules is None else list(rules)
    net = ports.network
    solver = KirchhoffSolver(net, backend=backend)
    fz = solver.factorize()
    edges = np.arange(net.n_edges)
    response = LinearResponse(fz, ports, edges)
    x = np.asarray(x, dtype=float).reshape(ports.n_inputs, 1)
    y = np.asarray(y, dtype=float).reshape(ports.n_outputs, 1)
    exact = response.exact_gradient(x, y)
    y_hat = response.outputs(x)[:, 0]
    names = net.edge_names
    report = {}
    for rule in rules:
        estimate, _ = rule.simulate(fz, ports, edges, x, y, shortcut=False)
        cosine, rel = compare(estimate, exact)
        report[rule.name] = {"estimate": dict(zip(names, map(float, estimate))), "cosine": cosine,
                             "relative_error": rel}
    return {
        "schema": SCHEMA,
        "network": {"title": net.title, "nodes": net.n_nodes, "edges": net.n_edges, "backend": solver.backend},
        "parameters": {rule.name: {key: getattr(rule, key) for key in parameters(rule)} for rule in rules},
        "inputs": dict(zip(ports.input_names, map(float, x[:, 0] * ports.gain))),
        "outputs": {name: {"volts": float(v), "target": float(t)}
                    for name, v, t in zip(ports.output_names, y_hat, y[:, 0])},
        "loss": response.loss(x, y),
        "units": {"exact": "dL/dR in V^2/ohm (W), L = 1/2 |v_out - y|^2 in V^2",
                  "estimates": {rule.name: UNITS[rule.units] for rule in rules}},
        "exact": dict(zip(names, map(float, exact))),
        "rules": report,
    }
