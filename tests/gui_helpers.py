"""Shared by the GUI tests (the ``make_window`` fixture is in conftest.py): experiment files sized
for tests, waiting for a run's end."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import tomli_w
from PySide6 import QtCore

from gui.window import MainWindow
from tests.cli_helpers import ROOT

WAIT_MS = 90_000  # only turns a hang into a failure; nothing asserts on time


def experiment_file(folder: Path, example: str, **changes) -> Path:
    """examples/<example>.toml with ``section__key=value`` changes (training__epochs=3), written
    to ``folder``."""
    doc = tomllib.loads((ROOT / "examples" / f"{example}.toml").read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        doc.setdefault(section, {})[key] = value
    path = folder / f"{example}.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


def lattice_teacher_file(folder: Path, name: str, *, rows: int, test_samples: int, rest: str) -> Path:
    """A square lattice of ``rows`` x ``rows`` nodes learning a 3-input, 2-output teacher, with
    ``rest`` (the rule, training and record sections, as TOML) appended: the live lattice runs of
    the screenshots and the GUI soak."""
    path = folder / f"{name}.toml"
    path.write_text(f"""name = "{name}"
[network]
builder = "lattice"
rows = {rows}
cols = {rows}
initial_ohms = 1000.0
initial_spread = 0.3
[task]
name = "teacher"
inputs = 3
outputs = 2
train_samples = 64
test_samples = {test_samples}
teacher_spread = 0.5
""" + rest)
    return path


def wait_ended(qtbot, window: MainWindow) -> None:
    """Until the shown run ended and, if this window started it, its bench was released."""
    qtbot.waitUntil(lambda: window.state.ended and (window.launched is None or window.launched.released)
                    and bool(window.last_report or window.launched is None), timeout=WAIT_MS)


def run_loop(app, seconds: float, until=None) -> None:
    """Run the real event loop (exec) for ``seconds`` or until ``until()``."""
    loop = QtCore.QEventLoop()
    check = QtCore.QTimer()
    check.setInterval(50)
    deadline = time.monotonic() + seconds
    check.timeout.connect(lambda: loop.quit() if time.monotonic() >= deadline or (until and until()) else None)
    check.start()
    loop.exec()
    check.stop()
