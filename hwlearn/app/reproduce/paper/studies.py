"""The trainings of the paper study (docs/reproduction.md, "The paper's setting"), on an executor.

Every study submits all its trainings at once to the pool (a local pool of processes or a Dask
cluster) and summarises them over seeds. Seeds 0 .. seeds-1 for the studies; the learning-rate
tuning uses seeds 100 .. so that choosing a rate and measuring with it never share a draw.
"""

from __future__ import annotations

import numpy as np

from hwlearn.app.reproduce.common import TrainingPool
from hwlearn.app.reproduce.paper.runs import diverged, jitter, paired, rate, summary, trajectory
from hwlearn.app.reproduce.paper.setting import (
    CHOSEN_LR,
    LR_GRID,
    PAPER,
    RULES_COMPARED,
    PaperProfile,
    experiment,
)

TUNING_SEED = 100
IRIS_CONDITIONS = ("fixed_equal", PAPER)


def _run(pool: TrainingPool, jobs: list[tuple[dict, int]]) -> list[dict]:
    futures = [pool.executor.submit(trajectory, doc, seed) for doc, seed in jobs]
    return [f.result() for f in futures]


def _settings(profile: PaperProfile) -> list[tuple[str, str]]:
    """(task, condition) pairs studied: the teacher in every condition, Iris equal-fixed and the paper's."""
    return ([("teacher", c) for c in profile.conditions]
            + [("iris", c) for c in IRIS_CONDITIONS if c in profile.conditions])


