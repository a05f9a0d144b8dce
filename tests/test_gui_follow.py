"""The window reading runs written by other processes: following `hwlearn train` to its end,
showing a killed writer as crashed, and the run browser (status, open, overlay, export)."""

import numpy as np
import pytest

from hwlearn.runstore import RunReader
from tests.cli_helpers import hwlearn, start, wait_for_step
from tests.gui_helpers import WAIT_MS, experiment_file, wait_ended


@pytest.fixture
def experiment(tmp_path):
    return experiment_file(tmp_path, "iris-omega", training__epochs=25, record__array_every=7)


def test_attaching_follows_a_run_written_by_another_process_to_its_end(qtbot, make_window, tmp_path, experiment):
    run_dir = tmp_path / "runs" / "followed"
    proc = start("train", experiment, "--out", run_dir, "--quiet")
    try:
        wait_for_step(run_dir, 1, proc)
        window = make_window()
        window.attach(run_dir)
        qtbot.waitUntil(lambda: window.state.step is not None, timeout=WAIT_MS)
        assert window.state.writer == f"pid {proc.pid} on " + window.state.writer.split(" on ", 1)[1]
        assert not window.controls.pause.isEnabled()  # the verbs belong to the writing process
        assert proc.wait(timeout=120) == 0
    finally:
        proc.kill()
    wait_ended(qtbot, window)
    assert window.state.state == "done"
    with RunReader(run_dir) as reader:
        last = reader.last_step().step
        recorded, losses = reader.scalars(["train_loss"])["train_loss"]
        array_steps = reader.array_steps("resistances")
        newest = reader.array_at("resistances", int(array_steps[-1]))
        ceiling = reader.summary()["linear_ceiling_test_accuracy"]
    assert window.state.step == last == 25 * 7
    assert window.state.array_steps == array_steps.tolist()
    qtbot.waitUntil(lambda: window.map.shown_step == array_steps[-1], timeout=WAIT_MS)
    np.testing.assert_array_equal(window.map.values, newest)
    curve = window.curves.curves["train_loss"]  # xData, yData: the data given, before the log scale
    qtbot.waitUntil(lambda: curve.xData is not None and curve.xData.size == recorded.size, timeout=WAIT_MS)
    np.testing.assert_array_equal(curve.xData, recorded)
    np.testing.assert_array_equal(curve.yData, losses)
    assert window.curves.ceilings["test_accuracy"].value() == pytest.approx(ceiling)


def test_a_killed_writer_is_shown_crashed_in_the_run_view_and_the_browser(qtbot, make_window, tmp_path, experiment):
    runs = tmp_path / "runs"
    hwlearn("train", experiment, "--out", runs / "finished", "--quiet")
    long_run = experiment_file(tmp_path, "iris-omega", training__epochs=5000)
    proc = start("train", long_run, "--out", runs / "killed", "--quiet")
    try:
        wait_for_step(runs / "killed", 3, proc)
        window = make_window(runs)
        window.attach(runs / "killed")
        qtbot.waitUntil(lambda: window.state.state == "running", timeout=WAIT_MS)
    finally:
        proc.kill()
        proc.wait()
    qtbot.waitUntil(lambda: window.state.state == "crashed", timeout=WAIT_MS)
    assert "is gone" in window.state.detail and "crashed" in window.controls.state.text()

    browser = window.browser
    window.tabs.setCurrentWidget(browser)
    qtbot.waitUntil(lambda: browser.listings >= 1, timeout=WAIT_MS)
    statuses = {browser.table.item(r, 0).text(): browser.table.item(r, 1).text() for r in range(len(browser.rows))}
    assert statuses == {"killed": "crashed", "finished": "done"}
    assert "1 crashed" in browser.message.text()

    browser.select([str(runs / "finished"), str(runs / "killed")])
    browser.overlay_choice.setCurrentText("train_loss")
    browser.overlay_selected()
    qtbot.waitUntil(lambda: len(browser.overlaid) == 2, timeout=WAIT_MS)

    browser.select([str(runs / "finished")])
    browser.open_selected()
    qtbot.waitUntil(lambda: window.state.state == "done" and window.state.run_dir == str(runs / "finished"),
                    timeout=WAIT_MS)

    out = tmp_path / "finished.npz"
    browser.export(str(runs / "finished"), "npz", out)
    qtbot.waitUntil(lambda: "exported to" in browser.message.text(), timeout=WAIT_MS)
    with np.load(out, allow_pickle=False) as exported, RunReader(runs / "finished") as reader:
        np.testing.assert_array_equal(exported["steps/step"], reader.steps().step)
