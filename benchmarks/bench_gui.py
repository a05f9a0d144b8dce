"""GUI soak and E-stop latency, offscreen (run on demand; nothing here asserts a time).

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui.py [--seconds 120] [--rows 71] [--estops 5]

1. Soak: a teacher run on a rows x rows lattice (71 x 71: 9 940 edges) trained in the window,
   with arrays recorded at EVERY step (record.array_every = 1) so the map is redrawn with new
   arrays as often as the run makes them: with the default array_every = 10 that is ten times the
   map load, so the default 2 minutes carry the map redraws of 20 minutes of an ordinary run
   (``--seconds 300`` runs the full 5 minutes). Reported: event-loop latency percentiles (a 10 ms
   probe timer's lateness), redraws and map draws per second, resident memory growth after a
   warm-up, and the training rate in the window against the same run headless (the GUI's cost).
   Baseline in the same run: the event-loop latency of the idle window.
2. E-stop latency on the virtual bench (the example bench as a twin, real drivers over loopback):
   a bench run is started in the window, the E-STOP button clicked mid-run, and the time from
   the click to every emulated instrument at 0 V, off and safe (``VirtualBench.is_safe``, polled
   every 0.2 ms in another thread) is measured, ``--estops`` times.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6 import QtCore, QtTest  # noqa: E402

from gui.app import application  # noqa: E402
from gui.window import MainWindow  # noqa: E402
from hwlearn.app.launch import simulated_substrate  # noqa: E402
from hwlearn.app.sessions import Launcher  # noqa: E402
from hwlearn.config import load_experiment  # noqa: E402
from hwlearn.experiment import build_experiment  # noqa: E402
from hwlearn.training.session import TrainingSession  # noqa: E402
from simulator.virtual_bench import VirtualBench  # noqa: E402
from tests.bench_helpers import example_config  # noqa: E402
from tests.gui_helpers import experiment_file, lattice_teacher_file, run_loop  # noqa: E402

PROBE_MS = 10


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def lattice_experiment(folder: Path, rows: int, epochs: int) -> Path:
    return lattice_teacher_file(folder, "soak-lattice", rows=rows, test_samples=16, rest=f"""[rule]
name = "omega"
[training]
learning_rate = 3000.0
batch_size = 8
epochs = {epochs}
[record]
array_every = 1
checkpoint_every = 200
""")


class LatencyProbe:
    """A timer that should fire every PROBE_MS; how late each firing is, in ms, is the event
    loop's latency (the time a click would wait)."""

    def __init__(self):
        self.clock = QtCore.QElapsedTimer()
        self.timer = QtCore.QTimer()
        self.timer.setTimerType(QtCore.Qt.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)
        self.late: list[float] = []
        self._last = None

    def start(self):
        self.clock.start()
        self._last = self.clock.nsecsElapsed()
        self.timer.start()

    def _tick(self):
        now = self.clock.nsecsElapsed()
        self.late.append(max((now - self._last) / 1e6 - PROBE_MS, 0.0))
        self._last = now

    def stop(self) -> np.ndarray:
        self.timer.stop()
        return np.array(self.late)


def percentiles(values: np.ndarray) -> str:
    if values.size == 0:
        return "no samples"
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return f"p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   p99 {p99:6.1f} ms   max {values.max():6.1f} ms"


def headless_rate(experiment: Path, run_dir: Path, steps: int) -> float:
    """Steps per second of the same run without a window (the CLI's path), over ``steps``."""
    config = load_experiment(experiment)
    exp = build_experiment(config, str(experiment))
    session = TrainingSession(exp, simulated_substrate(exp), run_dir)
    times = []
    session.add_view(lambda doc: times.append(time.monotonic()) if type(doc).__name__ == "StepRecord" else None)
    session.start()
    while len(times) < steps and session.engine.state not in ("done", "failed"):
        time.sleep(0.05)
    session.engine.stop()
    session.engine.join()
    return (len(times) - 2) / (times[-1] - times[1])


