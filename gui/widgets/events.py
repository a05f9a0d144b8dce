"""The run's event log: faults, checkpoints, stops, exceptions, the GUI's own notes."""

from __future__ import annotations

import time

from PySide6 import QtGui, QtWidgets

from gui.runstate import RunState

LEVEL_COLOURS = {"error": "#b00020", "warning": "#a05a00", "info": "#202020", "debug": "#707070"}
MAX_LINES = 5000


class EventLog(QtWidgets.QPlainTextEdit):
    """Newest last. Instrument states (kind 'instruments') are shown in their own panel."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.FixedFont))
        self.lines = 0

    def add(self, when: float, level: str, kind: str, message: str, step=None) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(when))
        where = "" if step is None else f" step {step}"
        colour = LEVEL_COLOURS.get(level, "#202020")
        text = f"{stamp} {level:<7} {kind}{where}: {message}"
        self.appendHtml(f'<span style="color:{colour}">{_escape(text)}</span>')
        self.lines += 1

    def redraw(self, state: RunState) -> None:
        for event in state.new_events:
            if event.kind != "instruments":
                self.add(event.time, event.level, event.kind, event.message, event.step)
        state.new_events.clear()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
