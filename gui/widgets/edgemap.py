"""The network drawn on its own layout, its edges coloured by a chosen quantity.

A graph is drawn as line segments, grouped into colour bins (one curve item per bin: a redraw
of 10 000 edges is a few array operations, not 10 000 items); a crossbar as an image of its
crosspoints. Colour levels are fixed per quantity when it is first drawn (``Rescale colours``
fixes them anew), with a colour bar. Hover names the edge and its value; the slider scrubs
through the steps whose arrays were recorded, read back from the run store, and ``Live`` snaps
back to the newest.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from gui.bridge import ArrayFrame
from gui.geometry import EdgeGeometry
from gui.quantities import Quantity, available, default_levels, si
from gui.runstate import RunState

N_BINS = 32
MISSING_COLOUR = (205, 205, 205)
SEQUENTIAL = "viridis"
DIVERGING = "CET-D1"
# class -> (symbol, size, pen colour, brush, legend text)
MARKS = {
    "input": ("t2", 11, (20, 20, 20), (60, 180, 75), "input"),
    "output": ("o", 11, (20, 20, 20), (230, 25, 75), "output"),
    "frozen": ("x", 8, (20, 20, 20), (20, 20, 20), "frozen (masked)"),
    "fixed": ("s", 6, (90, 90, 90), None, "fixed (not tunable)"),
    "unread": ("d", 6, (90, 90, 90), None, "not readable"),
}


def log_ticks(low: float, high: float, unit: str) -> list[tuple[float, str]]:
    """Ticks for a colour bar in log10 units, labelled in the quantity's units: the decades
    inside, or 1-2-5 steps, or finer, whichever first gives at least three."""
    ticks = []
    for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 5, 7), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [(math.log10(m) + d, si(m * 10.0 ** d, unit)) for d in range(math.floor(low), math.ceil(high) + 1)
                 for m in mantissas if low - 1e-9 <= math.log10(m) + d <= high + 1e-9]
        if len(ticks) >= 3:
            break
    return ticks


def linear_ticks(low: float, high: float, unit: str) -> list[tuple[float, str]]:
    """About five ticks at 1-2-5 steps, labelled in the quantity's units."""
    span = high - low
    if not span > 0:
        return [(low, si(low, unit))]
    raw = span / 5
    decade = 10 ** math.floor(math.log10(raw))
    step = next(m * decade for m in (1, 2, 5, 10) if m * decade >= raw)
    first = math.ceil(low / step - 1e-9)
    return [(k * step, si(k * step, unit)) for k in range(first, math.floor(high / step + 1e-9) + 1)]


