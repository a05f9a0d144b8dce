"""On-demand benchmark of training on the virtual bench: samples per second and instrument
round trips per sample for each rule, against the minimum the wiring allows.

    PYTHONPATH=. python benchmarks/bench_bench.py [--samples N] [--latency-ms L ...]

The minimum per sample is hwlearn.plans.minimum_exchanges_per_sample: the inputs set whenever
they change, the outputs driven whenever their drive changes, one multiplexer scan per phase,
and one board write per update (spread over the batch). Everything runs through the real
drivers (pyvisa-py sockets, pyserial) to emulators on loopback; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from drivers.bench import Bench  # noqa: E402
from hwlearn.config.bench import load_bench_file  # noqa: E402
from hwlearn.plans import minimum_exchanges_per_sample  # noqa: E402
from hwlearn.ports import Ports  # noqa: E402
from hwlearn.rules import CoupledLearning, Omega, SymmetricTwoPhase, TwoPhase  # noqa: E402
from hwlearn.training.rig_substrate import RigSubstrate  # noqa: E402
from simulator.virtual_bench import VirtualBench  # noqa: E402

RULES = {"omega": Omega(1e-3), "ep": TwoPhase(0.01), "ep_symmetric": SymmetricTwoPhase(0.01),
         "coupled": CoupledLearning(0.1)}


def measure(bench: Bench, rule_name: str, samples: int, seed: int) -> dict:
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", default=str(ROOT / "examples" / "virtual-bench.toml"))
    parser.add_argument("--samples", type=int, default=40, help="samples per batch (one update)")
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 1.0],
                        help="emulated reply latency of every instrument")
    args = parser.parse_args(argv)
    config = load_bench_file(args.bench)
    print(f"bench {config.name!r}: {len(config.inputs)} input units, {len(config.outputs)} output units, "
          f"batch of {args.samples} samples and one update, through the real drivers")
    print(f"{'latency':>8} {'rule':<13} {'samples/s':>10} {'trips/sample':>13} {'minimum':>8} {'ratio':>6}")
    for latency in args.latency_ms:
        with VirtualBench(config, twin=True, latency_s=latency / 1000) as twin:
            with Bench.open(twin.bench_config()) as bench:
                for name in RULES:
                    row = measure(bench, name, args.samples, seed=1)
                    print(f"{latency:6.1f}ms {name:<13} {row['samples_per_s']:10.1f} {row['trips_per_sample']:13.2f} "
                          f"{row['minimum_per_sample']:8.2f} {row['ratio']:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
