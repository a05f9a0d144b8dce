"""On-demand benchmark of training on the virtual bench, through the real drivers (pyvisa-py
sockets, pyserial) to emulators on loopback. Nothing here asserts a time.

    PYTHONPATH=. python benchmarks/bench_bench.py [--part samples epochs noise] [--seeds N] ...

Three parts:

- samples: instrument round trips per sample of each rule's per-sample plan against the minimum
  the wiring allows (hwlearn.plans.minimum_exchanges_per_sample), and samples per second;
- epochs: one training epoch (every step's measurement and update, then the evaluation of the
  train and test sets, reported apart) with the probe plan against the per-sample plan, for the
  example bench's teacher task and for Iris on the Iris bench (9 inputs, 3 outputs), at full
  batch and at batch 16, with 0 and 1 ms per instrument reply: source states measured (phases),
  scans, exchanges and wall time per epoch, and the ratios;
- noise: the final train loss and test accuracy of both plans with the virtual bench's read noise
  on every reading, over several seeds (experiment seeds and the noise's seed).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from drivers.bench import Bench  # noqa: E402
from hwlearn.app.sessions import bench_substrate, probe_settings  # noqa: E402
from hwlearn.config import load_experiment  # noqa: E402
from hwlearn.config.bench import load_bench_file  # noqa: E402
from hwlearn.experiment import build_experiment  # noqa: E402
from hwlearn.plans import minimum_exchanges_per_sample  # noqa: E402
from hwlearn.ports import Ports  # noqa: E402
from hwlearn.rules import CoupledLearning, Omega, SymmetricTwoPhase, TwoPhase  # noqa: E402
from hwlearn.rules.probe_design import DCV_34970A, ReadingAccuracy  # noqa: E402
from hwlearn.training.rig_substrate import RigSubstrate  # noqa: E402
from hwlearn.training.session import settings_from  # noqa: E402
from hwlearn.training.trainer import Trainer  # noqa: E402
from hwlearn.training.updates import descend  # noqa: E402
from simulator.virtual_bench import VirtualBench  # noqa: E402

RULES = {"omega": Omega(1e-3), "ep": TwoPhase(0.01), "ep_symmetric": SymmetricTwoPhase(0.01),
         "coupled": CoupledLearning(0.1)}
TASKS = {"teacher": ("examples/virtual-bench.toml", "examples/bench-teacher-omega.toml"),
         "iris": ("examples/virtual-bench-iris.toml", "examples/bench-iris-omega.toml")}
PLANS = ("per-sample", "probe")


# ====================================================================== per sample
def measure_samples(bench: Bench, rule_name: str, samples: int, seed: int) -> dict:
    rule = RULES[rule_name]
    ports = Ports.from_roles(bench.network, gain=0.4)
    learnable = bench.capabilities.learnable
    substrate = RigSubstrate(bench, ports, learnable, rule)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((ports.n_inputs, samples))
    y = 0.01 * rng.standard_normal((ports.n_outputs, samples))
    substrate.gradient(rule, x[:, :1], y[:, :1])  # units switched on: not part of the steady state
    bench.round_trips.reset()
    started = time.perf_counter()
    gradient, _ = substrate.gradient(rule, x, y)
    substrate.program(substrate.resistances()[learnable] * np.exp(-0.2 * np.sign(gradient)))
    elapsed = time.perf_counter() - started
    trips = bench.round_trips.total
    minimum = minimum_exchanges_per_sample(rule, ports.n_inputs, ports.n_outputs, samples)
    return {"rule": rule_name, "samples_per_s": samples / elapsed, "trips_per_sample": trips / samples,
            "minimum_per_sample": minimum, "ratio": trips / samples / minimum}


def part_samples(args) -> None:
    config = load_bench_file(ROOT / TASKS["teacher"][0])
    print(f"\n## per-sample plans: bench {config.name!r}, {len(config.inputs)} input units, {len(config.outputs)} "
          f"output units, batch of {args.samples} samples and one update")
    print(f"{'latency':>8} {'rule':<13} {'samples/s':>10} {'trips/sample':>13} {'minimum':>8} {'ratio':>6}")
    for latency in args.latency_ms:
        with VirtualBench(config, twin=True, latency_s=latency / 1000) as twin:
            with Bench.open(twin.bench_config()) as bench:
                for name in RULES:
                    row = measure_samples(bench, name, args.samples, seed=1)
                    print(f"{latency:6.1f}ms {name:<13} {row['samples_per_s']:10.1f} {row['trips_per_sample']:13.2f} "
                          f"{row['minimum_per_sample']:8.2f} {row['ratio']:6.2f}")


# ====================================================================== epochs
def _experiment(task: str, plan: str, batch: int | None, seed: int = 0, epochs: int | None = None):
    bench_file, experiment_file = (ROOT / p for p in TASKS[task])
    bench_config = load_bench_file(bench_file)
    config = load_experiment(experiment_file, seed=seed)
    config["plan"] = plan
    exp = build_experiment(config, str(experiment_file), network=bench_config.network)
    config["training"]["batch_size"] = batch or len(exp.task.train)
    if epochs is not None:
        config["training"]["epochs"] = epochs
    return bench_config, config, exp


def _counts(bench: Bench, substrate: RigSubstrate) -> tuple[int, int]:
    """(scans, exchanges) so far; with probe.repeats = 1 a scan is a source state measured."""
    return substrate.engine.counts["measure"], bench.round_trips.total


def measure_epoch(task: str, plan: str, batch: int | None, latency_ms: float) -> dict:
    """One epoch's steps (measure, update) and then its evaluation, after a warm-up step."""
    bench_config, config, exp = _experiment(task, plan, batch)
    batch = config["training"]["batch_size"]
    data = exp.task.train
    rule, lr, update = exp.rule, config["training"]["learning_rate"], config["training"]["update"]
    with VirtualBench(bench_config, twin=True, latency_s=latency_ms / 1000) as twin:
        with Bench.open(twin.bench_config()) as bench:
            substrate = bench_substrate(bench, exp, probe_settings(exp, bench_config, plan=plan, why="benchmark"))
            substrate.start()
            order = np.random.default_rng(0).permutation(len(data))

            def step(rows):
                gradient, _ = substrate.gradient(rule, data.x[:, rows], data.y[:, rows])
                known = substrate.resistances()[substrate.learnable]
                substrate.program(descend(known, gradient, lr, update))

            step(order[:batch])  # units switched on, functions configured: not the steady state
            before, started = _counts(bench, substrate), time.perf_counter()
            for start in range(0, len(data), batch):
                step(order[start:start + batch])
            steps_s, after = time.perf_counter() - started, _counts(bench, substrate)
            started = time.perf_counter()
            substrate.outputs(data.x)
            substrate.outputs(exp.task.test.x)
            eval_s, evaluated = time.perf_counter() - started, _counts(bench, substrate)
    return {"task": task, "plan": plan, "batch": batch, "latency_ms": latency_ms,
            "steps": -(-len(data) // batch), "scans": after[0] - before[0], "exchanges": after[1] - before[1],
            "seconds": steps_s, "eval_scans": evaluated[0] - after[0], "eval_exchanges": evaluated[1] - after[1],
            "eval_seconds": eval_s}


def part_epochs(args) -> None:
    print("\n## one epoch: the probe plan against the per-sample plan (steps, then the evaluation of train and "
          "test sets)")
    header = (f"{'task':<8} {'batch':>5} {'reply':>6} {'plan':<10} {'steps':>5} {'scans':>6} {'exchanges':>9} "
              f"{'s/epoch':>8} {'eval scans':>10} {'eval exch':>9} {'eval s':>7}")
    print(header)
    ratios = []
    for task in args.tasks:
        for batch in (None, 16):
            for latency in args.latency_ms:
                rows = {plan: measure_epoch(task, plan, batch, latency) for plan in PLANS}
                for plan, r in rows.items():
                    print(f"{task:<8} {r['batch']:>5} {latency:4.1f}ms {plan:<10} {r['steps']:>5} {r['scans']:>6} "
                          f"{r['exchanges']:>9} {r['seconds']:>8.3f} {r['eval_scans']:>10} {r['eval_exchanges']:>9} "
                          f"{r['eval_seconds']:>7.3f}")
                a, b = rows["per-sample"], rows["probe"]
                ratios.append((task, a["batch"], latency, a["scans"] / b["scans"], a["exchanges"] / b["exchanges"],
                               a["seconds"] / b["seconds"], a["eval_exchanges"] / max(b["eval_exchanges"], 1)))
    print("\nper-sample / probe, per epoch:")
    print(f"{'task':<8} {'batch':>5} {'reply':>6} {'scans':>7} {'exchanges':>9} {'time':>7} {'eval exch':>9}")
    for task, batch, latency, scans, trips, seconds, evals in ratios:
        print(f"{task:<8} {batch:>5} {latency:4.1f}ms {scans:7.1f} {trips:9.1f} {seconds:7.1f} {evals:9.1f}")


# ====================================================================== noise
def train_noisy(task: str, plan: str, seed: int, noise_volts: float, epochs: int) -> dict:
    bench_config, config, exp = _experiment(task, plan, batch=10 if task == "teacher" else 16, seed=seed,
                                            epochs=epochs)
    # The linearity tolerance covers the read noise the virtual bench adds (a real 34970A's
    # noise is inside its specification).
    settings = dataclasses.replace(probe_settings(exp, bench_config, plan=plan, why="benchmark"),
                                   accuracy=ReadingAccuracy(DCV_34970A, noise_volts=noise_volts))
    started = time.perf_counter()
    with VirtualBench(bench_config, twin=True, read_noise_volts=noise_volts, seed=seed) as twin:
        with Bench.open(twin.bench_config()) as bench:
            substrate = bench_substrate(bench, exp, settings)
            result = Trainer(substrate, exp.task, exp.rule, settings_from(config), exp.rngs).run()
            fallbacks = substrate.linearity["failed"]
    return {"loss": result.metrics["train_loss"], "accuracy": result.metrics.get("test_accuracy", np.nan),
            "seconds": time.perf_counter() - started, "failed_checks": fallbacks}


def part_noise(args) -> None:
    print(f"\n## final loss with {args.noise * 1e3:g} mV read noise on every reading, seeds 0..{args.seeds - 1} "
          f"(teacher: {args.noise_epochs['teacher']} epochs of batch 10; iris: {args.noise_epochs['iris']} epochs "
          "of batch 16)")
    print(f"{'task':<8} {'plan':<10} {'train loss (mean +- sd)':>26} {'test accuracy':>15} {'failed checks':>14} "
          f"{'s/run':>7}")
    for task in args.tasks:
        for plan in PLANS:
            runs = [train_noisy(task, plan, seed, args.noise, args.noise_epochs[task]) for seed in range(args.seeds)]
            loss = np.array([r["loss"] for r in runs])
            acc = np.array([r["accuracy"] for r in runs])
            accuracy = "-" if np.all(np.isnan(acc)) else f"{acc.mean():.3f} +- {acc.std():.3f}"
            print(f"{task:<8} {plan:<10} {loss.mean():>12.4e} +- {loss.std():.2e} {accuracy:>15} "
                  f"{sum(r['failed_checks'] for r in runs):>14} {np.mean([r['seconds'] for r in runs]):>7.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", nargs="+", default=["samples", "epochs", "noise"],
                        choices=["samples", "epochs", "noise"])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--samples", type=int, default=40, help="samples per batch (one update), part samples")
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 1.0],
                        help="emulated reply latency of every instrument")
    parser.add_argument("--noise", type=float, default=1e-3, help="read noise (volts), part noise")
    parser.add_argument("--seeds", type=int, default=3, help="seeds, part noise")
    parser.add_argument("--teacher-epochs", type=int, default=15)
    parser.add_argument("--iris-epochs", type=int, default=20)
    args = parser.parse_args(argv)
    args.noise_epochs = {"teacher": args.teacher_epochs, "iris": args.iris_epochs}
    for part in args.part:
        {"samples": part_samples, "epochs": part_epochs, "noise": part_noise}[part](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
