"""The control bar: the verbs, and where the run stands (state, phase, epoch, step, elapsed, ETA),
always visible above every tab."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

STATE_COLOURS = {"running": "#1f77b4", "paused": "#7b4fbf", "stopping": "#a05a00", "aborting": "#b00020",
                 "done": "#2c8c2c", "stopped": "#a05a00", "aborted": "#b00020", "failed": "#b00020",
                 "crashed": "#b00020", "prepared": "#404040", "starting": "#404040", "opening": "#404040"}


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ControlBar(QtWidgets.QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QtWidgets.QLabel("No run")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        font.setBold(True)
        self.title.setFont(font)
        self.details = QtWidgets.QLabel("")
        self.details.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.FixedFont))
        self.details.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)

        self.dry_run = QtWidgets.QPushButton("Dry run")
        self.dry_run.setToolTip("run the plan on the bench's simulated twin: every command through the real "
                                "drivers and their limits, nothing sent to the instruments")
        self.start = QtWidgets.QPushButton("Start")
        self.pause = QtWidgets.QPushButton("Pause")
        self.pause.setToolTip("hold at the next sample boundary, every source at 0 V and off")
        self.resume = QtWidgets.QPushButton("Resume")
        self.stop = QtWidgets.QPushButton("Stop")
        self.stop.setToolTip("end cleanly at the next step, after a checkpoint: resumable")
        self.abort = QtWidgets.QPushButton("Abort")
        self.abort.setToolTip("end at the next sample boundary; the plan's clean-up runs")
        self.estop = QtWidgets.QPushButton("E-STOP")
        self.estop.setToolTip("emergency stop: every source to 0 V and off now, from this button's own "
                              "thread; the running sample is abandoned")
        self.estop.setMinimumSize(110, 44)
        self.estop.setStyleSheet("QPushButton { background: #d11a1a; color: white; font-weight: bold; "
                                 "font-size: 15px; border: 2px solid #7a0000; border-radius: 6px; }"
                                 "QPushButton:pressed { background: #8c0000; }")
        buttons = QtWidgets.QHBoxLayout()
        for button in (self.dry_run, self.start, self.pause, self.resume, self.stop, self.abort):
            buttons.addWidget(button)
        buttons.addStretch(1)

        self.state = QtWidgets.QLabel("–")
        self.phase = QtWidgets.QLabel("–")
        self.epoch = QtWidgets.QLabel("–")
        self.step = QtWidgets.QLabel("–")
        self.elapsed = QtWidgets.QLabel("–")
        self.eta = QtWidgets.QLabel("–")
        self.writer = QtWidgets.QLabel("–")
        facts = QtWidgets.QHBoxLayout()
        for name, label in (("state", self.state), ("phase", self.phase), ("epoch", self.epoch),
                            ("step", self.step), ("elapsed", self.elapsed), ("ETA", self.eta),
                            ("written by", self.writer)):
            caption = QtWidgets.QLabel(f"{name}:")
            caption.setStyleSheet("color: #606060")
            facts.addWidget(caption)
            label.setMinimumWidth(60)
            facts.addWidget(label)
            facts.addSpacing(10)
        facts.addStretch(1)

        left = QtWidgets.QVBoxLayout()
        left.addWidget(self.title)
        left.addWidget(self.details)
        left.addLayout(buttons)
        left.addLayout(facts)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(left, 1)
        layout.addWidget(self.estop, 0, QtCore.Qt.AlignVCenter)

    def show_state(self, state: str, detail: str = "") -> None:
        colour = STATE_COLOURS.get(state, "#202020")
        self.state.setText(f'<b style="color:{colour}">{state}</b>')
        self.state.setToolTip(detail)
