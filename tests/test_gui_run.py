"""The window drives a real run on the simulated rig: Start, Pause, Resume, Stop through its
buttons; the curves and the map follow; the run folder is an ordinary one the CLI resumes."""

import signal

import numpy as np
from PySide6 import QtCore

from gui.app import steer_by_signals
from hwlearn.cli import main
from hwlearn.runstore import RunReader
from tests.gui_helpers import WAIT_MS, experiment_file, wait_ended

LEFT = QtCore.Qt.LeftButton


def test_a_simulated_run_started_in_the_window_pauses_resumes_stops_and_resumes_from_the_cli(
        qtbot, make_window, tmp_path, capsys):
    experiment = experiment_file(tmp_path, "iris-omega", training__epochs=30, record__array_every=5)
    window = make_window()
    window.prepare(experiment)
    c = window.controls
    assert c.start.isEnabled() and not c.pause.isEnabled() and not c.dry_run.isVisible()
    qtbot.mouseClick(c.start, LEFT)
    qtbot.waitUntil(lambda: window.launched is not None and (window.state.step or 0) >= 20, timeout=WAIT_MS)
    engine = window.launched.engine

    qtbot.mouseClick(c.pause, LEFT)
    qtbot.waitUntil(lambda: window.state.state == "paused", timeout=WAIT_MS)  # the engine's document
    assert engine.state == "paused" and c.resume.isEnabled() and not c.pause.isEnabled()
    held = window.state.step
    qtbot.waitUntil(lambda: "paused" in c.state.text(), timeout=WAIT_MS)
    qtbot.mouseClick(c.resume, LEFT)
    qtbot.waitUntil(lambda: (window.state.step or 0) >= held + 10, timeout=WAIT_MS)

    qtbot.waitUntil(lambda: window.map.shown_step is not None and window.map.shown_step >= 5, timeout=WAIT_MS)
    assert window.map.quantity.key == "resistance"
    assert [q.key for q in window.map.quantities][:3] == ["resistance", "conductance", "v_free"]

    qtbot.mouseClick(c.stop, LEFT)
    wait_ended(qtbot, window)
    assert window.state.state == "stopped" and engine.state == "stopped"
    assert "ended stopped" in window.last_report
    run_dir = window.launched.run_dir
    with RunReader(run_dir) as reader:
        assert reader.status().status == "stopped"
        stopped_at = reader.last_step().step
        assert reader.latest_checkpoint(load_arrays=False).step == stopped_at
    assert window.state.step == stopped_at
    # The curves hold every recorded step, exactly as on disk.
    with RunReader(run_dir) as reader:
        recorded, losses = reader.scalars(["batch_loss"])["batch_loss"]
    curve = window.curves.curves["batch_loss"]  # xData, yData: the data given, before the log scale
    np.testing.assert_array_equal(curve.xData, recorded)
    np.testing.assert_array_equal(curve.yData, losses)
    assert c.start.isEnabled() and not c.stop.isEnabled()

    assert main(["show", str(run_dir)]) == 0
    assert "stopped" in capsys.readouterr().out
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    with RunReader(run_dir) as reader:
        assert reader.status().status == "done"
        steps = reader.steps().step
    assert steps[-1] == 30 * 7 and np.array_equal(steps, np.arange(steps[-1] + 1))


def test_the_map_slider_scrubs_back_through_recorded_steps_and_snaps_back_to_live(qtbot, make_window, tmp_path):
    experiment = experiment_file(tmp_path, "iris-omega", training__epochs=4, record__array_every=2)
    window = make_window()
    window.prepare(experiment)
    window.start_run()
    wait_ended(qtbot, window)
    panel = window.map
    qtbot.waitUntil(lambda: panel.shown_step == window.state.array_steps[-1], timeout=WAIT_MS)
    assert panel.slider.isEnabled() and panel.slider.maximum() == len(window.state.array_steps) - 1
    newest = panel.values.copy()

    panel.slider.setValue(1)  # the step after the initial evaluation's
    target = window.state.array_steps[1]
    qtbot.waitUntil(lambda: panel.shown_step == target, timeout=WAIT_MS)
    assert not panel.live and not panel.live_button.isChecked()
    with RunReader(window.launched.run_dir) as reader:
        recorded = reader.array_at("resistances", target)
    np.testing.assert_array_equal(panel.values, recorded)
    assert "recorded" in panel.step_label.text()

    qtbot.mouseClick(panel.live_button, LEFT)
    qtbot.waitUntil(lambda: panel.shown_step == window.state.array_steps[-1], timeout=WAIT_MS)
    np.testing.assert_array_equal(panel.values, newest)

    # Hover names the edge under the pointer and its value.
    geometry = panel.geometry
    k = int(geometry.learnable[0])
    x, y = geometry.mid[k]
    text = panel.hover_at(x, y)
    assert text.startswith(geometry.names[k]) and "learnable" in text and "Ω" in text


def test_ctrl_c_in_the_terminal_stops_the_run_cleanly_then_closes_the_window(qtbot, make_window, tmp_path):
    experiment = experiment_file(tmp_path, "iris-omega", training__epochs=200)
    window = make_window()
    quits = []
    handler = steer_by_signals(window, type("App", (), {"quit": lambda self: quits.append(True)})())
    window.prepare(experiment)
    window.start_run()
    qtbot.waitUntil(lambda: window.launched is not None and (window.state.step or 0) >= 5, timeout=WAIT_MS)
    handler(signal.SIGINT, None)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT_MS)
    assert window.launched.engine.state == "stopped" and quits == []
    with RunReader(window.launched.run_dir) as reader:
        assert reader.status().status == "stopped"
    handler(signal.SIGINT, None)  # nothing runs any more: the GUI quits
    assert quits == [True]
