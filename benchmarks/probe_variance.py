"""The variance of a step's estimate under voltmeter noise: the probe plan against the per-sample
plan, derived (first-order error propagation) and measured (Monte Carlo).

    PYTHONPATH=. python benchmarks/probe_variance.py [--noise V] [--trials N]

Both plans are the ones a bench runs (the same messages), executed by the solver with Gaussian
noise of ``--noise`` volts on every reading, at the initial resistances of the example
experiments on their benches (the teacher task's lattice, Iris's crossbar), on the first B
training samples. The probe amplitudes are the ones the bench limits give (probe.headroom 0.5).

derived : Var(g_e) = sigma^2 sum_n (dg_e / d rho_n)^2 over every reading rho_n the estimate uses,
          the derivatives by central differences (exact: the estimate is quadratic in any one
          reading; a reading that sets a later drive changes that phase's state, as on a bench);
measured: the sample variance over ``--trials`` noisy repetitions.
Each is shown as the relative noise sqrt(sum_e Var(g_e)) / |g| of the estimate g on the learnable
edges. docs/bench.md, "Noise", discusses the figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hwlearn.app.sessions import probe_settings  # noqa: E402
from hwlearn.config import load_experiment  # noqa: E402
from hwlearn.config.bench import load_bench_file  # noqa: E402
from hwlearn.experiment import build_experiment  # noqa: E402
from hwlearn.rules import execute, make_rule  # noqa: E402
from hwlearn.rules.probe import probe_modes, probe_plan  # noqa: E402
from hwlearn.rules.probe_design import ReadingAccuracy, design_probes  # noqa: E402
from hwlearn.rules.simulate import per_sample_gradient  # noqa: E402
from hwlearn.solver import KirchhoffSolver  # noqa: E402

CASES = {"teacher": ("examples/virtual-bench.toml", "examples/bench-teacher-omega.toml"),
         "iris": ("examples/virtual-bench-iris.toml", "examples/bench-iris-omega.toml")}
RULES = {"omega": {"eta": 1e-3}, "ep": {"beta": 0.05}, "coupled": {"eta": 0.1}}
STEP = 1e-3  # volts: the central differences' step (exact for a quadratic)


class Readings:
    """A voltmeter for the solver executor: counts the readings, adds one perturbation or noise."""

    def __init__(self, index: int | None = None, step: float = 0.0, noise: float = 0.0, rng=None):
        self.index, self.step, self.noise, self.rng, self.count = index, step, noise, rng, 0

    def __call__(self, volts: np.ndarray) -> np.ndarray:
        out = np.array(volts, dtype=float)
        flat = out.reshape(-1)
        if self.index is not None and self.count <= self.index < self.count + flat.size:
            flat[self.index - self.count] += self.step
        if self.noise:
            out = out + self.noise * self.rng.standard_normal(out.shape)
        self.count += flat.size
        return out


def estimator(plan: str, rule, exp, fz, design, known, x, y):
    """The plan's estimate as a function of a voltmeter (Readings), and how many readings it uses."""
    edges, ports = exp.learnable, exp.ports

    def estimate(readings: Readings) -> np.ndarray:
        if plan == "per-sample":
            return per_sample_gradient(fz, ports, rule, x, y, edges, known_ohms=known, measure=readings)
        outcome = execute(probe_plan(rule, ports, edges, x, y, known, design, ReadingAccuracy.exact(),
                                     np.random.default_rng(0)), fz, ports, readings)
        return outcome.gradient

    counter = Readings()
    estimate(counter)
    used = counter.count
    if plan == "probe":  # the checks' readings (the last scans) do not enter the estimate
        used -= len(probe_modes(rule)) * (ports.n_outputs + len(edges))
    return estimate, used


def derived_variance(estimate, used: int, sigma: float) -> np.ndarray:
    total = 0.0
    for n in range(used):
        plus, minus = estimate(Readings(n, STEP)), estimate(Readings(n, -STEP))
        total = total + ((plus - minus) / (2 * STEP)) ** 2
    return sigma ** 2 * total


def measured_variance(estimate, sigma: float, trials: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    draws = np.array([estimate(Readings(noise=sigma, rng=rng)) for _ in range(trials)])
    return draws.var(axis=0, ddof=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--noise", type=float, default=1e-3, help="read noise, volts")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 4], help="probe.repeats to compare")
    args = parser.parse_args(argv)
    sigma = args.noise
    print(f"relative noise sqrt(sum_e Var g_e) / |g| with {sigma * 1e3:g} mV per reading; derived / measured "
          f"({args.trials} trials)")
    print(f"{'case':<8} {'rule':<8} {'batch':>5} {'plan':<16} {'readings':>8} {'derived':>9} {'measured':>9} "
          f"{'Var ratio per-sample/this':>26}")
    for case in args.cases:
        bench_file, experiment_file = (ROOT / p for p in CASES[case])
        bench = load_bench_file(bench_file)
        for rule_name, params in RULES.items():
            config = load_experiment(experiment_file)
            config["rule"] = {"name": rule_name, **params}
            exp = build_experiment(config, str(experiment_file), network=bench.network)
            rule = make_rule(rule_name, **params)
            known = exp.initial_ohms
            fz = KirchhoffSolver(exp.network).factorize(known)
            settings = probe_settings(exp, bench, plan="probe", why="variance")
            data = exp.task.train
            for batch in (16, len(data)):
                x, y = data.x[:, :batch], data.y[:, :batch]
                exact = execute(probe_plan(rule, exp.ports, exp.learnable, x, y, known,
                                           design_probes(None, exp.ports, known, probe_modes(rule)),
                                           ReadingAccuracy.exact(), np.random.default_rng(0)), fz, exp.ports).gradient
                norm = np.linalg.norm(exact)
                plans = [("per-sample", "per-sample", 1)] + [("probe", f"probe x{r}", r) for r in args.repeats]
                baseline = None
                for plan, label, repeats in plans:
                    design = design_probes(settings.limits, exp.ports, known, probe_modes(rule),
                                           headroom=settings.headroom, repeats=repeats)
                    estimate, used = estimator(plan, rule, exp, fz, design, known, x, y)
                    derived = derived_variance(estimate, used, sigma)
                    measured = measured_variance(estimate, sigma, args.trials, seed=batch)
                    baseline = derived.sum() if baseline is None else baseline
                    print(f"{case:<8} {rule_name:<8} {batch:>5} {label:<16} {used:>8} "
                          f"{np.sqrt(derived.sum()) / norm:>9.3g} {np.sqrt(measured.sum()) / norm:>9.3g} "
                          f"{baseline / derived.sum():>26.3g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