class EdgeMapPanel(QtWidgets.QWidget):
    def __init__(self, request_step: Callable[[int], None] | None = None, parent=None):
        super().__init__(parent)
        self.request_step = request_step or (lambda step: None)
        self.geometry: EdgeGeometry | None = None
        self.quantities: list[Quantity] = []
        self.levels: dict[str, tuple[float, float]] = {}
        self.live = True
        self.history: ArrayFrame | None = None
        self.shown_step: int | None = None
        self.values: np.ndarray | None = None
        self.quantity: Quantity | None = None
        self.array_steps: list[int] = []
        self.draws = 0
        self._width = 2.0
        self._bin_colours = None

        self.choice = QtWidgets.QComboBox()
        self.choice.setMinimumContentsLength(24)
        self.choice.currentIndexChanged.connect(self._chosen)
        self.rescale = QtWidgets.QPushButton("Rescale colours")
        self.rescale.setToolTip("fix the colour levels anew to the values shown now")
        self.rescale.clicked.connect(self._rescale)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(self._scrubbed)
        self.live_button = QtWidgets.QPushButton("Live")
        self.live_button.setToolTip("follow the newest recorded step")
        self.live_button.setCheckable(True)
        self.live_button.setChecked(True)
        self.live_button.clicked.connect(self.go_live)
        self.step_label = QtWidgets.QLabel("no arrays recorded yet")
        self.hover = QtWidgets.QLabel("hover over an edge for its name and value")
        self.hover.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)

        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("colour by"))
        top.addWidget(self.choice, 1)
        top.addWidget(self.rescale)
        scrub = QtWidgets.QHBoxLayout()
        scrub.addWidget(self.step_label)
        scrub.addWidget(self.slider, 1)
        scrub.addWidget(self.live_button)

        self.graphics = pg.GraphicsLayoutWidget()
        self.plot = self.graphics.addPlot(row=0, col=0)
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=SEQUENTIAL, interactive=False, width=14)
        self.graphics.addItem(self.bar, row=0, col=1)
        self.legend = pg.LegendItem(labelTextSize="8pt", colCount=3)  # under the map, never over it
        self.graphics.addItem(self.legend, row=1, col=0, colspan=2)
        self.bar.axis.enableAutoSIPrefix(False)
        self.bar.axis.setStyle(hideOverlappingLabels=False)
        self.bar.axis.setWidth(64)  # room for labels such as "-450 µV" beside the bar
        self.note = pg.TextItem("the map appears with the run's first recorded arrays", color=(120, 120, 120),
                                anchor=(0.5, 0.5))
        self._pointer: tuple[float, float] | None = None

        self.image = pg.ImageItem(axisOrder="row-major")
        self.bins: list[pg.PlotCurveItem] = []
        self.missing = pg.PlotCurveItem()
        self.marks: dict[str, pg.ScatterPlotItem] = {}
        self.plot.scene().sigMouseMoved.connect(self._hovered)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.graphics, 1)
        layout.addLayout(scrub)
        layout.addWidget(self.hover)

    # ------------------------------------------------------------------ set up for a run
    def clear(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.addItem(self.note)
        self.note.setPos(0.5, 0.5)
        self.geometry = None
        self.quantities = []
        self.levels = {}
        self.live = True
        self.history = None
        self.values = None
        self.quantity = None
        self.shown_step = None
        self.array_steps = []
        self.live_button.setChecked(True)
        self.slider.blockSignals(True)
        self.slider.setRange(0, 0)
        self.slider.blockSignals(False)
        self.slider.setEnabled(False)
        self.step_label.setText("no arrays recorded yet")
        self.hover.setText("hover over an edge for its name and value")
        self.choice.blockSignals(True)
        self.choice.clear()
        self.choice.blockSignals(False)

    def set_geometry(self, geometry: EdgeGeometry) -> None:
        self.plot.clear()
        self.legend.clear()
        self.geometry = geometry
        view = self.plot.getViewBox()
        width = 3.0 if geometry.n_edges < 200 else 2.0 if geometry.n_edges < 3000 else 1.5
        self._width = width
        self._bin_colours = None
        if geometry.kind == "cells":
            self.plot.addItem(self.image)
            view.invertY(True)
            self.bar.setImageItem(self.image)
        if geometry.ticks:  # a crossbar: its lines numbered
            self.plot.showAxis("left")
            self.plot.showAxis("bottom")
            self.plot.getAxis("bottom").setTicks([geometry.ticks.get("bottom", [])])
            self.plot.getAxis("left").setTicks([geometry.ticks.get("left", [])])
            self.plot.setLabel("bottom", "input strip | output lines of each layer")
            self.plot.setLabel("left", "input lines")
        else:
            self.plot.hideAxis("left")
            self.plot.hideAxis("bottom")
        if geometry.kind == "segments":
            view.invertY(False)
            smooth = geometry.n_edges < 2000  # antialiasing 10 000 segments costs more than it shows
            self.missing = pg.PlotCurveItem(pen=pg.mkPen(MISSING_COLOUR, width=width), antialias=smooth)
            self.plot.addItem(self.missing)
            self.bins = []
            for _ in range(N_BINS):
                curve = pg.PlotCurveItem(pen=pg.mkPen((0, 0, 0), width=width), antialias=smooth)
                self.plot.addItem(curve)
                self.bins.append(curve)
        self.marks = {}
        small = geometry.n_edges > 2000
        for name, (symbol, size, pen, brush, text) in MARKS.items():
            where = geometry.classes[name]
            if not where.any():
                continue
            scatter = pg.ScatterPlotItem(pos=geometry.mid[where], symbol=symbol, size=size * (0.6 if small else 1),
                                         pen=pg.mkPen(pen, width=1.2), hoverable=False,
                                         brush=None if brush is None else pg.mkBrush(brush))
            scatter.setZValue(10)
            self.plot.addItem(scatter)
            self.marks[name] = scatter
            self.legend.addItem(scatter, f"{text} ({int(where.sum())})")
        self.legend.addItem(pg.PlotDataItem(pen=pg.mkPen(MISSING_COLOUR, width=3)),
                            "no value, or off scale")
        self.plot.autoRange()

    # ------------------------------------------------------------------ the slider
    def _scrubbed(self, index: int) -> None:
        if not self.array_steps:
            return
        if index >= len(self.array_steps) - 1:
            self.go_live()
            return
        self.live = False
        self.live_button.setChecked(False)
        step = self.array_steps[index]
        self.step_label.setText(f"step {step}: reading…")
        self.request_step(step)

    def go_live(self) -> None:
        self.live = True
        self.history = None
        self.live_button.setChecked(True)
        if self.array_steps:
            self.slider.blockSignals(True)
            self.slider.setValue(len(self.array_steps) - 1)
            self.slider.blockSignals(False)
        self.shown_step = None  # redraw the newest frame at the next redraw

    def show_recorded(self, frame: ArrayFrame) -> None:
        """A step read back for the slider (ignored if the user went live meanwhile)."""
        if not self.live:
            self.history = frame
            self.shown_step = None

    # ------------------------------------------------------------------ drawing
    def _chosen(self, _index: int) -> None:
        self.shown_step = None

    def _rescale(self) -> None:
        if self.quantity is not None:
            self.levels.pop(self.quantity.key, None)
            self.shown_step = None

    def redraw(self, state: RunState, force: bool = False) -> bool:
        """Draw the frame the slider points at; returns True if something was drawn."""
        self._sync_steps(state.array_steps)
        frame = state.frame if self.live else self.history
        if self.geometry is None or frame is None:
            return False
        self._sync_choices(frame)
        index = self.choice.currentIndex()
        if index < 0 or index >= len(self.quantities):
            return False
        quantity = self.quantities[index]
        if not force and self.shown_step == frame.step and self.quantity == quantity:
            return False
        values = quantity.values(frame.arrays, self.geometry.learnable, self.geometry.n_edges)
        if values is None:
            return False
        colour = quantity.colour_values(values)
        learning = np.zeros(colour.size, dtype=bool)
        learning[self.geometry.learnable] = True
        if quantity.key not in self.levels:
            # A resistance scale is fixed by the edges that learn (what changes); source and load
            # resistors far outside it would squeeze it. Voltages and updates: every edge.
            fitted = colour[learning] if quantity.log and np.isfinite(colour[learning]).any() else colour
            self.levels[quantity.key] = default_levels(quantity, fitted)
        low, high = self.levels[quantity.key]
        if quantity.log:  # a fixed edge beyond the scale is not painted as if at its end
            colour = np.where(~learning & ((colour < low) | (colour > high)), np.nan, colour)
        cmap = pg.colormap.get(DIVERGING if quantity.signed else SEQUENTIAL)
        self.bar.setColorMap(cmap)
        self.bar.setLevels((low, high))
        axis = self.bar.axis
        axis.setTicks([log_ticks(low, high, quantity.unit) if quantity.log else linear_ticks(low, high, quantity.unit)])
        axis.setLabel(f"{quantity.label} ({quantity.unit}{', log scale' if quantity.log else ''})")
        if self.geometry.kind == "cells":
            self._draw_cells(colour, cmap, low, high)
        else:
            self._draw_segments(colour, cmap, low, high)
        self.values, self.quantity, self.shown_step = values, quantity, frame.step
        where = "newest recorded" if self.live else "recorded"
        self.step_label.setText(f"step {frame.step} ({where})")
        self.draws += 1
        if self._pointer is not None:
            self.hover_at(*self._pointer)  # the value under a still pointer follows the map
        return True

    def _sync_steps(self, steps: list[int]) -> None:
        if len(steps) == len(self.array_steps):
            return
        self.array_steps = list(steps)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(len(steps) - 1, 0))
        if self.live:
            self.slider.setValue(len(steps) - 1)
        self.slider.blockSignals(False)
        self.slider.setEnabled(len(steps) > 1)

    def _sync_choices(self, frame: ArrayFrame) -> None:
        found = available(frame.arrays)
        if [q.key for q in found] == [q.key for q in self.quantities] or len(found) < len(self.quantities):
            return  # a frame with fewer arrays (step 0) keeps the menu of the run
        current = self.quantities[self.choice.currentIndex()].key if self.quantities and \
            self.choice.currentIndex() >= 0 else None
        self.quantities = found
        self.choice.blockSignals(True)
        self.choice.clear()
        for q in found:
            self.choice.addItem(f"{q.label} ({q.unit})")
        keys = [q.key for q in found]
        self.choice.setCurrentIndex(keys.index(current) if current in keys else 0)
        self.choice.blockSignals(False)

    def _draw_segments(self, colour: np.ndarray, cmap, low: float, high: float) -> None:
        g = self.geometry
        finite = np.isfinite(colour)
        t = np.clip((colour - low) / (high - low), 0.0, 1.0)
        bins = np.minimum((np.nan_to_num(t) * N_BINS).astype(np.int64), N_BINS - 1)
        if self._bin_colours != cmap.name:  # pens change with the colour map only
            self._bin_colours = cmap.name
            rgba = cmap.map(np.linspace(0.0, 1.0, N_BINS), mode="byte")
            for curve, colour in zip(self.bins, rgba):
                curve.setPen(pg.mkPen(tuple(int(c) for c in colour), width=self._width))
        order = np.argsort(np.where(finite, bins, -1), kind="stable")
        sorted_bins = np.where(finite, bins, -1)[order]
        bounds = np.searchsorted(sorted_bins, np.arange(-1, N_BINS + 1))
        for b in range(-1, N_BINS):
            chosen = order[bounds[b + 1]:bounds[b + 2]]
            x = np.empty(2 * chosen.size)
            y = np.empty(2 * chosen.size)
            x[0::2], x[1::2] = g.x0[chosen], g.x1[chosen]
            y[0::2], y[1::2] = g.y0[chosen], g.y1[chosen]
            if b < 0:
                self.missing.setData(x, y, connect="pairs")
            else:
                self.bins[b].setData(x, y, connect="pairs")

    def _draw_cells(self, colour: np.ndarray, cmap, low: float, high: float) -> None:
        g = self.geometry
        image = np.full(g.shape, np.nan)
        shown = g.row >= 0
        image[g.row[shown], g.col[shown]] = colour[shown]
        self.image.setImage(image, levels=(low, high), autoLevels=False)
        self.image.setColorMap(cmap)
        self.image.setRect(QtCore.QRectF(0, 0, g.shape[1], g.shape[0]))

    # ------------------------------------------------------------------ hover
    def _hovered(self, scene_pos) -> None:
        g = self.geometry
        if g is None or self.values is None or self.quantity is None:
            return
        view = self.plot.getViewBox()
        if not view.sceneBoundingRect().contains(scene_pos):
            return
        point = view.mapSceneToView(scene_pos)
        self.hover_at(point.x(), point.y())

    def hover_at(self, x: float, y: float) -> str:
        """Show the edge nearest to the view point (x, y); returns the text shown."""
        g = self.geometry
        self._pointer = (x, y)
        k = g.edge_at(x, y, reach=0.45)
        if k is None:
            text = "hover over an edge for its name and value"
        else:
            text = f"{g.describe_edge(k)}: {self.quantity.label} {si(float(self.values[k]), self.quantity.unit)}"
        self.hover.setText(text)
        return text
