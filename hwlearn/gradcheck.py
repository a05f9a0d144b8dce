"""Compare every rule's gradient estimate with the exact gradient, for one network and sample.

The loss is 1/2 |y_hat - y|^2 over the output edges' resistor voltages (hwlearn.loss). The exact
gradient comes from the whole-batch adjoint formula; every registered rule's estimate comes from
its own plans executed on the solver as a bench would run them (``rule.simulate`` without the
linear shortcut), finite differences from re-solving at perturbed resistances. Cosine similarity
and relative error are against the exact gradient. Each rule is also compared with the gradient
of its own objective (hwlearn.rules.objectives: the loss, or a GEP member's l_k), whose analytic
form is itself checked against finite differences of the objective; the GEP family is checked
member by member (orders 1 and 2, one-sided and centred).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwlearn.ports import Ports
from hwlearn.rules import RULES, LinearResponse, Rule, finite_differences, make_rule, objective_of, parameters
from hwlearn.solver import KirchhoffSolver

SCHEMA = "hwlearn.gradcheck/2"
UNITS = {"W": "dL/dR in V^2/ohm (W), as exact",
         "A^2": "A^2 = V^2/ohm^2: the gradient of its own objective, not of L (docs/theory.md)"}
# The GEP members gradcheck reports when no order or difference is asked for.
GEP_MEMBERS = ({"order": 1, "centered": False}, {"order": 1, "centered": True},
               {"order": 2, "centered": False}, {"order": 2, "centered": True})


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
    updated by ``values`` {rule name: {parameter: value}}. The GEP family appears as its four
    members, or as the one member ``values`` names by its order and difference."""
    values = values or {}
    rules = []
    for name, cls in RULES.items():
        chosen = {**cls.check_values, **values.get(name, {})}
        if name == "gep" and not {"order", "centered"} & set(values.get(name, {})):
            rules += [make_rule(name, **{**chosen, **member}) for member in GEP_MEMBERS]
        else:
            rules.append(make_rule(name, **chosen))
    return rules


def check_name(rule: Rule) -> str:
    """How the document names a rule: its registered name, a GEP member its label."""
    return getattr(rule, "member_label", rule.name)


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
    report, objectives = {}, {}
    for rule in rules:
        estimate, _ = rule.simulate(fz, ports, edges, x, y, shortcut=False)
        cosine, rel = compare(estimate, exact)
        entry = {"estimate": dict(zip(names, map(float, estimate))), "cosine": cosine, "relative_error": rel}
        objective = objective_of(rule)
        if objective is not None:
            if objective.key not in objectives:
                analytic = objective.gradient(response, x, y)
                numeric = finite_differences(objective, solver, ports, net.resistance, x, y, edges)
                objectives[objective.key] = (analytic, compare(analytic, numeric)[1])
            analytic, checked = objectives[objective.key]
            own_cosine, own_rel = compare(estimate, analytic)
            entry["objective"] = {"key": objective.key, "symbol": objective.symbol, "formula": objective.formula,
                                  "units": objective.units, "gradient": dict(zip(names, map(float, analytic))),
                                  "finite_difference_error": checked, "cosine": own_cosine,
                                  "relative_error": own_rel}
        report[check_name(rule)] = entry
    return {
        "schema": SCHEMA,
        "network": {"title": net.title, "nodes": net.n_nodes, "edges": net.n_edges, "backend": solver.backend},
        "parameters": {check_name(rule): {key: getattr(rule, key) for key in parameters(rule)} for rule in rules},
        "inputs": dict(zip(ports.input_names, map(float, x[:, 0] * ports.gain))),
        "outputs": {name: {"volts": float(v), "target": float(t)}
                    for name, v, t in zip(ports.output_names, y_hat, y[:, 0])},
        "loss": response.loss(x, y),
        "units": {"exact": "dL/dR in V^2/ohm (W), L = 1/2 |v_out - y|^2 in V^2",
                  "estimates": {check_name(rule): UNITS[rule.units] for rule in rules}},
        "exact": dict(zip(names, map(float, exact))),
        "rules": report,
    }
