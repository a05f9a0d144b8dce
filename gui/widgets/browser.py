"""The run browser: the runs of a folder with status (crashed runs shown as such), rule, task
and final metrics; open one, overlay the curves of several, export (csv folder or .npz).

Listing, reading curves and exporting run in the job thread; results come back by tag.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from gui.jobs import Jobs
from gui.widgets.curves import log_axis_ticks
from hwlearn.runstore import RunReader, list_runs, run_overview
from hwlearn.runstore.export import default_export_path, export_csv, export_npz

COLUMNS = ["run", "status", "rule", "task", "epochs", "train loss", "test loss", "test accuracy",
           "least-squares accuracy", "created"]
STATUS_COLOURS = {"crashed": QtGui.QColor(255, 190, 190), "failed": QtGui.QColor(255, 215, 200),
                  "aborted": QtGui.QColor(255, 235, 200), "running": QtGui.QColor(215, 235, 255),
                  "paused": QtGui.QColor(235, 225, 255), "done": QtGui.QColor(220, 245, 220)}
STATUS_MARKS = {"crashed": QtGui.QColor(210, 30, 30), "failed": QtGui.QColor(230, 90, 30),
                "aborted": QtGui.QColor(235, 160, 30), "running": QtGui.QColor(40, 120, 220),
                "paused": QtGui.QColor(130, 80, 200), "done": QtGui.QColor(50, 160, 50)}
OVERLAY_SCALARS = ("test_loss", "train_loss", "test_accuracy", "batch_loss", "cosine_exact")
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def overview_rows(root: Path) -> list[dict]:
    """One dict per run under ``root`` (run_overview's), or {'run_dir', 'status': 'unreadable',
    'error'} for a folder that cannot be read."""
    rows = []
    for run_dir in list_runs(root):
        try:
            with RunReader(run_dir) as reader:
                rows.append(run_overview(reader))
        except Exception as exc:  # one damaged folder must not hide the others
            rows.append({"run_dir": str(run_dir), "status": "unreadable", "status_detail": str(exc), "metrics": {}})
    return rows


def read_curves(run_dirs: list[str], name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    curves = {}
    for run_dir in run_dirs:
        with RunReader(run_dir) as reader:
            curves[run_dir] = reader.scalars([name])[name]
    return curves


def export_run(run_dir: str, fmt: str, out: Path, force: bool) -> Path:
    with RunReader(run_dir) as reader:
        return (export_csv if fmt == "csv" else export_npz)(reader, Path(out), force)


def _swatch(colour: QtGui.QColor) -> QtGui.QIcon:
    pixmap = QtGui.QPixmap(10, 10)
    pixmap.fill(colour)
    icon = QtGui.QIcon()
    for mode in (QtGui.QIcon.Normal, QtGui.QIcon.Selected):
        icon.addPixmap(pixmap, mode)
    return icon


def _number(value, digits: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return format(value, digits)


class RunBrowser(QtWidgets.QWidget):
    def __init__(self, jobs: Jobs, root: Path, open_run: Callable[[str], None], parent=None):
        super().__init__(parent)
        self.jobs = jobs
        self.open_run = open_run
        self.rows: list[dict] = []
        self.listings = 0
        self.message = QtWidgets.QLabel("")
        self.message.setWordWrap(True)

        self.folder = QtWidgets.QLineEdit(str(root))
        self.folder.returnPressed.connect(self.refresh)
        browse = QtWidgets.QPushButton("Folder…")
        browse.clicked.connect(self._choose_folder)
        refresh = QtWidgets.QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("runs in"))
        top.addWidget(self.folder, 1)
        top.addWidget(browse)
        top.addWidget(refresh)

        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.ExtendedSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.doubleClicked.connect(lambda _: self.open_selected())
        # A translucent selection, so a selected run's status colour (crashed in red) still shows.
        palette = self.table.palette()
        for group in (QtGui.QPalette.Active, QtGui.QPalette.Inactive):
            palette.setColor(group, QtGui.QPalette.Highlight, QtGui.QColor(40, 110, 220, 60))
            palette.setColor(group, QtGui.QPalette.HighlightedText, QtGui.QColor(0, 0, 0))
        self.table.setPalette(palette)

        self.open_button = QtWidgets.QPushButton("Open")
        self.open_button.clicked.connect(self.open_selected)
        self.overlay_button = QtWidgets.QPushButton("Overlay curves")
        self.overlay_button.clicked.connect(self.overlay_selected)
        self.overlay_choice = QtWidgets.QComboBox()
        self.overlay_choice.addItems(OVERLAY_SCALARS)
        self.overlay_choice.currentIndexChanged.connect(lambda _: self.overlay_selected())
        self.csv_button = QtWidgets.QPushButton("Export CSV…")
        self.csv_button.clicked.connect(lambda: self._ask_export("csv"))
        self.npz_button = QtWidgets.QPushButton("Export NPZ…")
        self.npz_button.clicked.connect(lambda: self._ask_export("npz"))
        buttons = QtWidgets.QHBoxLayout()
        for widget in (self.open_button, self.overlay_button, self.overlay_choice, self.csv_button, self.npz_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)

        self.overlay = pg.PlotWidget()
        self.overlay.getAxis("left").enableAutoSIPrefix(False)
        self.overlay.getAxis("left").setStyle(hideOverlappingLabels=False)
        self.overlay.setLabel("bottom", "step")
        self.overlay.showGrid(x=True, y=True, alpha=0.2)
        self.overlay_legend = self.overlay.addLegend(labelTextSize="8pt")
        self.overlaid: list[str] = []

        splitter = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        upper = QtWidgets.QWidget()
        upper_layout = QtWidgets.QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.addLayout(top)
        upper_layout.addWidget(self.table, 1)
        upper_layout.addLayout(buttons)
        upper_layout.addWidget(self.message)
        splitter.addWidget(upper)
        splitter.addWidget(self.overlay)
        splitter.setSizes([400, 300])
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(splitter)

    # ------------------------------------------------------------------ listing
    @property
    def root(self) -> Path:
        return Path(self.folder.text()).expanduser()

    def set_root(self, root: Path) -> None:
        self.folder.setText(str(root))
        self.refresh()

    def _choose_folder(self) -> None:
        chosen = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder of runs", str(self.root))
        if chosen:
            self.set_root(Path(chosen))

    def refresh(self) -> None:
        root = self.root
        if not root.is_dir():
            self.message.setText(f"{root}: no such folder (runs are written under ./runs by default)")
            self._fill([])
            return
        self.message.setText(f"reading {root}…")
        self.jobs.submit("browser:list", lambda: overview_rows(root))

    def _fill(self, rows: list[dict]) -> None:
        self.rows = rows
        self.table.setRowCount(len(rows))
        root = self.root
        for r, row in enumerate(rows):
            m = row.get("metrics") or {}
            try:
                name = str(Path(row["run_dir"]).relative_to(root))
            except ValueError:
                name = row["run_dir"]
            cells = [name, row.get("status", ""), row.get("rule") or "", row.get("task") or "",
                     "" if row.get("epochs_done") is None else str(row["epochs_done"]),
                     _number(m.get("train_loss"), ".3e"), _number(m.get("test_loss"), ".3e"),
                     _number(m.get("test_accuracy"), ".3f"), _number(m.get("linear_ceiling_accuracy"), ".3f"),
                     (row.get("created") or "").replace("T", " ").replace("Z", "").split(".")[0]]
            for c, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                if c == 1:
                    item.setToolTip(row.get("status_detail", ""))
                    colour = STATUS_COLOURS.get(text)
                    if colour is not None or text == "unreadable":
                        colour = colour or STATUS_COLOURS["crashed"]
                        item.setBackground(colour)
                        item.setIcon(_swatch(STATUS_MARKS.get(text, STATUS_MARKS["crashed"])))  # seen when selected
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)

    # ------------------------------------------------------------------ actions
    def selected(self) -> list[str]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.rows[r]["run_dir"] for r in rows if r < len(self.rows)]

    def select(self, run_dirs: list[str]) -> None:
        self.table.clearSelection()
        wanted = {str(Path(d)) for d in run_dirs}
        mode = QtCore.QItemSelectionModel.Select | QtCore.QItemSelectionModel.Rows
        for r, row in enumerate(self.rows):
            if str(Path(row["run_dir"])) in wanted:
                self.table.selectionModel().select(self.table.model().index(r, 0), mode)

    def open_selected(self) -> None:
        chosen = self.selected()
        if not chosen:
            self.message.setText("select a run to open")
            return
        self.open_run(chosen[0])

    def overlay_selected(self) -> None:
        chosen = self.selected()
        if not chosen:
            self.message.setText("select one or more runs to overlay their curves")
            return
        name = self.overlay_choice.currentText()
        self.jobs.submit("browser:overlay", lambda: (name, read_curves(chosen, name)))

    def _ask_export(self, fmt: str) -> None:
        chosen = self.selected()
        if len(chosen) != 1:
            self.message.setText("select one run to export")
            return
        default = str(default_export_path(Path(chosen[0]), fmt))
        if fmt == "csv":
            out, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export as a CSV folder", default)
        else:
            out, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export as .npz", default, "NumPy archive (*.npz)")
        if out:
            self.export(chosen[0], fmt, Path(out), force=Path(out).exists())

    def export(self, run_dir: str, fmt: str, out: Path, force: bool = False) -> None:
        """Export in the job thread (the file dialog already asked before replacing)."""
        self.message.setText(f"exporting {run_dir}…")
        self.jobs.submit("browser:export", lambda: export_run(run_dir, fmt, out, force))

    # ------------------------------------------------------------------ results
    def job_done(self, tag: str, value, error) -> None:
        if error is not None:
            self.message.setText(f"{tag.split(':', 1)[1]}: {type(error).__name__}: {error}")
            return
        if tag == "browser:list":
            self._fill(value)
            self.listings += 1
            crashed = sum(1 for r in value if r.get("status") == "crashed")
            self.message.setText(f"{len(value)} runs in {self.root}" + (f"; {crashed} crashed (resumable with "
                                                                         "--resume)" if crashed else ""))
        elif tag == "browser:overlay":
            self._draw_overlay(*value)
        elif tag == "browser:export":
            self.message.setText(f"exported to {value}")

    def _draw_overlay(self, name: str, curves: dict) -> None:
        self.overlay.clear()
        self.overlay_legend.clear()
        log = name.endswith("loss")
        self.overlay.setLogMode(y=log)
        self.overlay.setLabel("left", name)
        self.overlaid = []
        low, high = np.inf, -np.inf
        for i, (run_dir, (steps, values)) in enumerate(curves.items()):
            keep = np.isfinite(values) & ((values > 0) if log else True)
            # Each curve thinner than the one before: identical runs (same seed) stay visible.
            self.overlay.plot(steps[keep], values[keep], pen=pg.mkPen(PALETTE[i % len(PALETTE)],
                                                                     width=max(1.5, 5.0 - 1.5 * i)),
                              name=Path(run_dir).name)
            self.overlaid.append(run_dir)
            if keep.any():
                low, high = min(low, values[keep].min()), max(high, values[keep].max())
        axis = self.overlay.getAxis("left")
        if log and np.isfinite(low):
            axis.setTicks(log_axis_ticks(np.floor(np.log10(low)), np.ceil(np.log10(high))))
        else:
            axis.setTicks(None)
        self.message.setText(f"overlaid {name} of {len(curves)} runs")
