"""Screenshots of every view of the GUI, from real runs, for docs/gui.md.

    QT_QPA_PLATFORM=offscreen python docs/gui/make_screenshots.py [OUT_DIR]   (default docs/gui)

Runs, in a temporary folder: Iris on a crossbar (examples/iris-omega.toml) and a teacher task on
a 12 x 12 lattice, both started in the window; a bench run on the virtual bench (its dry run on
the simulated twin, then the run on the emulated instruments); a run written by `hwlearn train`
in another process and killed, for the browser's crashed status. Each view is grabbed with
QWidget.grab() once its run has ended (or, for the live views, mid-run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gui.app import application  # noqa: E402
from gui.window import MainWindow  # noqa: E402
from hwlearn.app.sessions import Launcher  # noqa: E402
from hwlearn.runstore import NotARunError, RunReader  # noqa: E402
from simulator.virtual_bench import VirtualBench  # noqa: E402
from tests.bench_helpers import example_config  # noqa: E402
from tests.gui_helpers import experiment_file, lattice_teacher_file, run_loop  # noqa: E402

SIZE = (1500, 950)


def ended(window: MainWindow):
    return lambda: window.state.ended and window.launched is not None and window.launched.released \
        and bool(window.last_report)


def grab(app, window: MainWindow, out: Path, name: str) -> None:
    run_loop(app, 0.4)  # a few frames of the redraw timer
    window.grab().save(str(out / name))
    print(f"wrote {out / name}")


def lattice_experiment(folder: Path) -> Path:
    return lattice_teacher_file(folder, "lattice-teacher", rows=12, test_samples=32, rest="""[rule]
name = "ep"
beta = 0.01
[training]
learning_rate = 1e8
batch_size = 16
epochs = 60
[mask]
kind = "random"
frozen_fraction = 0.1
[record]
array_every = 4
""")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "gui"
    out.mkdir(parents=True, exist_ok=True)
    app = application()
    with tempfile.TemporaryDirectory(prefix="hwlearn-screenshots-") as tmp:
        folder = Path(tmp)
        runs = folder / "runs"
        window = MainWindow(Launcher(runs))
        window.resize(*SIZE)
        window.show()

        # 1. Iris on a crossbar: prepared, then the run view at its end.
        window.prepare(ROOT / "examples" / "iris-omega.toml")
        grab(app, window, out, "prepared.png")
        window.start_run()
        run_loop(app, 300, ended(window))
        grab(app, window, out, "run-iris-crossbar.png")
        window.map.choice.setCurrentIndex([q.key for q in window.map.quantities].index("v_free"))
        window.map.hover_at(*window.map.geometry.mid[window.map.geometry.names.index("Rx0_3_1")])
        grab(app, window, out, "map-iris-voltage.png")

        # 2. A lattice trained by Equilibrium Propagation: mid-run (live), then the update map.
        window.prepare(lattice_experiment(folder))
        window.start_run()
        run_loop(app, 300, lambda: (window.state.step or 0) >= 120)
        k = window.map.geometry.names.index("Rh5_5")
        window.map.hover_at(*window.map.geometry.mid[k])
        grab(app, window, out, "run-lattice-live.png")
        run_loop(app, 300, ended(window))
        window.map.choice.setCurrentIndex([q.key for q in window.map.quantities].index("update"))
        window.map.hover_at(*window.map.geometry.mid[k])
        grab(app, window, out, "map-lattice-update.png")
        window.map.slider.setValue(3)
        run_loop(app, 10, lambda: window.map.shown_step == window.state.array_steps[3])
        grab(app, window, out, "map-lattice-scrubbed.png")
        window.map.go_live()

        # 3. A bench: the dry run on the simulated twin, then the run on the emulated instruments.
        with VirtualBench(example_config(), twin=True) as vb:
            experiment = experiment_file(folder, "bench-teacher-omega", record__array_every=2)
            window.set_prepared(window.launcher.prepare(experiment, vb.bench_config()))
            window.start_run(dry_run=True)
            run_loop(app, 300, ended(window))
            grab(app, window, out, "bench-dry-run.png")
            window.start_run()
            run_loop(app, 300, lambda: (window.state.step or 0) >= 20 and bool(window.state.instruments))
            window.tabs.setCurrentWidget(window.instruments)
            grab(app, window, out, "instruments.png")
            window.controls.estop.click()
            run_loop(app, 300, ended(window))
            run_loop(app, 10, lambda: window.estops and window.estops[-1].get("shown"))
            window.tabs.setCurrentWidget(window.instruments)
            grab(app, window, out, "instruments-after-estop.png")
            window.tabs.setCurrentWidget(window.events)
            grab(app, window, out, "events.png")

        # 4. The browser: a run killed mid-way shows as crashed; two runs overlaid.
        killed = runs / "killed-iris"
        proc = subprocess.Popen([sys.executable, "-m", "hwlearn", "train", str(ROOT / "examples" / "iris-omega.toml"),
                                 "--out", str(killed), "--quiet"], cwd=ROOT, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with RunReader(killed) as reader:
                    last = reader.last_step()
                if last is not None and last.step >= 200:
                    break
            except NotARunError:  # not created yet
                pass
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        browser = window.browser
        window.tabs.setCurrentWidget(browser)
        browser.refresh()
        listed = browser.listings
        run_loop(app, 60, lambda: browser.listings > listed)
        iris = [r["run_dir"] for r in browser.rows if "iris" in r["run_dir"]]
        browser.select(iris)
        browser.overlay_choice.setCurrentText("test_loss")
        browser.overlay_selected()
        run_loop(app, 60, lambda: len(browser.overlaid) == len(iris))
        grab(app, window, out, "browser.png")

        window.attach(killed)
        run_loop(app, 60, lambda: window.state.state == "crashed" and window.map.shown_step is not None)
        grab(app, window, out, "run-crashed.png")

        window.shutdown()
        window.close()
        window.deleteLater()
        app.processEvents()


if __name__ == "__main__":
    main()
