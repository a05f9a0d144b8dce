"""Finding 2: with zero-mean noise on the targets Omega-learning stays unbiased, two-phase does not.

Measured on the Iris crossbar at its initial resistances, over the whole train set. Every rule's
estimate is a bilinear form in z = [x; y] (hwlearn.rules.linear), so one Monte-Carlo draw of the
target noise costs only a new moment matrix M = mean_s z_s z_s^T; many draws are cheap.

Each estimator's bias is measured against its own noise-free limit: the exact gradient for
Omega; for two-phase the beta -> 0 limit, the gradient of e^T P_o i, which on this crossbar (equal
1 kOhm loads) is exactly the exact gradient divided by 1 kOhm; for Coupled Learning its eta -> 0
limit. The two-phase prediction (docs/theory.md, section 3) is
    bias = (beta / 2) [ mean_s (M P_o^T e_s)^2 + sigma^2 sum_o (M P_o^T u_o)^2 ],
with M P_o^T e the branch currents driven by series sources e on the outputs.
"""

from __future__ import annotations

import numpy as np

from hwlearn.app.launch import simulated_substrate
from hwlearn.app.reproduce.common import Profile, TrainingPool, experiment_doc, mean_spread
from hwlearn.config import resolve
from hwlearn.experiment import build_experiment
from hwlearn.rules import FREE, CoupledLearning, LinearResponse, Omega, SymmetricTwoPhase, TwoPhase
from hwlearn.solver import Excitation

CHUNK = 2000


def term_maps(response: LinearResponse, rule) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(coef, left map, right map) per term of a phase-based rule: its estimate for samples z is
    sum coef * mean_s (left z_s)(right z_s)."""
    maps = {FREE: response.current_map(None), **{p.name: response.current_map(p) for p in rule.phases}}
    return [(t.coef, maps[t.left], maps[t.right]) for t in rule.terms]


def _estimates(terms, z: np.ndarray) -> np.ndarray:
    """(draws, k) estimates for a stack of samples z (draws, D, B)."""
    moments = np.einsum("dib,djb->dij", z, z) / z.shape[2]
    return sum(coef * np.einsum("ki,dij,kj->dk", left, moments, right, optimize=True)
               for coef, left, right in terms)


def monte_carlo(terms, x, y, sigma, draws, rng) -> tuple[np.ndarray, np.ndarray]:
    """Mean estimate over ``draws`` noisy-target draws and its standard error (both (k,))."""
    total = total_sq = 0.0
    done = 0
    while done < draws:
        n = min(CHUNK, draws - done)
        noisy = y[None] + sigma * rng.standard_normal((n, *y.shape))
        z = np.concatenate([np.broadcast_to(x, (n, *x.shape)), noisy], axis=1)
        est = _estimates(terms, z)
        total = total + est.sum(axis=0)
        total_sq = total_sq + (est ** 2).sum(axis=0)
        done += n
    mean = total / draws
    variance = np.maximum(total_sq / draws - mean ** 2, 0.0)
    return mean, np.sqrt(variance / draws)


def gradient_bias(profile: Profile, progress, seed: int = 0) -> dict:
    config = resolve(experiment_doc("omega", 1), "<reproduce>", seed=seed)
    experiment = build_experiment(config)
    substrate = simulated_substrate(experiment)
    fz = substrate.circuit.factorization()
    ports, edges = experiment.ports, substrate.learnable
    x, y = experiment.task.train.x, experiment.task.train.y
    response = LinearResponse(fz, ports, edges)
    exact = response.exact_gradient(x, y)
    # Branch currents per unit series source on each output: the columns of M P_o^T.
    unit = fz.solve(Excitation(series=(ports.outputs, np.eye(ports.n_outputs)))).edge_currents(edges)
    c = unit @ (response.outputs(x) - y)
    i_free = response.current_map(None) @ np.vstack([x, y])
    ep_limit = np.mean(i_free * c, axis=1)
    cl_limit = response.gradient(CoupledLearning(1e-6), x, y)
    rng = np.random.default_rng(seed)
    rows = []

    def measure(rule, name, parameter, value, reference, sigma, predicted=None):
        mean, error = monte_carlo(term_maps(response, rule), x, y, sigma, profile.bias_draws, rng)
        scale = float(np.linalg.norm(reference))
        row = {"rule": name, parameter: value, "sigma": sigma,
               "relative_bias": float(np.linalg.norm(mean - reference) / scale),
               "mc_floor": float(np.linalg.norm(error) / scale)}
        if predicted is not None:
            row["predicted"] = float(np.linalg.norm(predicted) / scale)
        rows.append(row)

    for sigma in profile.sigmas:
        measure(Omega(), "omega", "beta", None, exact, sigma)
        for beta in profile.betas:
            predicted = beta / 2 * (np.mean(c ** 2, axis=1) + sigma ** 2 * np.sum(unit ** 2, axis=1))
            measure(TwoPhase(beta), "ep", "beta", beta, ep_limit, sigma, predicted)
            measure(SymmetricTwoPhase(beta), "ep_symmetric", "beta", beta, ep_limit, sigma)
            eta = min(beta, 1.0)
            measure(CoupledLearning(eta), "coupled", "eta", eta, cl_limit, sigma)
        progress(f"gradient bias at sigma {sigma}: done ({profile.bias_draws} draws per point)")
    ratio = float(np.linalg.norm(ep_limit * fz.resistance[ports.outputs][0] - exact) / np.linalg.norm(exact))
    return {"rows": rows, "ep_limit_vs_exact_times_load": ratio}


NOISE_RULES = {"omega": {"name": "omega", "eta": 1e-3}, "ep": {"name": "ep", "beta": 0.1},
               "ep_symmetric": {"name": "ep_symmetric", "beta": 0.1}}


def training_under_noise(profile: Profile, pool: TrainingPool, progress) -> dict:
    """Final clean test loss after training with noisy targets (two-phase at beta = 0.1)."""
    results = {}
    for rule, rule_doc in NOISE_RULES.items():
        results[rule] = {}
        for sigma in profile.train_sigmas:
            doc = experiment_doc(rule, profile.epochs, task={"noise_sigma": sigma}, rule=rule_doc)
            losses = [r["test_loss"][-1] for r in pool.curves([(doc, seed) for seed in range(profile.seeds)])]
            results[rule][str(sigma)] = mean_spread(losses)
            progress(f"noisy training {rule} sigma {sigma}: test loss {np.mean(losses):.4e}")
    return results
