"""Live curves against the step: loss (log scale), accuracy, and the rule's cosine with the
exact gradient, each with the linear least-squares ceiling where the task has one."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from gui.runstate import RunState

COLOURS = {"batch_loss": (170, 170, 170), "train_loss": (31, 119, 180), "test_loss": (255, 127, 14),
           "train_accuracy": (31, 119, 180), "test_accuracy": (255, 127, 14), "cosine_exact": (44, 160, 44)}
LABELS = {"batch_loss": "batch loss", "train_loss": "train loss", "test_loss": "test loss",
          "train_accuracy": "train accuracy", "test_accuracy": "test accuracy",
          "cosine_exact": "cosine(rule, exact gradient)"}
CEILINGS = {"train_loss": "linear_ceiling_train_loss", "test_loss": "linear_ceiling_test_loss",
            "test_accuracy": "linear_ceiling_test_accuracy"}


def _finite(steps: np.ndarray, values: np.ndarray, positive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(values)
    if positive:
        keep &= values > 0
    return steps[keep], values[keep]


class CurvesPanel(QtWidgets.QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.graphics = pg.GraphicsLayoutWidget()
        layout.addWidget(self.graphics)
        self.loss = self.graphics.addPlot(row=0, col=0)
        self.loss.setLogMode(y=True)
        self.loss.setLabel("left", "loss (MSE)")
        self.loss.showGrid(x=True, y=True, alpha=0.2)
        self.accuracy = self.graphics.addPlot(row=1, col=0)
        self.accuracy.setLabel("left", "accuracy")
        self.accuracy.setYRange(0, 1.02)
        self.accuracy.showGrid(x=True, y=True, alpha=0.2)
        self.cosine = self.graphics.addPlot(row=2, col=0)
        self.cosine.setLabel("left", "cosine with exact")
        self.cosine.setLabel("bottom", "step")
        self.cosine.setYRange(-1.05, 1.05)
        self.cosine.showGrid(x=True, y=True, alpha=0.2)
        for plot in (self.accuracy, self.cosine):
            plot.setXLink(self.loss)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.ceilings: dict[str, pg.InfiniteLine] = {}
        for plot, names in ((self.loss, ("batch_loss", "train_loss", "test_loss")),
                            (self.accuracy, ("train_accuracy", "test_accuracy")),
                            (self.cosine, ("cosine_exact",))):
            # Accuracy rises to the top, losses fall to the bottom: each legend where its curves are not.
            legend = plot.addLegend(offset=(-10, -10) if plot is self.accuracy else (-10, 10), labelTextSize="8pt")
            legend.setBrush(pg.mkBrush(255, 255, 255, 200))
            for name in names:
                width = 1 if name == "batch_loss" else 2
                symbol = None if name in ("batch_loss", "cosine_exact") else "o"
                curve = plot.plot([], [], name=LABELS[name], pen=pg.mkPen(COLOURS[name], width=width),
                                  symbol=symbol, symbolSize=4, symbolBrush=COLOURS[name], symbolPen=None)
                curve.setDownsampling(auto=True, method="peak")
                self.curves[name] = curve
            for name in names:
                if name in CEILINGS:
                    line = pg.InfiniteLine(angle=0, pen=pg.mkPen(COLOURS[name], width=1, style=QtCore.Qt.DashLine),
                                           label="least squares",
                                           labelOpts={"position": 0.5, "color": COLOURS[name],
                                                      "anchors": [(0.5, 1), (0.5, 1)]})
                    line.setVisible(False)
                    plot.addItem(line)
                    self.ceilings[name] = line
        self.note = pg.TextItem("", color=(120, 120, 120), anchor=(0.5, 0.5))
        self.cosine.addItem(self.note)
        self.cosine.getViewBox().sigRangeChanged.connect(self._place_note)
        for plot in (self.loss, self.accuracy, self.cosine):
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.getAxis("left").setWidth(48)

    def _place_note(self, *_):
        (x0, x1), (y0, y1) = self.cosine.viewRange()
        self.note.setPos((x0 + x1) / 2, (y0 + y1) / 2)

    def clear(self) -> None:
        for curve in self.curves.values():
            curve.setData([], [])
        for line in self.ceilings.values():
            line.setVisible(False)
        self.note.setText("")

    def redraw(self, state: RunState) -> None:
        for name, curve in self.curves.items():
            series = state.scalar(name)
            if series is None or series.n == 0:
                curve.setData([], [])
                continue
            steps, values = _finite(series.steps, series.values, positive=name.endswith("loss"))
            curve.setData(steps, values)
        for name, line in self.ceilings.items():
            value = state.summary.get(CEILINGS[name])
            ok = isinstance(value, (int, float)) and np.isfinite(value) and (value > 0 or "loss" not in name)
            line.setVisible(bool(ok))
            if ok:
                line.setValue(np.log10(value) if "loss" in name else value)
        has_accuracy = any(state.scalar(n) is not None for n in ("train_accuracy", "test_accuracy"))
        self.accuracy.setVisible(has_accuracy or "linear_ceiling_test_accuracy" in state.summary)
        has_cosine = state.scalar("cosine_exact") is not None
        if has_cosine:
            self.note.setText("")
        elif state.kind == "bench":
            self.note.setText("a bench cannot compute the exact gradient\n(its dry run on the simulated twin can)")
        elif state.config:
            self.note.setText("the cosine is recorded every record.array_every steps")
        self._place_note()