def soak(app, seconds: float, rows: int, folder: Path) -> None:
    experiment = lattice_experiment(folder, rows, epochs=100_000)
    window = MainWindow(Launcher(folder / "runs"))
    window.resize(1400, 900)
    window.show()
    probe = LatencyProbe()
    probe.start()
    run_loop(app, 5.0)
    idle = probe.stop()

    window.prepare(experiment)
    network_edges = 2 * rows * rows - 2 * rows
    window.start_run()
    run_loop(app, 600, until=lambda: window.map.shown_step is not None)
    warmup = min(15.0, seconds / 8)
    run_loop(app, warmup)
    rss0, steps0, redraws0, maps0 = rss_mb(), window.state.step, window.redraws, window.map.draws
    probe = LatencyProbe()
    probe.start()
    started = time.monotonic()
    rss_samples = []
    while time.monotonic() - started < seconds:
        run_loop(app, 1.0)
        rss_samples.append(rss_mb())
    late = probe.stop()
    elapsed = time.monotonic() - started
    steps = window.state.step - steps0
    redraws, maps = window.redraws - redraws0, window.map.draws - maps0
    rss1 = rss_mb()
    window.stop()
    run_loop(app, 120, until=lambda: window.launched is not None and window.launched.released)
    gui_rate = steps / elapsed
    headless = headless_rate(experiment, folder / "headless", steps=min(max(steps // 4, 40), 400))
    window.shutdown()
    window.close()
    window.deleteLater()
    app.processEvents()

    print(f"soak: {rows}x{rows} lattice ({network_edges} edges), arrays at every step, {elapsed:.0f} s measured "
          f"after {warmup:.0f} s warm-up")
    print(f"  event-loop latency, idle window (baseline): {percentiles(idle)}")
    print(f"  event-loop latency, during the run:          {percentiles(late)}")
    print(f"  ratio of p99s (run / idle): {np.percentile(late, 99) / max(np.percentile(idle, 99), 0.1):.1f}")
    print(f"  redraws: {redraws / elapsed:.1f} per s (frames that drew anything); map redrawn {maps / elapsed:.1f} "
          f"per s with new arrays; {steps} steps ({gui_rate:.1f} per s)")
    print(f"  training rate in the window / headless: {gui_rate:.1f} / {headless:.1f} steps per s = "
          f"{gui_rate / headless:.2f}")
    print(f"  resident memory: {rss0:.0f} MB after warm-up, {rss1:.0f} MB at the end (growth {rss1 - rss0:+.1f} MB; "
          f"max {max(rss_samples):.0f} MB)")


def estop_latency(app, folder: Path, repeats: int) -> None:
    latencies, engine_ms = [], []
    with VirtualBench(example_config(), twin=True) as vb:
        window = MainWindow(Launcher(folder / "bench-runs"))
        window.show()
        experiment = experiment_file(folder, "bench-teacher-omega", training__epochs=500)
        window.set_prepared(window.launcher.prepare(experiment, vb.bench_config()))
        for i in range(repeats):
            window.start_run()
            target = 2 + i
            run_loop(app, 120, until=lambda t=target: window.launched is not None and (window.state.step or 0) >= t)
            safe_at = []

            def watch(found):
                while not all(vb.is_safe().values()):
                    time.sleep(0.0002)
                found.append(time.monotonic())
            clicked = time.monotonic()
            watcher = threading.Thread(target=watch, args=(safe_at,))
            watcher.start()
            QtTest.QTest.mouseClick(window.controls.estop, QtCore.Qt.LeftButton)
            watcher.join(60)
            latencies.append(1000 * (safe_at[0] - clicked))
            run_loop(app, 120, until=lambda: window.launched.released and window.estops[-1]["safe"] is not None)
            record = window.estops[-1]
            engine_ms.append(1000 * (record["safe"] - record["pressed"]))
        window.shutdown()
        window.close()
        window.deleteLater()
        app.processEvents()
    lat = np.array(latencies)
    print(f"E-stop on the virtual bench ({repeats} presses mid-run): click to every emulated instrument safe: "
          f"median {np.median(lat):.1f} ms, max {lat.max():.1f} ms; the engine's estop() returned after "
          f"median {np.median(engine_ms):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="soak duration after warm-up")
    parser.add_argument("--rows", type=int, default=71, help="lattice rows and columns (71: 9 940 edges)")
    parser.add_argument("--estops", type=int, default=5, help="E-stop presses to time")
    args = parser.parse_args()
    app = application()
    with tempfile.TemporaryDirectory(prefix="hwlearn-gui-bench-") as tmp:
        folder = Path(tmp)
        estop_latency(app, folder, args.estops)
        soak(app, args.seconds, args.rows, folder)


if __name__ == "__main__":
    main()
