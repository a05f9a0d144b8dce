"""Shared by the whole suite: Qt runs offscreen (the GUI tests drive a real window without a
display), hypothesis' profiles, and the GUI tests' window fixture."""

import os

import pytest
from hypothesis import settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Property tests: a bounded number of examples in CI; `--hypothesis-profile deep` searches longer.
settings.register_profile("ci", max_examples=150, deadline=None)
settings.register_profile("deep", max_examples=3000, deadline=None)
settings.load_profile("ci")


@pytest.fixture
def make_window(qtbot, tmp_path):
    """make_window(runs=None) -> a real MainWindow, shown offscreen, with a launcher writing runs
    under ``runs`` (tmp_path/runs). At the end: the window's run stopped safe, its threads ended,
    and its widgets deleted before the interpreter ends (Qt's teardown crashes on live pyqtgraph
    widgets)."""
    from PySide6 import QtCore, QtWidgets

    from gui.app import application
    from gui.window import MainWindow
    from hwlearn.app.sessions import Launcher

    application()
    windows = []

    def make(runs=None):
        window = MainWindow(Launcher(runs or tmp_path / "runs"))
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shutdown()
        window.close()
        window.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)
    QtWidgets.QApplication.processEvents()