# ---------------------------------------------------------------------------------- learning rates
def _level(train_loss: np.ndarray) -> float:
    """log10 of the train loss held over the second half of training, relative to the start."""
    loss = np.asarray(train_loss)
    return float(np.mean(np.log10(loss[len(loss) // 2:] / loss[0])))


def tune_learning_rates(profile: PaperProfile, pool: TrainingPool, progress) -> dict:
    """CHOICE (docs/reproduction.md): per task, condition and rule, the rate of LR_GRID (Omega
    scale) with the lowest median over the tuning seeds of the loss level held over the second half
    of training: fast and steady descent wins, late jitter and divergence lose. Without tuning,
    the rates the full profile chose."""
    if not profile.tune:
        return {"chosen": {f"{t}/{c}/{r}": CHOSEN_LR[(t, c, r)] for t, c in _settings(profile)
                           for r in RULES_COMPARED}, "rows": []}
    rows, chosen = [], {}
    for task, condition in _settings(profile):
        jobs, keys = [], []
        for rule in RULES_COMPARED:
            for lr in LR_GRID:
                for s in range(profile.tuning_seeds):
                    jobs.append((experiment(task, rule, lr, profile.epochs, condition), TUNING_SEED + s))
                    keys.append((rule, lr))
        results = _run(pool, jobs)
        for rule in RULES_COMPARED:
            best = None
            for lr in LR_GRID:
                runs = [r for k, r in zip(keys, results) if k == (rule, lr)]
                levels = [_level(r["train_loss"]) for r in runs]
                row = {"task": task, "condition": condition, "rule": rule, "lr": lr,
                       "score": float(np.median(levels)), "diverged": int(sum(diverged(r["train_loss"]) for r in runs)),
                       "n": len(runs)}
                rows.append(row)
                if best is None or row["score"] < best["score"]:
                    best = row
            chosen[f"{task}/{condition}/{rule}"] = best["lr"]
        progress(f"learning rates {task} {condition}: " + ", ".join(
            f"{r} {chosen[f'{task}/{condition}/{r}']:g}" for r in RULES_COMPARED))
    return {"chosen": chosen, "rows": rows}


def _lr(rates: dict, task: str, condition: str, rule: str) -> float:
    return rates["chosen"][f"{task}/{condition}/{rule}"]


# ---------------------------------------------------------------------------------- main trainings
def _describe(runs: list[dict]) -> dict:
    losses = [r["train_loss"] for r in runs]
    out = {"log10_final_over_initial": summary([np.log10(c[-1] / c[0]) for c in losses]),
           "final_train_loss": summary([c[-1] for c in losses]),
           "final_test_loss": summary([r["test_loss"][-1] for r in runs]),
           "jitter": summary([jitter(c) for c in losses]),
           "divergence": rate([diverged(c) for c in losses]),
           "mean_cosine": summary([np.nanmean(r["cosine"]) for r in runs]),
           "final_cosine": summary([np.nanmean(r["cosine"][-5:]) for r in runs]),
           "at_bounds": summary([r["at_bounds"] for r in runs]),
           "log10_output_ohms_change": summary([float(np.mean(np.abs(np.log10(r["output_ohms_final"]
                                                                                / r["output_ohms_initial"]))))
                                                for r in runs])}
    if "test_accuracy" in runs[0]:
        out["test_accuracy"] = summary([r["test_accuracy"][-1] for r in runs])
    return out


def trainings(profile: PaperProfile, rates: dict, pool: TrainingPool, progress) -> dict:
    """Every rule in every (task, condition), seeds 0 .. seeds-1 at its chosen rate: final loss,
    accuracy, stability, cosine with the exact gradient; curves kept for the figures."""
    results, curves, comparisons = {}, {}, {}
    ceilings = {}
    for task, condition in _settings(profile):
        jobs = [(experiment(task, rule, _lr(rates, task, condition, rule), profile.epochs, condition), s)
                for rule in RULES_COMPARED for s in range(profile.seeds)]
        runs = _run(pool, jobs)
        by_rule = {rule: runs[i * profile.seeds:(i + 1) * profile.seeds] for i, rule in enumerate(RULES_COMPARED)}
        results.setdefault(task, {})[condition] = {rule: _describe(r) for rule, r in by_rule.items()}
        curves.setdefault(task, {})[condition] = {
            rule: {key: np.array([r[key] for r in rs]) for key in ("train_loss", "test_accuracy", "cosine")
                   if key in rs[0]} for rule, rs in by_rule.items()}
        base = [np.log10(r["train_loss"][-1] / r["train_loss"][0]) for r in by_rule["omega"]]
        comparisons.setdefault(task, {})[condition] = {
            rule: paired([np.log10(r["train_loss"][-1] / r["train_loss"][0]) for r in by_rule[rule]], base)
            for rule in RULES_COMPARED if rule != "omega"}
        if task == "iris":
            ceilings[condition] = summary([r["ceiling"]["test_accuracy"] for r in by_rule["omega"]])
            accuracy = [r["test_accuracy"][-1] for r in by_rule["omega"]]
            comparisons[task][condition].update({
                f"{rule}_test_accuracy": paired([r["test_accuracy"][-1] for r in by_rule[rule]], accuracy)
                for rule in RULES_COMPARED if rule != "omega"})
        progress(f"{task} {condition}: " + ", ".join(
            f"{rule} log10 loss ratio {results[task][condition][rule]['log10_final_over_initial']['mean']:+.2f}, "
            f"diverged {results[task][condition][rule]['divergence']['count']}" for rule in RULES_COMPARED))
    return {"results": results, "paired_vs_omega": comparisons, "iris_ceiling": ceilings, "curves": curves}


# Two-phase EP also at Omega-learning's rate (times the nominal resistance): where its own best
# rate barely moves it, this shows what its estimate does at the rate the gradient allows.
AT_OMEGA_RATE = "ep_at_omega_rate"


def _series(rules) -> dict[str, tuple[str, str]]:
    """{key: (rule trained, rule whose chosen rate it takes)}: each rule at its own rate, and
    two-phase EP at Omega's."""
    return {**{rule: (rule, rule) for rule in rules}, AT_OMEGA_RATE: ("ep", "omega")}


def _sweep(profile: PaperProfile, rates: dict, pool: TrainingPool, series: dict[str, tuple[str, str]], values,
           make_doc, condition: str = PAPER) -> dict:
    """Teacher: each series (a rule at the rate chosen in ``condition`` for a rule) for each value;
    summaries by series and value."""
    jobs, keys = [], []
    for key, (rule, rate_of) in series.items():
        lr = _lr(rates, "teacher", condition, rate_of)
        for value in values:
            for s in range(profile.seeds):
                jobs.append((make_doc(rule, lr, value), s))
                keys.append((key, value))
    runs = _run(pool, jobs)
    out = {}
    for key in series:
        out[key] = {}
        for value in values:
            chosen = [r for k, r in zip(keys, runs) if k == (key, value)]
            out[key][str(value)] = _describe(chosen)
    return out


def noisy_targets(profile: PaperProfile, rates: dict, pool: TrainingPool, progress) -> dict:
    """Training with zero-mean target noise sigma (volts; the teacher's targets are some 0.03 -
    0.1 V RMS), scored on clean targets."""
    out = _sweep(profile, rates, pool, _series(RULES_COMPARED), profile.train_sigmas,
                 lambda rule, lr, sigma: experiment("teacher", rule, lr, profile.epochs, task={"noise_sigma": sigma}))
    progress("noisy targets: " + ", ".join(
        f"{rule} {out[rule][str(profile.train_sigmas[-1])]['log10_final_over_initial']['mean']:+.2f}"
        for rule in out) + f" at sigma {profile.train_sigmas[-1]} V")
    return out


NUDGED = {"ep": "beta", "ep_symmetric": "beta", "coupled": "eta"}


def nudge_strength(profile: PaperProfile, rates: dict, pool: TrainingPool, progress) -> dict:
    """Training two-phase (one-sided and symmetric) and Coupled Learning at each nudge, the rate
    chosen at the default nudge."""
    out = _sweep(profile, rates, pool, _series(NUDGED), profile.train_betas,
                 lambda rule, lr, beta: experiment("teacher", rule, lr, profile.epochs,
                                                   rule_params={NUDGED[rule]: min(beta, 1.0)}))
    progress("nudge strength: done")
    return out


def partial_updates(profile: PaperProfile, rates: dict, pool: TrainingPool, progress) -> dict:
    """A random share of the learnable edges (a different draw per seed) frozen at its initial
    value: every rule in the paper's setting, and Omega against two-phase with unequal fixed
    outputs, where two-phase learns (its proxy then differs from the loss only by the outputs'
    weights)."""
    def doc(condition):
        def make(rule, lr, fraction):
            mask = {"kind": "random", "frozen_fraction": fraction} if fraction else {"kind": "all"}
            return experiment("teacher", rule, lr, profile.epochs, condition, mask=mask)
        return make
    out = {PAPER: _sweep(profile, rates, pool, _series(RULES_COMPARED), profile.frozen, doc(PAPER))}
    if "fixed_spread" in profile.conditions:
        out["fixed_spread"] = _sweep(profile, rates, pool, {"omega": ("omega", "omega"), "ep": ("ep", "ep")},
                                     profile.frozen, doc("fixed_spread"), condition="fixed_spread")
    for condition, by_rule in out.items():
        progress(f"partial updates {condition}: " + ", ".join(
            f"{rule} {by_rule[rule][str(profile.frozen[-1])]['log10_final_over_initial']['mean']:+.2f}"
            for rule in by_rule) + f" at {profile.frozen[-1]:.0%} frozen")
    return out


# What the lattice Iris study varies around the shipped setting (docs/iris.md).
IRIS_VARIANTS = {
    "shipped: 8 x 8, interior outputs (trained), differential + bias": ({}, {}),
    "outputs fixed (not trained)": ({"tunable_ports": "none"}, {}),
    "inputs without their negatives": ({}, {"encoding": "single"}),
    "no bias input": ({}, {"bias": 0.0}),
    "6 x 6": ({"rows": 6, "cols": 6}, {}),
    "10 x 10": ({"rows": 10, "cols": 10}, {}),
    "10 x 8, ports on the left / right sides": ({"rows": 10, "placement": "sides"}, {}),
}


def iris_choices(profile: PaperProfile, rates: dict, pool: TrainingPool, progress) -> dict:
    """Omega-learning on Iris lattices: placement, encoding, size, around the shipped setting."""
    lr = _lr(rates, "iris", PAPER, "omega")
    seeds = max(profile.seeds // 2, 2)
    jobs, keys = [], []
    for name, (network, task) in IRIS_VARIANTS.items():
        for s in range(seeds):
            jobs.append((experiment("iris", "omega", lr, profile.epochs, network=network, task=task), s))
            keys.append(name)
    runs = _run(pool, jobs)
    out = {}
    for name in IRIS_VARIANTS:
        chosen = [r for k, r in zip(keys, runs) if k == name]
        out[name] = {"test_accuracy": summary([r["test_accuracy"][-1] for r in chosen]),
                     "final_train_loss": summary([r["train_loss"][-1] for r in chosen]),
                     "ceiling_accuracy": summary([r["ceiling"]["test_accuracy"] for r in chosen]),
                     "ceiling_train_loss": summary([r["ceiling"]["train_loss"] for r in chosen])}
    progress("lattice Iris variants: " + ", ".join(f"{v['test_accuracy']['mean']:.3f}" for v in out.values()))
    return out
