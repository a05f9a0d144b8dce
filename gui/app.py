"""Starting the GUI: the display check, the QApplication, the window, a clean end.

    from gui.app import run_gui
    run_gui(launcher, attach="runs/iris-omega-...")           # or prepared=..., or neither

Qt aborts the process when it cannot reach a display; ``check_display`` refuses first, with an
error that says how to run without one.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from hwlearn.errors import HwlearnError

HEADLESS_HINT = ("set QT_QPA_PLATFORM=offscreen to run without a display (screenshots, tests), or start it "
                 "on a desktop or over ssh -X")


def check_display(environ=None, platform: str | None = None) -> None:
    """Raise HwlearnError when no display is reachable and no headless Qt platform is chosen."""
    env = os.environ if environ is None else environ
    platform = platform or sys.platform
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen.split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb") or platform != "linux":
        return
    display, wayland = env.get("DISPLAY", ""), env.get("WAYLAND_DISPLAY", "")
    if chosen.startswith("wayland") and wayland:
        return
    if not display and not wayland:
        raise HwlearnError(f"no display: neither DISPLAY nor WAYLAND_DISPLAY is set; {HEADLESS_HINT}")
    if display and not wayland and display.startswith(":"):
        number = display[1:].split(".")[0]
        if number.isdigit() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            raise HwlearnError(f"DISPLAY={display}: no X server listens on it (/tmp/.X11-unix/X{number} does not "
                               f"exist); {HEADLESS_HINT}")


def application():
    """The QApplication (created once), with pyqtgraph's white theme."""
    import pyqtgraph as pg
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication(["hwlearn"])
        app.setApplicationName("hwlearn")
    pg.setConfigOptions(background="w", foreground="k", antialias=True, imageAxisOrder="row-major")
    return app


def steer_by_signals(window, app):
    """A signal handler for Ctrl-C and SIGTERM in the terminal that started the GUI, as for
    ``hwlearn train``: the first stops a run of the window cleanly at its next step and closes
    the window once its bench is safe, a second aborts it; without a run, the GUI quits. Python
    runs it in the GUI thread between two bytecodes, which the redraw timer provides."""
    received = []

    def handler(signum, frame):
        received.append(signum)
        if not window.run_active():
            app.quit()
        elif len(received) == 1:
            window.close_after_run = True
            window.stop()
        else:
            window.abort()
    return handler


def run_gui(launcher, *, attach: str | Path | None = None, prepared=None, runs_root: str | Path | None = None) -> int:
    """Open the window (empty on the run browser, on a run folder, or on a prepared run) and run
    the event loop until it is closed; returns the exit code."""
    check_display()
    app = application()
    from gui.window import MainWindow

    window = MainWindow(launcher, runs_root or getattr(launcher, "runs_root", "runs"))
    if prepared is not None:
        window.set_prepared(prepared)
    elif attach is not None:
        window.attach(attach)
    else:
        window.tabs.setCurrentWidget(window.browser)
    window.show()
    previous = {sig: signal.signal(sig, steer_by_signals(window, app)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return app.exec()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        window.shutdown()
        # Deleting the widgets before the interpreter ends avoids a crash in Qt's teardown.
        window.deleteLater()
        app.processEvents()
