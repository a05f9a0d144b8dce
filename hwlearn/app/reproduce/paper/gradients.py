"""Gradient estimates in the paper's setting, without training: the GEP members' orders in beta,
and the bias of each rule under target noise (docs/reproduction.md).

Both at the initial resistances of the teacher lattice (paper's condition, seed 0) over its whole
train set. Every phase-based estimate is exact and cheap through the whole-batch linear path
(hwlearn.rules.linear), so beta can go down to 1e-4 and Monte-Carlo draws cost a moment matrix.
"""

from __future__ import annotations

import numpy as np

from hwlearn.app.launch import simulated_substrate
from hwlearn.app.reproduce.noise_bias import monte_carlo, term_maps
from hwlearn.app.reproduce.paper.setting import experiment
from hwlearn.config import resolve
from hwlearn.experiment import build_experiment
from hwlearn.rules import GEP, LinearResponse, make_rule, members, objective_of


def _state(seed: int = 0):
    """(response on the learnable edges, x, y) of the teacher lattice at its initial resistances."""
    config = resolve(experiment("teacher", "omega", 1.0, 1), "<reproduce paper>", seed=seed)
    built = build_experiment(config)
    substrate = simulated_substrate(built)
    response = LinearResponse(substrate.circuit.factorization(), built.ports, substrate.learnable)
    return response, built.task.train.x, built.task.train.y


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def gep_orders(betas, progress, seed: int = 0) -> dict:
    """Per member and beta: |estimate - grad l_k| / |grad l_k| (its own objective) and the cosine
    with the true gradient; the fitted log-log slope of the one-sided members' error."""
    response, x, y = _state(seed)
    exact = response.exact_gradient(x, y)
    rows, slopes = [], {}
    for member in members(1.0):
        target = member.objective.gradient(response, x, y)
        errors = []
        for beta in betas:
            estimate = response.gradient(GEP(member.order, member.centered, beta), x, y)
            error = float(np.linalg.norm(estimate - target) / np.linalg.norm(target))
            errors.append(error)
            rows.append({"member": member.member_label, "order": member.order, "centered": member.centered,
                         "beta": float(beta), "error_own": error, "cosine_true": _cosine(estimate, exact)})
        fit = np.polyfit(np.log10(betas), np.log10(np.maximum(errors, 1e-300)), 1)[0]
        slopes[member.member_label] = {"fitted": float(fit), "predicted": None if member.centered else 1.0,
                                       "max_error": float(max(errors)),
                                       "objective": member.objective.symbol,
                                       "cosine_objective_true": _cosine(target, exact)}
    progress("GEP orders: " + ", ".join(f"{k} slope {v['fitted']:.3f}" for k, v in slopes.items()))
    return {"rows": rows, "slopes": slopes}


BIAS_RULES = {"omega": {}, "ep": {"beta": None}, "ep_symmetric": {"beta": None}, "coupled": {"eta": None}}


def noise_bias(profile, progress, seed: int = 0) -> dict:
    """Each rule's mean estimate under zero-mean target noise against its own noise-free limit
    (the gradient of its objective), relative, with the Monte-Carlo floor; for one-sided members
    the prediction beta [b(e) + sigma^2 sum_o b(u_o)] (b: the objective's bias). Also the cosine of
    each limit with the true gradient: what training follows when the bias is gone."""
    response, x, y = _state(seed)
    d_out = y.shape[0]
    exact = response.exact_gradient(x, y)
    rng = np.random.default_rng(seed)
    rows, cosines = [], {}
    for name, params in BIAS_RULES.items():
        objective = objective_of(make_rule(name))
        limit = objective.gradient(response, x, y)
        cosines[name] = _cosine(limit, exact)
        bias = objective.bias(response, x, y)
        # b summed over unit errors on each output: zero inputs, targets -I give e = I.
        unit = None if bias is None else d_out * objective.bias(response, np.zeros((x.shape[0], d_out)), -np.eye(d_out))
        for sigma in profile.bias_sigmas:
            for beta in (profile.bias_betas if params else (None,)):
                rule = make_rule(name, **{key: min(beta, 1.0) for key in params})
                mean, error = monte_carlo(term_maps(response, rule), x, y, sigma, profile.bias_draws, rng)
                scale = float(np.linalg.norm(limit))
                row = {"rule": name, "beta": beta, "sigma": sigma,
                       "relative_bias": float(np.linalg.norm(mean - limit) / scale),
                       "mc_floor": float(np.linalg.norm(error) / scale), "cosine_true": _cosine(mean, exact)}
                if bias is not None and not name.endswith("symmetric"):
                    nudge = min(beta, 1.0)
                    row["predicted"] = float(np.linalg.norm(nudge * (bias + sigma ** 2 * unit)) / scale)
                rows.append(row)
        progress(f"noise bias {name}: done ({profile.bias_draws} draws per point)")
    return {"rows": rows, "limit_cosine_true": cosines}
