"""On-demand benchmark of sweeps: points per minute on the local pool with 1 and 2 workers and
through a Dask scheduler with 2 single-thread workers on this machine, and the overhead per point
of the Dask path against the local pool with as many workers.

    PYTHONPATH=. python benchmarks/bench_sweep.py [--points N] [--epochs E] [--repeats R]

Each configuration runs the same sweep (Iris, one sample per step, N points) into a fresh folder
through run_sweep, the code `hwlearn sweep` runs; the executor is started before the clock and
the Dask cluster (`dask scheduler`, `dask worker --nthreads 1` as separate processes on loopback)
before everything; "start s" is the time to connect and have every worker import the trainer,
which a sweep pays once, not per point. Overhead per point = wall time x workers / points - mean training time of a
point (from the index: the time the trainings themselves report), i.e. the slot time a point costs
beyond its own training: creating its run folder, moving the task and result, scheduling. The
configurations are interleaved over the repeats so a load change on the machine hits all of them;
the best repeat of each is reported. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hwlearn.app.executors import LocalPool  # noqa: E402
from hwlearn.app.sweep import SweepIndex, expand, load_sweep, read_index, run_sweep  # noqa: E402

EXPERIMENT = """
name = "bench-sweep"
[task]
name = "iris"
[training]
batch_size = 1
epochs = {epochs}
[record]
checkpoint_every = 100
array_every = 50
"""


def write_sweep(folder: Path, points: int, epochs: int) -> Path:
    (folder / "experiment.toml").write_text(EXPERIMENT.format(epochs=epochs))
    rates = ", ".join(f"{10.0 + i:.1f}" for i in range(points))
    path = folder / "sweep.toml"
    path.write_text(f'experiment = "experiment.toml"\nretries = 0\n[grid]\n"training.learning_rate" = [{rates}]\n')
    return path


def load_the_trainer(*, stop) -> int:
    """A task that imports what a point needs, so that start-up is not counted per point."""
    import hwlearn.app.sweep.task  # noqa: F401

    return os.getpid()


def start_up(make) -> tuple[object, float]:
    """An executor with every worker warm (modules imported), and how long that took."""
    started = time.perf_counter()
    executor = make()
    pids = {executor.submit(load_the_trainer).result() for _ in range(1)}
    while len(pids) < executor.slots:  # each idle worker takes one; repeat until all have run one
        pids |= {f.result() for f in [executor.submit(load_the_trainer) for _ in range(executor.slots)]}
    return executor, time.perf_counter() - started


def run_once(sweep: Path, out: Path, executor, workers: int) -> dict:
    spec = load_sweep(sweep)
    points = expand(spec)
    with SweepIndex.create(out, spec, points, executor.description) as index:
        started = time.perf_counter()
        counts = run_sweep(index, executor)
        wall = time.perf_counter() - started
    assert counts.done == len(points), counts
    training = statistics.fmean(a["elapsed"] for a in read_index(out).attempts)
    return {"wall_s": wall, "points_per_min": 60 * len(points) / wall, "training_s": training,
            "overhead_s": wall * workers / len(points) - training}


class DaskCluster:
    """`dask scheduler` and `dask worker` processes on loopback, each in its own session."""

    def __init__(self, workers: int, folder: Path):
        import distributed

        file = folder / "scheduler.json"
        self.procs = [self._start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--scheduler-file", str(file)], folder / "scheduler.log")]
        deadline = time.monotonic() + 60
        while not file.exists() or not file.read_text().strip():
            if time.monotonic() > deadline or self.procs[0].poll() is not None:
                raise RuntimeError((folder / "scheduler.log").read_text())
            time.sleep(0.05)
        self.address = json.loads(file.read_text())["address"]
        for n in range(workers):
            self.procs.append(self._start(["worker", self.address, "--nthreads", "1", "--no-dashboard",
                                           "--host", "127.0.0.1"], folder / f"worker{n}.log"))
        with distributed.Client(self.address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=120)

    @staticmethod
    def _start(args: list[str], log: Path) -> subprocess.Popen:
        with open(log, "w") as stream:
            return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=stream, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=16, help="points per sweep (default 16)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per point, 105 steps each (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (default 3)")
    args = parser.parse_args(argv)
    print(f"# bench_sweep: {args.points} points x {args.epochs} epochs (Iris, batch 1), best of {args.repeats}")
    print(f"# {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f} at the start")
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        sweep = write_sweep(tmp, args.points, args.epochs)
        try:
            import distributed  # noqa: F401

            cluster = DaskCluster(2, tmp)
        except ImportError:
            cluster = None
            print("# dask not installed (pip install 'hwlearn[dask]'): the Dask rows are skipped")
        try:
            from hwlearn.app.executors.dask_cluster import DaskExecutor

            configs = [("local, 1 worker", lambda: LocalPool(1), 1), ("local, 2 workers", lambda: LocalPool(2), 2)]
            if cluster is not None:
                configs.append(("dask, 2 workers", lambda: DaskExecutor(cluster.address), 2))
            for repeat in range(args.repeats):
                for name, make, workers in configs:
                    executor, start_s = start_up(make)
                    with executor:
                        out = tmp / f"{name.replace(' ', '').replace(',', '-')}-{repeat}"
                        result = run_once(sweep, out, executor, workers)
                    results.setdefault(name, []).append({**result, "start_s": start_s})
        finally:
            if cluster is not None:
                cluster.close()
    best = {name: min(runs, key=lambda r: r["wall_s"]) for name, runs in results.items()}
    print(f"{'executor':<18} {'start s':>8} {'points/min':>10} {'wall s':>8} {'training s/point':>17} "
          f"{'overhead s/point':>17}")
    for name, r in best.items():
        print(f"{name:<18} {r['start_s']:>8.2f} {r['points_per_min']:>10.1f} {r['wall_s']:>8.2f} "
              f"{r['training_s']:>17.3f} {r['overhead_s']:>17.3f}")
    local, dask = best.get("local, 2 workers"), best.get("dask, 2 workers")
    if dask is not None:
        per_point_local = local["wall_s"] * 2 / args.points
        per_point_dask = dask["wall_s"] * 2 / args.points
        speedup = local["points_per_min"] / best["local, 1 worker"]["points_per_min"]
        print(f"speed-up of 2 local workers over 1: {speedup:.2f}x")
        print(f"Dask against the local pool (2 workers each): slot time per point {per_point_dask:.3f} s against "
              f"{per_point_local:.3f} s, {100 * (per_point_dask / per_point_local - 1):+.1f} %; overhead beyond "
              f"training {dask['overhead_s']:.3f} s against {local['overhead_s']:.3f} s per point")
    return 0


if __name__ == "__main__":
    sys.exit(main())
