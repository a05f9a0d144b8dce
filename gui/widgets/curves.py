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
MAX_POINTS = 4000
# The cosine axis starts at the highest of these below every value: a rule within 1e-2 of the
# exact gradient is seen as such, not as a flat line at the top of [-1, 1] (finer would show
# rounding noise).
COSINE_FLOORS = (-1.0, 0.0, 0.5, 0.9, 0.99)
# A ceiling this many decades below the lowest loss is ~0 (a teacher task the network can fit
# exactly): drawn only when the data come near it, never stretching the axis down to it.
CEILING_REACH_DECADES = 2
LABEL_AT = {"train_loss": 0.3, "test_loss": 0.6, "test_accuracy": 0.5}  # the labels side by side
CEILINGS = {"train_loss": "linear_ceiling_train_loss", "test_loss": "linear_ceiling_test_loss",
            "test_accuracy": "linear_ceiling_test_accuracy"}


def log_axis_ticks(low_decade: float, high_decade: float) -> list[list[tuple[float, str]]]:
    """Ticks of a log10 axis: the decades labelled 1e-3, ..., the 2..9 multiples unlabelled (a
    short axis otherwise crowds with overlapping labels)."""
    decades = range(int(low_decade), int(high_decade) + 1)
    step = max(1, len(decades) // 6)
    major = [(float(d), f"1e{d}") for d in decades if (d - decades[0]) % step == 0]
    minor = [(d + float(np.log10(m)), "") for d in decades for m in range(2, 10) if d + np.log10(m) < high_decade]
    return [major, minor if len(decades) <= 8 else []]


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``value``."""
    decade = 10 ** np.floor(np.log10(value))
    return next(m * decade for m in (1, 2, 2.5, 5, 10) if m * decade >= value)


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
        self.cosine.showGrid(x=True, y=True, alpha=0.2)
        for plot in (self.accuracy, self.cosine):
            plot.setXLink(self.loss)
        # Ranges are set here, and only when they change (the step axis spans the planned run,
        # the loss axis whole decades): an axis repaints its tick labels whenever its range moves,
        # which at every new step would cost more than all the curves together.
        for plot in (self.loss, self.accuracy, self.cosine):
            plot.disableAutoRange()
        self.loss.hideAxis("bottom")
        self.accuracy.hideAxis("bottom")
        self._ranges: dict[str, tuple] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.ceilings: dict[str, pg.InfiniteLine] = {}
        for plot, names in ((self.loss, ("batch_loss", "train_loss", "test_loss")),
                            (self.accuracy, ("train_accuracy", "test_accuracy")),
                            (self.cosine, ("cosine_exact",))):
            # Accuracy and cosine rise to the top, losses fall: each legend where its curves are not.
            legend = plot.addLegend(offset=(-10, 10) if plot is self.loss else (-10, -10), labelTextSize="8pt")
            legend.setBrush(pg.mkBrush(255, 255, 255, 200))
            for name in names:
                width = 1 if name == "batch_loss" else 2
                symbol = None if name in ("batch_loss", "cosine_exact") else "o"
                curve = plot.plot([], [], name=LABELS[name], pen=pg.mkPen(COLOURS[name], width=width),
                                  symbol=symbol, symbolSize=4, symbolBrush=COLOURS[name], symbolPen=None)
                self.curves[name] = curve
            for name in names:
                if name in CEILINGS:
                    line = pg.InfiniteLine(angle=0, pen=pg.mkPen(COLOURS[name], width=1, style=QtCore.Qt.DashLine),
                                           label="least squares",
                                           labelOpts={"position": LABEL_AT[name], "color": COLOURS[name],
                                                      "anchors": [(0.5, 1), (0.5, 1)]})
                    line.setVisible(False)
                    plot.addItem(line)
                    self.ceilings[name] = line
        self.note = pg.TextItem("", color=(120, 120, 120), anchor=(0.5, 0.5))
        self.cosine.addItem(self.note)
        self.cosine.getViewBox().sigRangeChanged.connect(self._place_note)
        for plot in (self.loss, self.accuracy, self.cosine):
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.getAxis("left").setWidth(56)

    def _place_note(self, *_):
        (x0, x1), (y0, y1) = self.cosine.viewRange()
        self.note.setPos((x0 + x1) / 2, (y0 + y1) / 2)

    def _fit_ranges(self, state: RunState, last_step: float, low: float, high: float) -> None:
        total = state.plan.get("steps_total")
        if state.ended:
            x_high = float(max(last_step, 1))
        elif total:
            x_high = float(total)
        else:  # a run followed without a plan: its steps, with room to grow
            x_high = float(_nice_ceiling(max(last_step, 1)))
        self._set_range("x", self.loss, x=(0, x_high))
        if np.isfinite(low) and np.isfinite(high):
            decades = (np.floor(np.log10(low)), np.ceil(np.log10(high)))
            if decades[0] == decades[1]:
                decades = (decades[0], decades[0] + 1)
            for name, line in self.ceilings.items():
                if "loss" in name and line.isVisible() and line.value() >= decades[0] - CEILING_REACH_DECADES:
                    decades = (min(decades[0], np.floor(line.value())), max(decades[1], np.ceil(line.value())))
            if self._ranges.get("loss") != (None, decades):
                self.loss.getAxis("left").setTicks(log_axis_ticks(*decades))
            self._set_range("loss", self.loss, y=decades)
        self._set_range("accuracy", self.accuracy, y=(0.0, 1.02))
        cosine = state.scalar("cosine_exact")
        floor = -1.0
        if cosine is not None and np.isfinite(cosine.values).any():
            lowest = float(np.nanmin(cosine.values))
            floor = max(f for f in COSINE_FLOORS if f <= lowest) if lowest >= COSINE_FLOORS[0] else -1.0
        self._set_range("cosine", self.cosine, y=(floor, 1.0))

    def _set_range(self, key: str, plot, x=None, y=None) -> None:
        wanted = (x, y)
        if self._ranges.get(key) == wanted:
            return
        self._ranges[key] = wanted
        if x is not None:
            plot.setXRange(*x, padding=0.02)
        if y is not None:  # room for the labels at both ends (a grid drops labels that overflow)
            plot.setYRange(*y, padding=0.07)

    def clear(self) -> None:
        self._ranges = {}
        self.loss.getAxis("left").setTicks(log_axis_ticks(-3, 0))
        self._set_range("x", self.loss, x=(0, 1))
        self._set_range("loss", self.loss, y=(-3, 0))
        for curve in self.curves.values():
            curve.setData([], [])
        for line in self.ceilings.values():
            line.setVisible(False)
        self.note.setText("")

    def redraw(self, state: RunState) -> None:
        last_step, low, high = 0, np.inf, -np.inf
        for name, curve in self.curves.items():
            series = state.scalar(name)
            if series is None or series.n == 0:
                curve.setData([], [])
                continue
            steps, values = _finite(series.steps, series.values, positive=name.endswith("loss"))
            # Peaks kept, a few thousand points drawn however long the run.
            curve.setDownsampling(ds=max(1, steps.size // MAX_POINTS), auto=False, method="peak")
            curve.setData(steps, values)
            if steps.size:
                last_step = max(last_step, steps[-1])
                if name.endswith("loss"):
                    low, high = min(low, values.min()), max(high, values.max())
        self._fit_ranges(state, last_step, low, high)
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
