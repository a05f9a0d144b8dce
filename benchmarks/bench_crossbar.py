"""On-demand benchmark of training the virtual crossbar (examples/virtual-crossbar.toml: 8 x 8
memristive crosspoints on an emulated 707B) through the real drivers: relay operations per epoch
against the fewest the wiring allows, and what else an epoch costs. Nothing here asserts a time.

    PYTHONPATH=. python benchmarks/bench_crossbar.py [--epochs 3] [--batch 40 10] [--figures DIR]

Per epoch: the scans (phases measured), instrument exchanges, devices written, pulses, wall time,
and the relay operations: measured (the matrix driver's count of relays that changed), the
minimum the wiring allows for the devices written (the minimum-weight vertex cover of
hwlearn.crossbar.schedule, computed by the bench for every update), and two ways a bench could
route that the schedule avoids:

- one visit per device: the programming line moved onto the bus and back for every device
  written (2 relays each way), 4 per device;
- every port off for programming: each port unit's channel opened before an update and closed
  after it (2 per port line), then 4 per device (the line onto the bus and a ground return onto
  the other line, both back): the V/float scheme of a bench whose ports cannot hold their lines.

The phases need no relay operation at all: every port line keeps its unit in the measure routing
(docs/crossbar.md, "Relay budget"). With ``--figures DIR`` the first run's curves (loss, relay
operations and pulses per step) and a characterisation of eight devices (measured against fitted
curves) are drawn into DIR, as docs/crossbar.md shows them. ``--recovery`` characterises eight
devices of the virtual crossbar with ideal lines and with the example's 1 ohm segments and prints
each fitted parameter against the emulated device's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from drivers.bench import open_bench  # noqa: E402
from hwlearn.app.characterise import characterise, write_outputs  # noqa: E402
from hwlearn.app.sessions import bench_experiment, bench_substrate  # noqa: E402
from hwlearn.config import load_experiment  # noqa: E402
from hwlearn.config.bench import load_bench_file, validate_bench  # noqa: E402
from hwlearn.config.schema import load_toml  # noqa: E402
from hwlearn.runstore import RunReader  # noqa: E402
from hwlearn.training.session import train_in_folder  # noqa: E402
from simulator.virtual_bench import VirtualBench  # noqa: E402

BENCH = ROOT / "examples" / "virtual-crossbar.toml"
EXPERIMENT = ROOT / "examples" / "crossbar-teacher-omega.toml"


def train(batch: int, epochs: int, folder: Path) -> dict:
    config = load_experiment(EXPERIMENT)
    config["training"].update(batch_size=batch, epochs=epochs)
    started = time.perf_counter()
    with VirtualBench(load_bench_file(BENCH), twin=True) as vb:
        bench_config = vb.bench_config()
        experiment = bench_experiment(config, str(EXPERIMENT), bench_config)
        with open_bench(bench_config) as bench:
            opened = bench.round_trips.total
            substrate = bench_substrate(bench, experiment)
            train_in_folder(experiment, substrate, folder)
            exchanges = bench.round_trips.total - opened
            scans = bench.round_trips.calls.get("measure", 0)
            ports = sum(1 for w in bench.crossbar.lines.values() if w.unit_channel)
        hot = sum(1 for event in vb.emulators["matrix"].switch_log if event.hot)
    seconds = time.perf_counter() - started
    with RunReader(folder) as reader:
        steps = reader.steps()
        s = reader.scalars()
    epoch_of = dict(zip(steps.step.tolist(), steps.epoch.tolist()))

    def per_epoch(name: str) -> np.ndarray:
        step, value = s[name]
        out = np.zeros(epochs + 1)
        for k, v in zip(step.tolist(), value.tolist()):
            out[epoch_of[k]] += v
        return out
    return {"batch": batch, "steps_per_epoch": -(-40 // batch), "ports": ports, "hot": hot, "seconds": seconds,
            "scans": scans, "exchanges": exchanges, "relays": per_epoch("relay_operations"),
            "minimum": per_epoch("relay_operations_minimum"), "writes": per_epoch("writes"),
            "pulses": per_epoch("pulses"), "loss": s["train_loss"][1]}


def report(runs: list[dict], epochs: int) -> None:
    print("## relay operations per epoch (virtual 8 x 8 crossbar, Omega, probe plan; epoch 0 is the initial "
          "programming, after the 16 closures that connect the ports when the bench opens)")
    print(f"{'batch':>5} {'epoch':>5} {'written':>8} {'pulses':>7} {'relays':>7} {'minimum':>8} {'ratio':>6} "
          f"{'per-device':>11} {'ports-off':>10}")
    for run in runs:
        updates = np.r_[1, np.full(epochs, run["steps_per_epoch"])]
        for epoch in range(epochs + 1):
            written = run["writes"][epoch]
            measured = run["relays"][epoch] - (16 if epoch == 0 else 0)
            minimum = run["minimum"][epoch]
            per_device = 4 * written
            ports_off = 2 * 2 * run["ports"] * updates[epoch] + 4 * written
            ratio = measured / minimum if minimum else float("nan")
            print(f"{run['batch']:>5} {epoch:>5} {written:>8.0f} {run['pulses'][epoch]:>7.0f} {measured:>7.0f} "
                  f"{minimum:>8.0f} {ratio:>6.2f} {per_device:>11.0f} {ports_off:>10.0f}")
    print("\n## what an epoch costs besides")
    print(f"{'batch':>5} {'steps/epoch':>11} {'scans':>6} {'exchanges':>10} {'s total':>8} {'hot switches':>13} "
          f"{'loss first':>11} {'loss last':>10}")
    for run in runs:
        print(f"{run['batch']:>5} {run['steps_per_epoch']:>11} {run['scans']:>6} {run['exchanges']:>10} "
              f"{run['seconds']:>8.1f} {run['hot']:>13} {run['loss'][0]:>11.3e} {run['loss'][-1]:>10.3e}")


def figures(run_folder: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    with RunReader(run_folder) as reader:
        s = reader.scalars()
        _, volts = reader.arrays("pulse_volts")
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.0))
    for name, style in (("train_loss", "o-"), ("test_loss", "s--")):
        step, value = s[name]
        axes[0].semilogy(step, value, style, ms=3, label=name.replace("_", " "))
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss (V$^2$)")
    axes[0].legend(fontsize=8)
    axes[0].set_title("training through the drivers", fontsize=9)
    step, value = s["relay_operations"]
    minimum = s["relay_operations_minimum"][1]
    axes[1].bar(step - 0.2, value, width=0.4, label="measured")
    axes[1].bar(step + 0.2, minimum, width=0.4, label="fewest the wiring allows")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("relay operations")
    axes[1].legend(fontsize=8)
    axes[1].set_title("relay operations per step (step 0: + 16 at open)", fontsize=9)
    amplitudes = volts[np.isfinite(volts)]
    axes[2].hist(amplitudes, bins=40)
    axes[2].set_xlabel("pulse amplitude (device volts)")
    axes[2].set_ylabel("pulses")
    axes[2].set_title(f"{amplitudes.size} pulses, every one logged", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=110)
    plt.close(fig)
    with VirtualBench(load_bench_file(BENCH), twin=True) as vb:
        with open_bench(vb.bench_config()) as bench:
            result = characterise(bench, list(bench.crossbar.tunable[:8]), 1.5, 60)
    write_outputs(result, out)
    print(result.table())
    print(f"figures: {out / 'training.png'}, {result.figure_path}")


KEYS = ("g_min", "g_max", "pulses", "nu_set", "nu_reset", "c2c")


def recovery(wire_ohms: float, seed: int, folder: Path) -> None:
    text = BENCH.read_text().replace("wire_ohms = 1.0", f"wire_ohms = {wire_ohms}")
    text = text.replace("seed = 7", f"seed = {seed}")
    path = folder / f"crossbar-{wire_ohms}-{seed}.toml"
    path.write_text(text)
    config = validate_bench(load_toml(path), str(path), path.parent)
    with VirtualBench(config, twin=True) as vb:
        with open_bench(vb.bench_config()) as bench:
            result = characterise(bench, list(bench.crossbar.tunable[:8]), 1.5, 60)
        truth = vb.circuit.parameters()
    print(f"\n## recovered / true - 1, lines of {wire_ohms:g} ohm a segment, devices seed {seed} (60 SET and 60 "
          "RESET pulses of 1.5 V, 1 ms: the reference pulse)")
    print(f"{'device':<9} " + " ".join(f"{k:>9}" for k in KEYS))
    errors = {k: [] for k in KEYS}
    good = []
    for name, fit in result.fits.items():
        if fit.parameters is None:
            print(f"{name:<9} stuck (true: {truth[name].stuck or 'not stuck'})")
            continue
        good.append(name)
        row = [getattr(fit.parameters, k) / getattr(truth[name], k) - 1 for k in KEYS]
        for k, e in zip(KEYS, row):
            errors[k].append(e)
        print(f"{name:<9} " + " ".join(f"{100 * e:>8.1f}%" for e in row))
    fitted = [result.fits[n].parameters for n in good]
    row = [np.median([getattr(p, k) for p in fitted]) / np.median([getattr(truth[n], k) for n in good]) - 1
           for k in KEYS]
    print(f"{'median':<9} " + " ".join(f"{100 * e:>8.1f}%" for e in row))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, nargs="+", default=[40, 10])
    parser.add_argument("--figures", type=Path, metavar="DIR", help="draw docs/crossbar.md's figures into DIR")
    parser.add_argument("--recovery", action="store_true", help="fitted against emulated device parameters")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.recovery:
            for wire_ohms in (0.0, 1.0):
                recovery(wire_ohms, 11, Path(tmp))
        runs = [train(batch, args.epochs, Path(tmp) / f"batch{batch}") for batch in args.batch]
        report(runs, args.epochs)
        if args.figures is not None:
            figures(Path(tmp) / f"batch{args.batch[0]}", args.figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
