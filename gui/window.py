"""The main window: the control bar above tabs for the run (curves and map), its instruments,
its events, and the run browser.

Threads: the engine runs in its worker thread, a follower thread reads a run written elsewhere,
the job thread does one-off reads and launches. They only put copies into the bridge. A timer in
the GUI thread (25 Hz) takes everything pending, applies it to the RunState and redraws the
views it made dirty, once per frame, however many steps arrived. The engine's verbs are called
directly from the GUI thread (they only set a state under a lock); the E-stop runs the engine's
emergency stop at once in a thread of its own, so neither a running sample nor a slow instrument
can make the button wait.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from gui.bridge import ArrayFrame, Bridge, JobDone, RunInfo
from gui.follower import RunFollower, read_arrays
from gui.geometry import geometry_for, run_network
from gui.jobs import JOBS_SOURCE, Jobs
from gui.launcher import Launched, Launcher, Prepared
from gui.runstate import RunState
from gui.widgets.browser import RunBrowser
from gui.widgets.controls import ControlBar, clock
from gui.widgets.curves import CurvesPanel
from gui.widgets.edgemap import EdgeMapPanel
from gui.widgets.events import EventLog
from gui.widgets.instruments import InstrumentsPanel
from hwlearn.documents import Summary
from hwlearn.errors import HwlearnError
from hwlearn.runstore import RunReader, is_run_dir

log = logging.getLogger("hwlearn.gui")

REDRAW_HZ = 25


def _load_geometry(config: dict, rig: dict, run_dir: str | None):
    network, learnable = run_network(config, rig)
    cache = Path(run_dir) if run_dir and Path(run_dir).is_dir() else None
    return geometry_for(network, learnable, cache)


def _read_info(run_dir: str) -> tuple[Summary, RunInfo]:
    with RunReader(run_dir) as reader:
        return Summary(reader.summary()), RunInfo(run_dir, reader.metadata(), "this window", reader.status().session)


def _read_step(run_dir: str, step: int) -> ArrayFrame:
    with RunReader(run_dir) as reader:
        return ArrayFrame(step, read_arrays(reader, step), live=False)


def run_details(config: dict, rig: dict, plan: dict | None = None) -> str:
    """What a followed run trains, from its records: rule, task, network, rig, and how a step
    is measured (the start document's plan: 'probe' or 'per-sample', and why)."""
    rule = config.get("rule", {})
    params = ", ".join(f"{k} {v:g}" for k, v in rule.items() if k != "name" and isinstance(v, (int, float)))
    net = config.get("network", {})
    shape = {"lattice": f"lattice {net.get('rows')}x{net.get('cols')}", "crossbar": "crossbar",
             "random": f"random graph ({net.get('nodes')} nodes, {net.get('edges')} edges)"}.get(net.get("builder"),
                                                                                            net.get("builder", "?"))
    measurement = (plan or {}).get("measurement")
    text = (f"rule      {rule.get('name', '?')}{f' ({params})' if params else ''}\n"
            f"task      {config.get('task', {}).get('name', '?')}\n"
            f"network   {shape}; {rig.get('description', rig.get('kind', ''))}")
    if measurement:
        text += f"\nplan      {measurement.get('plan', '?')}: {measurement.get('why', '')}"
    return text


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, launcher: Launcher | None = None, runs_root: str | Path = "runs",
                 redraw_hz: float = REDRAW_HZ):
        super().__init__()
        self.setWindowTitle("hwlearn")
        self.resize(1400, 900)
        self.launcher = launcher
        self.bridge = Bridge()
        self.jobs = Jobs(self.bridge)
        self.prepared: Prepared | None = None
        self.launched: Launched | None = None
        self.launching = False
        self._launch_box: dict = {}
        self.estop_wanted = False
        self.follower: RunFollower | None = None
        self.source = -1
        self.state = RunState()
        self.geometry_asked = False
        self.info_asked = False
        self.release_asked = False
        self.close_after_run = False
        self.shut_down = False
        self.last_report = ""
        self.estops: list[dict] = []       # one per press: pressed, safe (monotonic s), failures
        self.frames = 0                    # timer ticks
        self.redraws = 0                   # ticks that drew something

        self.controls = ControlBar()
        self.curves = CurvesPanel()
        self.map = EdgeMapPanel(request_step=self._request_step)
        self.instruments = InstrumentsPanel()
        self.events = EventLog()
        self.browser = RunBrowser(self.jobs, Path(launcher.runs_root if launcher else runs_root), self.attach)

        run_tab = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        run_tab.addWidget(self.curves)
        run_tab.addWidget(self.map)
        run_tab.setSizes([600, 800])
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(run_tab, "Run")
        self.tabs.addTab(self.instruments, "Instruments")
        self.tabs.addTab(self.events, "Events")
        self.tabs.addTab(self.browser, "Runs")
        self.tabs.currentChanged.connect(self._tab_changed)
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.controls)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self._menus()

        c = self.controls
        c.dry_run.clicked.connect(lambda: self.start_run(dry_run=True))
        c.start.clicked.connect(lambda: self.start_run(dry_run=False))
        c.pause.clicked.connect(self.pause)
        c.resume.clicked.connect(self.resume)
        c.stop.clicked.connect(self.stop)
        c.abort.clicked.connect(self.abort)
        c.estop.clicked.connect(self.estop)

        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(int(1000 / redraw_hz))
        self.timer.timeout.connect(self.frame)
        self.timer.start()
        self.curves.clear()
        self.map.clear()
        self._update_controls()

    def _menus(self) -> None:
        menu = self.menuBar().addMenu("&File")
        menu.addAction("Open &experiment…", self._open_experiment_dialog)
        menu.addAction("Open &run folder…", self._open_run_dialog)
        menu.addSeparator()
        menu.addAction("&Quit", self.close)

    # ================================================================== what is shown
    def _show(self, state: RunState) -> int:
        """Show ``state`` from now on; returns its new bridge source number."""
        if self.follower is not None:
            self.follower.stop(timeout=2.0)
            self.follower = None
        self.source = self.bridge.new_source()
        self.state = state
        self.geometry_asked = self.info_asked = False
        self.curves.clear()
        self.map.clear()
        self.events.clear()
        self.controls.title.setText(state.title)
        self.statusBar().clearMessage()
        return self.source

    def set_prepared(self, prepared: Prepared) -> None:
        """Show a prepared run, ready to dry-run (bench) and start."""
        if self.run_active():
            raise HwlearnError("a run is in progress in this window: stop it before preparing another")
        self.prepared = prepared
        self._show(RunState(prepared.title))
        self.state.state = "prepared"
        self.controls.details.setText(prepared.details)
        self.statusBar().showMessage(f"prepared: {prepared.title}. "
                                     + ("Dry run first, then Start." if prepared.can_dry_run else "Press Start."))
        self._update_controls()

    def prepare(self, experiment: str | Path, bench: str | Path | None = None) -> None:
        if self.launcher is None:
            raise HwlearnError("this window has no launcher: start it with hwlearn gui")
        self.set_prepared(self.launcher.prepare(experiment, bench))

    def attach(self, run_dir: str | Path) -> None:
        """Follow a run folder: live while another process writes it, static when it ended."""
        if self.run_active():
            self.statusBar().showMessage("a run is in progress in this window: its view stays; "
                                         "stop it before opening another run")
            return
        run_dir = Path(run_dir)
        if not is_run_dir(run_dir):
            self.statusBar().showMessage(f"{run_dir} is not a run folder (it has no run.sqlite)")
            return
        self.prepared = None
        source = self._show(RunState(f"run {run_dir}", str(run_dir), live=False))
        self.controls.details.setText("")
        self.follower = RunFollower(run_dir, self.bridge, source).start()
        self.tabs.setCurrentIndex(0)
        self._update_controls()

    # ================================================================== verbs
    def start_run(self, dry_run: bool = False) -> None:
        prepared = self.prepared
        if prepared is None or self.run_active():
            return
        run_dir = None if dry_run else prepared.next_run_dir()
        title = f"{'dry run: ' if dry_run else ''}{prepared.title}"
        source = self._show(RunState(title, None if run_dir is None else str(run_dir), live=True))
        view = self.bridge.view(source)
        self.launching = True
        self.launched = None
        self.estop_wanted = False
        self.release_asked = False
        self.last_report = ""
        self.statusBar().showMessage("opening the bench's simulated twin…" if dry_run else
                                     "opening the bench…" if prepared.kind == "bench" else "starting…")
        opened = self._launch_box = {"event": threading.Event()}

        def launch():
            try:
                opened["launched"] = prepared.launch([view], dry_run=dry_run, run_dir=run_dir)
                return opened["launched"]
            finally:
                opened["event"].set()
        self.jobs.submit(f"launch:{source}", launch, replace=False)
        self._update_controls()

    def pause(self) -> None:
        if self.launched is not None:
            self.launched.engine.pause()
            self._update_controls()

    def resume(self) -> None:
        if self.launched is not None:
            self.launched.engine.resume()
            self._update_controls()

    def stop(self) -> None:
        if self.launched is not None:
            self.launched.engine.stop()
            self.statusBar().showMessage("stopping at the next step (after a checkpoint: resumable)…")
            self._update_controls()

    def abort(self) -> None:
        if self.launched is not None:
            self.launched.engine.abort()
            self.statusBar().showMessage("aborting at the next sample boundary…")
            self._update_controls()

    def estop(self) -> None:
        """Every source to 0 V and off now: the engine's emergency stop, in a thread of its own
        started this instant (not queued behind the running sample, not waiting for a redraw)."""
        pressed = time.monotonic()
        launched = self.launched
        if launched is None:
            if self.launching:
                self.estop_wanted = True  # the bench is opening: stopped as soon as its engine exists
                self.statusBar().showMessage("E-STOP: the run is still opening; it is stopped the moment it starts")
            else:
                self.statusBar().showMessage("E-STOP: no run of this window is running (a run written by another "
                                             "process is stopped in that process)")
            return
        record = {"pressed": pressed, "safe": None, "failures": None}
        self.estops.append(record)
        self.events.add(time.time(), "warning", "E-STOP", "pressed: every source to 0 V and off now")

        def emergency():
            record["failures"] = launched.engine.estop()
            record["safe"] = time.monotonic()
        threading.Thread(target=emergency, name="hwlearn-estop", daemon=True).start()
        self.statusBar().showMessage("E-STOP: making every source safe…")

    def run_active(self) -> bool:
        return self.launching or (self.launched is not None and not self.launched.released)

    # ================================================================== the frame
    def frame(self) -> None:
        """One tick of the redraw timer: take what the threads delivered, apply, redraw."""
        self.frames += 1
        for packet in self.bridge.take():
            if packet.source == JOBS_SOURCE:
                self._job_done(packet.item)
            elif packet.source == self.source:
                self.state.apply(packet.item)
        state = self.state
        if self.launched is not None and state.live and not state.ended:
            engine = self.launched.engine
            state.phase = engine.position.get("phase")
            state.dirty.add("status")
        self._after_documents()
        drew = False
        if "status" in state.dirty:
            self._draw_status()
            drew = True
        if "plots" in state.dirty:
            self.curves.redraw(state)
            drew = True
        if ("map" in state.dirty or self.map.shown_step is None) and self.map.redraw(state):
            drew = True
        if "instruments" in state.dirty:
            self.instruments.redraw(state)
            drew = True
        if "events" in state.dirty:
            self.events.redraw(state)
        for estop in self.estops:
            if estop["safe"] is not None and not estop.get("shown"):
                estop["shown"] = True
                failures = estop["failures"]
                took = 1000 * (estop["safe"] - estop["pressed"])
                text = (f"rig safe {took:.0f} ms after the press" if not failures else
                        "safe state FAILED for " + "; ".join(failures))
                self.statusBar().showMessage(f"E-STOP: {text}")
                self.events.add(time.time(), "error" if failures else "warning", "E-STOP", text)
        state.dirty.clear()
        if drew:
            self.redraws += 1
        self._update_controls()

    def _after_documents(self) -> None:
        """Follow-up work the documents make possible: the network's layout once the run's
        config is known, the run's summary, the bench's release when the run ended."""
        state = self.state
        source = self.source
        if state.config and not self.geometry_asked:
            self.geometry_asked = True
            config, rig, run_dir = state.config, state.rig, state.run_dir
            self.jobs.submit(f"geometry:{source}", lambda: _load_geometry(config, rig, run_dir))
        if state.live and state.config and state.run_dir and not self.info_asked:
            self.info_asked = True
            run_dir = state.run_dir
            self.jobs.submit(f"info:{source}", lambda: _read_info(run_dir))
        launched = self.launched
        if launched is not None and state.live and state.ended and not self.release_asked:
            self.release_asked = True
            self.jobs.submit(f"release:{source}", lambda: launched.release(timeout=120), replace=False)

    def _request_step(self, step: int) -> None:
        run_dir, source = self.state.run_dir, self.source
        if run_dir:
            self.jobs.submit(f"step:{source}", lambda: _read_step(run_dir, step))

    def _job_done(self, job: JobDone) -> None:
        kind, _, rest = job.tag.partition(":")
        if kind == "browser":
            self.browser.job_done(job.tag, job.value, job.error)
            return
        if kind == "launch":
            self.launching = False
            if job.error is not None:
                self.state.state, self.state.detail = "failed", str(job.error)
                self.state.dirty.add("status")
                self.events.add(time.time(), "error", "launch", f"{type(job.error).__name__}: {job.error}")
                self.statusBar().showMessage(f"could not start: {job.error}")
                QtWidgets.QMessageBox.warning(self, "hwlearn: the run could not start", str(job.error))
                return
            self.launched = job.value
            if self.estop_wanted:
                self.estop()
            elif self.close_after_run:  # asked to close (a signal) while the run was opening
                self.stop()
            if int(rest) == self.source:
                self.state.run_dir = str(job.value.run_dir)
                self.statusBar().showMessage(f"running: {job.value.run_dir}")
            return
        if kind == "release":
            self.last_report = job.value if job.error is None else f"closing the run failed: {job.error}"
            for line in self.last_report.splitlines():
                self.events.add(time.time(), "info" if job.error is None else "error", "end", line)
            self.statusBar().showMessage(self.last_report.splitlines()[0] if self.last_report else "")
            if self.close_after_run:
                self.close()
            return
        if rest != str(self.source):
            return  # for a run no longer shown
        if job.error is not None:
            self.events.add(time.time(), "warning", kind, f"{type(job.error).__name__}: {job.error}")
            if kind == "geometry":
                self.map.hover.setText(f"the network cannot be drawn: {job.error}")
            return
        if kind == "geometry":
            self.map.set_geometry(job.value)
            self.map.shown_step = None
        elif kind == "info":
            for item in job.value:
                self.state.apply(item)
        elif kind == "step":
            self.map.show_recorded(job.value)

    # ================================================================== drawing the facts
    def _draw_status(self) -> None:
        state, c = self.state, self.controls
        shown = state.state
        if self.launched is not None and state.live and not state.ended:
            shown = self.launched.engine.state
        c.show_state(shown, state.detail)
        c.phase.setText(state.phase or "–")
        plan = state.plan
        c.epoch.setText("–" if state.epoch is None else f"{state.epoch}/{plan.get('epochs', '?')}")
        c.step.setText("–" if state.step is None else f"{state.step}/{plan.get('steps_total', '?')}")
        c.elapsed.setText(clock(state.elapsed()))
        c.eta.setText(clock(state.eta()) if not state.ended else "–")
        c.writer.setText(state.writer or "–")
        if not state.live and self.prepared is None and state.config and not c.details.text():
            c.details.setText(run_details(state.config, state.rig, state.plan))

    def _update_controls(self) -> None:
        c = self.controls
        active = self.run_active()
        engine_state = self.launched.engine.state if self.launched is not None else None
        prepared = self.prepared is not None
        c.start.setEnabled(prepared and not active)
        c.start.setText("Start" if self.launched is None else "Start a new run")
        c.dry_run.setVisible(prepared and bool(self.prepared.can_dry_run))
        c.dry_run.setEnabled(prepared and not active)
        c.pause.setEnabled(engine_state == "running")
        c.resume.setEnabled(engine_state == "paused")
        c.stop.setEnabled(engine_state in ("running", "paused"))
        c.abort.setEnabled(engine_state in ("running", "paused", "stopping"))
        for button in (c.dry_run, c.start, c.pause, c.resume, c.stop, c.abort):
            button.setVisible(button is not c.dry_run or (prepared and bool(self.prepared.can_dry_run)))

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.browser and self.browser.listings == 0:
            self.browser.refresh()

    # ================================================================== files
    def _open_experiment_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Experiment file", "examples", "TOML (*.toml)")
        if not path:
            return
        bench, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Bench file (cancel: the simulated rig)", "examples",
                                                         "TOML (*.toml)")
        try:
            self.prepare(path, bench or None)
        except HwlearnError as exc:
            QtWidgets.QMessageBox.warning(self, "hwlearn: cannot prepare the run", str(exc))

    def _open_run_dialog(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Run folder", str(self.browser.root))
        if path:
            self.attach(path)

    # ================================================================== closing
    def ask_close(self) -> str:
        """'stop', 'abort' or 'cancel': what to do with the run in progress."""
        box = QtWidgets.QMessageBox(self)
        box.setIcon(QtWidgets.QMessageBox.Warning)
        box.setWindowTitle("hwlearn: a run is in progress")
        box.setText("A run is in progress. The window closes once the run has ended and the bench is safe.")
        stop = box.addButton("Stop cleanly (resumable)", QtWidgets.QMessageBox.AcceptRole)
        abort = box.addButton("Abort now", QtWidgets.QMessageBox.DestructiveRole)
        box.addButton("Keep running", QtWidgets.QMessageBox.RejectRole)
        box.setDefaultButton(stop)
        box.exec()
        clicked = box.clickedButton()
        return "stop" if clicked is stop else "abort" if clicked is abort else "cancel"

    def closeEvent(self, event) -> None:
        if self.run_active() and not self.shut_down:
            if self.close_after_run:
                event.ignore()
                return
            answer = self.ask_close()
            if answer == "cancel":
                event.ignore()
                return
            self.close_after_run = True
            if self.launched is None:  # still opening: stopped the moment it exists
                self.estop_wanted = True
            elif answer == "stop":
                self.stop()
            else:
                self.abort()
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self, timeout: float = 60.0) -> None:
        """End everything this window started: a run still going is emergency-stopped (its bench
        made safe and closed), the threads end. Idempotent."""
        if self.shut_down:
            return
        self.shut_down = True
        self.timer.stop()
        launched = self.launched
        if launched is None and self.launching:  # a bench still opening: wait for its run, to stop it
            self._launch_box["event"].wait(timeout)
            launched = self._launch_box.get("launched")
        if launched is not None and not launched.released:
            launched.engine.estop()
            try:
                launched.release(timeout=timeout)
            except HwlearnError:
                log.exception("the run did not end after its emergency stop")
        if self.follower is not None:
            self.follower.stop()
            self.follower = None
        self.jobs.close()
        if self.launcher is not None:
            self.launcher.close()
