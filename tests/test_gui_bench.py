"""The window on a bench: the virtual bench's emulated instruments behind the real drivers.
Dry run on the simulated twin, start, abort, E-stop, close during a run; after each, the run
folder and the emulators' own state (every source at 0 V and off, relays open, board safe)."""

import pytest
from PySide6 import QtCore, QtWidgets

from hwlearn.cli import main
from hwlearn.runstore import RunReader
from simulator.virtual_bench import VirtualBench
from tests.bench_helpers import example_config, served_bench_file
from tests.gui_helpers import WAIT_MS, experiment_file, wait_ended

LEFT = QtCore.Qt.LeftButton


@pytest.fixture
def bench():
    with VirtualBench(example_config(), twin=True) as vb:
        yield vb


def _prepare(window, tmp_path, vb, epochs=15):
    experiment = experiment_file(tmp_path, "bench-teacher-omega", training__epochs=epochs, record__array_every=2)
    window.set_prepared(window.launcher.prepare(experiment, vb.bench_config()))


def _all_safe(vb) -> bool:
    return all(vb.is_safe().values())


def test_dry_run_on_the_twin_shows_the_cosine_then_abort_leaves_the_bench_safe(qtbot, make_window, tmp_path, bench):
    window = make_window()
    _prepare(window, tmp_path, bench)
    c = window.controls
    assert c.dry_run.isVisible() and c.dry_run.isEnabled()
    qtbot.mouseClick(c.dry_run, LEFT)
    wait_ended(qtbot, window)
    assert window.state.state == "done" and window.launched.dry_run
    assert "every command passed the limits" in window.last_report and "ended safe: True" in window.last_report
    cosine = window.state.scalar("cosine_exact")  # the twin knows the exact gradient; Omega is exact
    assert cosine is not None and cosine.n >= 1 and min(cosine.values) > 0.999
    assert bench.emulators["smu_in0"].lines() == []  # the dry run never touched the bench itself

    qtbot.mouseClick(c.start, LEFT)
    qtbot.waitUntil(lambda: window.launched is not None and not window.launched.dry_run
                    and (window.state.step or 0) >= 3, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: bool(window.state.instruments), timeout=WAIT_MS)
    rows = {window.instruments.table.item(r, 0).text() for r in range(window.instruments.table.rowCount())}
    assert rows == set(example_config().instruments)
    qtbot.mouseClick(c.abort, LEFT)
    wait_ended(qtbot, window)
    assert window.state.state == "aborted" and _all_safe(bench), bench.is_safe()
    assert "every instrument safe" in window.last_report
    with RunReader(window.launched.run_dir) as reader:
        assert reader.status().status == "aborted"
        assert reader.metadata()["bench"] == "virtual-4x4"
        assert reader.scalar_names().count("cosine_exact") == 0  # a bench cannot know the exact gradient


def test_estop_puts_every_emulated_source_at_0_v_and_off_and_ends_the_run_aborted(
        qtbot, make_window, tmp_path, bench):
    window = make_window()
    _prepare(window, tmp_path, bench, epochs=200)
    window.start_run()
    qtbot.waitUntil(lambda: window.launched is not None and (window.state.step or 0) >= 2, timeout=WAIT_MS)
    qtbot.mouseClick(window.controls.estop, LEFT)
    qtbot.waitUntil(lambda: _all_safe(bench), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.estops and window.estops[0]["safe"] is not None, timeout=WAIT_MS)
    assert window.estops[0]["failures"] == []
    # The status bar says it until the run's closing report replaces it; the event log keeps it.
    qtbot.waitUntil(lambda: "E-STOP: rig safe" in window.events.toPlainText(), timeout=WAIT_MS)
    wait_ended(qtbot, window)
    assert window.state.state == "aborted" and "emergency stop" in window.state.detail, window.state.detail
    assert _all_safe(bench)
    with RunReader(window.launched.run_dir) as reader:
        assert reader.status().status == "aborted"


def test_closing_the_window_during_a_bench_run_asks_stops_leaves_the_bench_safe_and_the_cli_resumes_it(
        qtbot, make_window, tmp_path):
    with served_bench_file(tmp_path) as (vb, bench_file):
        window = make_window()
        experiment = experiment_file(tmp_path, "bench-teacher-omega", training__epochs=6)
        window.prepare(experiment, bench_file)
        window.start_run()
        qtbot.waitUntil(lambda: window.launched is not None and (window.state.step or 0) >= 2, timeout=WAIT_MS)

        def answer(choice):
            box = QtWidgets.QApplication.activeModalWidget()
            assert isinstance(box, QtWidgets.QMessageBox), box
            next(b for b in box.buttons() if b.text().startswith(choice)).click()

        QtCore.QTimer.singleShot(0, lambda: answer("Keep running"))
        window.close()
        assert window.isVisible() and not window.launched.released  # the run goes on

        QtCore.QTimer.singleShot(0, lambda: answer("Stop cleanly"))
        window.close()
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT_MS)  # closed itself once the bench was safe
        assert window.launched.released and _all_safe(vb)
        run_dir = window.launched.run_dir
        with RunReader(run_dir) as reader:
            assert reader.status().status == "stopped"
            assert reader.metadata()["bench_file"] == str(bench_file)

        assert main(["run", "--resume", str(run_dir), "--bench", str(bench_file), "--quiet"]) == 0
        assert _all_safe(vb)
    with RunReader(run_dir) as reader:
        assert reader.status().status == "done" and reader.last_step().step == 6 * 4
