"""The Bench: a Rig made of real instruments, opened from a bench file.

    bench = Bench.open("examples/virtual-bench.toml")      # or Bench.open(bench_config)
    with bench:
        bench.set_inputs([0.5, -0.2]); bench.drive_outputs("open")
        volts = bench.measure(bench.capabilities.readable)

Rig calls map to instruments as follows (sign conventions: drivers/bench/sources.py):

- set_inputs / drive_outputs check every limit at once (the drivers' per-unit rules and the
  bench's total power) and *stage* the new source states: no byte is sent. The next measure()
  (or apply()) brings every unit to its staged state in one pass, in an order chosen so that
  few exchanges are needed and each one is confirmed before the scan.
- measure(edges): staged changes, then ONE scan of the mux channels spanning the edges (and the
  output edges of units sourcing current), then the compliance checks. Nothing is returned
  unless every unit is proven out of compliance at the time of the scan: a unit sourcing
  volts by asking it (its reading's compliance flag, queried after the last change, the query
  for one input joined to its last change), a unit sourcing current by the scan itself (its
  terminals span the output resistor the scan reads; it is in compliance exactly when that
  voltage reaches its limit). Overrange and NaN readings raise too. Errors are RigError.
- program(edges, ohms): nearest calibrated codes (outside a channel's range: RigError), only the
  codes that change are written, each board's in one SET, verified by read-back; returns the
  calibrated ohms of the codes held.
- safe_state(): every unit ramped to 0 and off (high-impedance off state), scan aborted and
  every relay open, every board at its safe code, all instruments at once, each within a time
  bound of its own (drivers/bench/safe_state.py). It never raises: it returns (and keeps in
  ``last_safe_state``) a SafeStateReport naming every instrument that is not safe, and reports
  each as a ``safe_state_failed`` fault. It may be called from another thread (an emergency
  stop): a measure() in progress then stops before its next exchange with RigError.

Faults of the links (timeouts recovered by re-synchronisation, late replies discarded, garbled
board replies, lost links, board restarts) are counted in ``faults`` (a FaultLog shared by every
transport) and passed to its hook ``bench.on_fault = f(kind, instrument, detail)``; a run
records one event per call. A lost link (not a mere timeout) is opened again once and the
instrument verified (identity, then a fresh setup; a board's restart is acknowledged and its
codes restored) before the Rig call is tried again; if that fails, the call raises RigError and
the caller goes to the safe state. A board that restarted by itself (power, its MCU watchdog)
refuses codes until the bench has verified it; the bench then restores the codes it held.

Limits beyond the drivers' own: the total power (``bench.max_total_watts``), and the boards'
terminal ratings, predicted from the staged sources before any byte is sent and checked again on
every scan (drivers/bench/ratings.py).

``round_trips`` counts exchanges per Rig call (drivers/instruments/exchanges.py); docs/bench.md tabulates
them per rule.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from drivers.bench import report as bench_report
from drivers.bench.ratings import BoardRatings
from drivers.bench.safe_state import EMPTY, SafeStateReport, make_safe
from drivers.bench.sources import SourceState, SourceUnit
from drivers.instruments import faults as fault
from drivers.instruments.errors import (
    BoardRebooted,
    InstrumentError,
    InstrumentTimeout,
    ProtocolError,
    ReadingError,
    SafeStateError,
    TransportError,
    WatchdogTripped,
)
from drivers.instruments.exchanges import CountingTransport, JoiningTransport, RoundTrips
from drivers.instruments.faults import FaultLog
from drivers.instruments.keithley24xx import Keithley2400, Keithley2450, SourceLimits
from drivers.instruments.resistor_board import ResistorBoard
from drivers.instruments.scanning_voltmeter import Keysight34970A
from drivers.instruments.transport import RESYNC_WAIT_S
from hwlearn.config.bench import BenchConfig, InstrumentConfig, load_bench_file, visa_backend
from hwlearn.errors import HwlearnError
from hwlearn.rig import OUTPUT_MODES, Capabilities, Rig, RigError
from hwlearn.signals import deferred_interrupts
from hwlearn.supervision import ReadingRefused

log = logging.getLogger("hwlearn.bench")

SMU_CLASSES = {"keithley2400": Keithley2400, "keithley2450": Keithley2450}
# Exchanges one instrument's safe state may need (its bound is that many timeouts, plus one
# re-synchronisation): a unit asks three questions and sends one line; the scanner sends one
# line; a board sends SAFE and GET? and may need INFO? first; a switch matrix opens every relay
# and reads them back.
SAFE_STATE_EXCHANGES = {"smu": 4, "dmm": 1, "board": 3, "matrix": 2}


def _not_commanded(why: str) -> None:
    raise SafeStateError("bench", f"not attempted: {why}")


# A call (a measurement, a write) that timed out is tried again this often: a bench link that
# loses one reply in a hundred then fails a call about once in 1e8, not once in 1e4.
CALL_RETRIES_AFTER_TIMEOUT = 3


class BenchError(RigError, HwlearnError):
    """The bench cannot be opened or used: an instrument is missing, not the one the bench file
    names, or not in a state the bench may start from."""


class Bench(Rig):
    """A Rig on real (or emulated) instruments. Use ``Bench.open(path_or_config)``."""

    def __init__(self, config: BenchConfig, faults: FaultLog | None = None):
        """Prefer Bench.open, which also connects; this only lays out the bench's structure."""
        self.config = config
        self.network = config.network
        self.round_trips = RoundTrips()
        self.faults = faults if faults is not None else FaultLog()
        self.identities: dict[str, str] = {}
        self.last_safe_state: SafeStateReport = EMPTY
        self.safe_state_failures: list[str] = []  # last_safe_state's failures as text
        self._ratings = BoardRatings(config)
        self._board_restarts: dict[str, int] = {}
        # Instruments that answer but would ignore our commands (a 2450 in another command
        # set): name -> why. Their safe state is not attempted, and reported as not done.
        self._deaf: dict[str, str] = {}
        self._transports: dict[str, CountingTransport] = {}
        self._resource_manager = None
        self._units: list[SourceUnit] = []
        self._inputs: list[SourceUnit] = []
        self._outputs: list[SourceUnit] = []
        self._dmm: Keysight34970A | None = None
        self._boards: dict[str, ResistorBoard] = {}
        self._held: dict[str, dict[int, int]] = {}    # board -> channel -> code held
        self._mux = {w.edge: w for w in config.mux}
        self._board_wire = {w.edge: w for w in config.board_wiring}
        self._closed = False
        self.last_scan: dict[int, float] = {}  # edge -> volts of the last scan (displays)
        # Incremented by every safe_state(): a measure() running in another thread (an E-stop
        # came) sees it change and stops before its next exchange.
        self._safe_generation = 0
        self.capabilities = self._capabilities()

    @property
    def on_fault(self) -> Callable[[str, str, str], None] | None:
        """Called as ``on_fault(kind, instrument, detail)`` for every fault of a link, from the
        thread that met it (see drivers/instruments/faults.py)."""
        return self.faults.on_fault

    @on_fault.setter
    def on_fault(self, hook: Callable[[str, str, str], None] | None) -> None:
        self.faults.on_fault = hook

    # ================================================================== opening and closing
    @classmethod
    def open(cls, source: str | Path | BenchConfig, *, clear_watchdog: bool = False,
             visa_library: str | None = None,
             on_fault: Callable[[str, str, str], None] | None = None) -> Bench:
        """Validate the bench file, connect every instrument, check identities (model, serial,
        command set, board protocol, channel count, watchdog), reset and configure them. The
        board's watchdog having tripped is refused unless ``clear_watchdog``. ``visa_library``
        overrides the bench file's (a name or a library path, as the file accepts); ``on_fault``
        is the fault hook, set before the first byte. On any failure every instrument already
        reached is made safe and closed, and BenchError is raised."""
        config = source if isinstance(source, BenchConfig) else load_bench_file(source)
        bench = cls(config, FaultLog(on_fault))
        try:
            with bench.round_trips.call("open"):
                bench._connect(visa_backend(visa_library or config.visa_library))
                bench._identify()
                bench._setup(clear_watchdog)
        except BaseException as exc:
            bench._abandon()
            if isinstance(exc, (InstrumentError, HwlearnError)) and not isinstance(exc, BenchError):
                raise BenchError(f"bench {config.name!r} ({config.source}): {exc}") from exc
            raise
        return bench

    def _connect(self, visa_library: str) -> None:
        from drivers.instruments.transport import SerialTransport, VisaTransport

        cfg = self.config
        for inst in cfg.instruments.values():
            if inst.kind == "board":
                raw = SerialTransport(inst.resource, inst.name, baudrate=inst["baudrate"],
                                      timeout_s=inst.timeout_s, retries=inst.retries,
                                      faults=self.faults)
                self._transports[inst.name] = CountingTransport(raw, self.round_trips)
                continue
            if self._resource_manager is None:
                import pyvisa

                try:
                    self._resource_manager = pyvisa.ResourceManager(visa_library)
                except (pyvisa.errors.Error, OSError, ValueError) as exc:
                    raise BenchError(f"cannot load the VISA library {visa_library!r} "
                                     f"(bench.visa_library = {cfg.visa_library!r}): {exc}") from exc
            raw = VisaTransport(inst.resource, inst.name, timeout_s=inst.timeout_s,
                                retries=inst.retries, resource_manager=self._resource_manager,
                                faults=self.faults)
            # SCPI lines join with ';'; a switch matrix's TSP statements do not.
            wrap = CountingTransport if inst.kind == "matrix" else JoiningTransport
            self._transports[inst.name] = wrap(raw, self.round_trips)
        for role, wires, group in (("input", cfg.inputs, self._inputs),
                                   ("output", cfg.outputs, self._outputs)):
            for wire in wires:
                inst = cfg.instruments[wire.smu]
                unit = SourceUnit(role, wire, inst, self._smu_driver(inst), self._transports[inst.name])
                group.append(unit)
                self._units.append(unit)
        if cfg.dmm is not None:
            dmm = cfg.dmm
            self._dmm = Keysight34970A(self._transports[dmm.name], name=dmm.name,
                                       cards=dmm["cards"], read_timeout_s=dmm["read_timeout_s"])
        for inst in cfg.of_kind("board"):
            allowed = {ch: (cal.code_min, cal.code_max)
                       for ch, cal in cfg.calibration.get(inst.name, {}).items()}
            self._boards[inst.name] = ResistorBoard(self._transports[inst.name], name=inst.name,
                                                    allowed=allowed)

    def _smu_driver(self, inst: InstrumentConfig):
        limits = SourceLimits(inst["max_volts"], inst["max_amps"], inst["max_watts"],
                              inst["ramp_volts"], inst["ramp_amps"])
        return SMU_CLASSES[inst.driver](self._transports[inst.name], limits, name=inst.name,
                                        measure_timeout_s=inst["measure_timeout_s"])

    def _identify(self) -> None:
        cfg = self.config
        for unit in self._units:
            try:
                identity = unit.driver.identify()
            except ProtocolError as exc:
                self._deaf[unit.name] = str(exc).removeprefix(f"{unit.label}: ")
                raise
            self._record_identity(cfg.instruments[unit.name], identity)
        if self._dmm is not None:
            self._record_identity(cfg.dmm, self._dmm.identify())
        for name, board in self._boards.items():
            inst = cfg.instruments[name]
            identity = board.connect(inst["boot_wait_s"])
            self._record_identity(inst, identity)
            if inst["model"] is not None and identity.model != inst["model"]:
                raise BenchError(f"{name}: *IDN? names model {identity.model!r}; the bench file "
                                 f"expects {inst['model']!r}")
            info = board.info
            if info.channels != inst["channels"]:
                raise BenchError(f"{name}: the board reports {info.channels} channels (INFO?); "
                                 f"the bench file says channels = {inst['channels']}")
            if info.watchdog_s < inst["watchdog_s"]:
                raise BenchError(f"{name}: the board's watchdog fires after {info.watchdog_s:g} s "
                                 f"(INFO? WDT); the bench file says watchdog_s = "
                                 f"{inst['watchdog_s']:g} s, and its heartbeat is paced for that")
            for channel, cal in cfg.calibration.get(name, {}).items():
                if cal.code_max > info.code_max or cal.code_min < info.code_min:
                    raise BenchError(f"{name}: channel {channel} is calibrated for codes "
                                     f"{cal.code_min}..{cal.code_max}; the board takes "
                                     f"{info.code_min}..{info.code_max}")
                if not cal.covers(info.safe_code):
                    raise BenchError(f"{name}: channel {channel}'s calibration (codes "
                                     f"{cal.code_min}..{cal.code_max}) does not cover the safe "
                                     f"code {info.safe_code}: the bench could not say what the "
                                     "board holds after safe_state()")

    def _record_identity(self, inst: InstrumentConfig, identity) -> None:
        if inst.serial is not None and identity.serial != inst.serial:
            raise BenchError(f"{inst.name}: *IDN? reports serial number {identity.serial!r}; the "
                             f"bench file expects {inst.serial!r} (are two units swapped?)")
        self.identities[inst.name] = ", ".join(str(v) for v in vars(identity).values())

    def _setup(self, clear_watchdog: bool) -> None:
        for name, board in self._boards.items():
            status = board.status()
            if status.shutdown:
                raise BenchError(f"{name}: SHDN is asserted (STAT?): the potentiometers are in "
                                 "hardware shutdown, every channel about 0 ohm; release the "
                                 "board's SHDN line before opening the bench")
            if status.tripped:
                if not clear_watchdog:
                    raise BenchError(f"{name}: the board's watchdog has tripped since it was last "
                                     "cleared (a host stopped talking to it while codes were set); "
                                     "its codes went to the safe code. Open with clear_watchdog "
                                     "(hwlearn bench check / hwlearn run: --clear-watchdog) to "
                                     "acknowledge")
                board.clear_watchdog()
            if status.booted:
                # Opening the port restarts an Arduino; the board proves its power-up state.
                board.acknowledge_boot()
            self._board_restarts[name] = board.restarts
            wired = sorted(self.config.calibration.get(name, {}))
            self._held[name] = board.read_codes(wired) if wired else {}
            inst = self.config.instruments[name]
            board.start_heartbeat(inst["heartbeat_s"] or inst["watchdog_s"] / 4)
        for unit in self._units:
            unit.setup()
        if self._dmm is not None:
            dmm = self.config.dmm
            transport = self._transports[dmm.name]
            with transport.batch():
                self._dmm.reset()
                self._dmm.configure(self._scan_channels(), dmm["volt_range"], dmm["nplc"])

    def _abandon(self) -> None:
        """After a failed open: make safe whatever was reached, then close everything."""
        try:
            self.safe_state()
        finally:
            self._close_links()

    def _reconnect(self, name: str, reason: Exception) -> bool:
        """After a lost link: open it again, verify the instrument (identity, command set,
        serial) and bring it back to what the bench expects (a unit or the scanner set up
        afresh; a board's restart acknowledged and its codes restored). True if that worked."""
        self.faults.report(fault.DISCONNECT, name, str(reason))
        inst = self.config.instruments[name]
        try:
            transport = self._transports[name]
            if inst.kind == "board":
                self._boards[name].stop_heartbeat()
            transport.reopen()
            if inst.kind == "smu" and name in {u.name for u in self._units}:
                unit = next(u for u in self._units if u.name == name)
                self._record_identity(inst, unit.driver.identify())
                unit.setup()
                unit.forget()
            elif inst.kind == "dmm":
                self._record_identity(inst, self._dmm.identify())
                with transport.batch():
                    self._dmm.reset()
                    self._dmm.configure(self._scan_channels(), inst["volt_range"], inst["nplc"])
            elif inst.kind in ("matrix", "smu"):  # a subclass's own (a crossbar's matrix, programmer)
                self._reconnect_other(name, inst)
            else:
                board = self._boards[name]
                self._record_identity(inst, board.connect(inst["boot_wait_s"]))
                self._recover_board(name)
                board.start_heartbeat(inst["heartbeat_s"] or inst["watchdog_s"] / 4)
        except (InstrumentError, HwlearnError) as exc:
            self.faults.report(fault.RECONNECT, name, f"reconnecting failed: {exc}", recovered=False)
            return False
        self.faults.report(fault.RECONNECT, name, "link opened again; identity and state verified")
        return True

    def _scan_channels(self) -> list[int]:
        """The voltmeter channels the bench scans: those of [wiring.mux]."""
        return [w.channel for w in self.config.mux]

    def _reconnect_other(self, name: str, inst: InstrumentConfig) -> None:
        """Verify and set up again an instrument the base bench does not know (a subclass's)."""
        raise BenchError(f"{name}: no way to set up a {inst.driver} again after a lost link")

    def _recover_board(self, name: str) -> None:
        """A board that restarted, or whose watchdog fired while this host was silent: verify it
        holds the safe code everywhere and is out of shutdown, acknowledge (CLR), then write back
        the codes the bench held (verified by read-back). A board that did neither is left as
        it is."""
        board = self._boards[name]
        status = board.status()
        if status.booted or status.tripped:
            board.acknowledge_boot()
            held = {ch: c for ch, c in self._held.get(name, {}).items() if c != board.info.safe_code}
            if held:
                board.write_codes(held)
            what = (f"the board restarted (reset cause {status.reset_cause})" if status.booted else
                    "the board's watchdog fired (this host was silent longer than its timeout)")
            self.faults.report(fault.REBOOT if status.booted else fault.WATCHDOG, name,
                               f"{what}; verified at the safe code, acknowledged, {len(held)} codes "
                               "restored")
        board.attention = None
        self._board_restarts[name] = board.restarts

    def _check_boards(self) -> None:
        """Before the bench relies on the boards' codes: a board whose boot announcement or
        trip was seen since the last look (by its heartbeat, or any request), or that has been
        silent for half its watchdog timeout (it may have tripped meanwhile), is asked and, if
        it restarted or tripped, recovered."""
        for name, board in self._boards.items():
            with board.transport.lock:  # a heartbeat in flight finishes (and says what it saw) first
                silent = time.monotonic() - board.last_contact > self.config.instruments[name]["watchdog_s"] / 2
                if board.restarts != self._board_restarts.get(name, 0) or board.attention or silent:
                    self._recover_board(name)

    def close(self) -> SafeStateReport:
        """safe_state(), stop the heartbeats, close every link. Idempotent; returns the
        safe-state report (which iterates over the failures)."""
        if self._closed:
            return self.last_safe_state
        try:
            with self.round_trips.call("close"):
                return self.safe_state()
        finally:
            self._close_links()

    def _close_links(self) -> None:
        self._closed = True
        for board in self._boards.values():
            board.close()
        for transport in self._transports.values():
            try:
                transport.close()
            except Exception as exc:  # closing must go on for the others
                log.warning("closing %s failed: %s", transport.name, exc)
        if self._resource_manager is not None:
            try:
                self._resource_manager.close()
            except Exception as exc:
                log.warning("closing the VISA resource manager failed: %s", exc)
            self._resource_manager = None

    # ================================================================== the Rig
    def _capabilities(self) -> Capabilities:
        cfg = self.config
        modes = {"open"}
        smus = [cfg.instruments[w.smu] for w in cfg.outputs]
        if all(s["compliance_volts"] is not None for s in smus):
            modes.add("current")
        if all(s["compliance_amps"] is not None for s in smus):
            modes.add("clamp")
        return Capabilities(
            output_modes=frozenset(modes),
            readable=np.array(sorted(self._mux), dtype=np.int64),
            tunable=np.array(sorted(self._board_wire), dtype=np.int64),
            inputs_can_short=True,
            notes=("outputs are read by the multiplexer scan",
                   "source changes are staged and applied by the next measure()",
                   "a clamp is switched off by the compliance query after its measurement"),
        )

    def resistances(self) -> np.ndarray:
        """Nominal ohms of fixed edges, calibrated ohms of the codes the boards hold."""
        ohms = np.array(self.network.resistance, dtype=float)
        for edge, wire in self._board_wire.items():
            if wire.channel in self._held.get(wire.board, {}):
                ohms[edge] = self._held_ohms(edge)
        return ohms

    def ohms_range(self) -> tuple[np.ndarray, np.ndarray]:
        """(lowest, highest) ohms program() accepts per edge, (m,) each: the calibrated span of
        a tunable edge's channel, the nominal value of a fixed edge (clip updates to these)."""
        low = np.array(self.network.resistance, dtype=float)
        high = low.copy()
        for edge, wire in self._board_wire.items():
            cal = self.config.calibration[wire.board][wire.channel]
            low[edge], high[edge] = cal.lowest_ohms, cal.highest_ohms
        return low, high

    def _held_ohms(self, edge: int) -> float:
        """Calibrated ohms of the code the board holds on ``edge``'s channel."""
        wire = self._board_wire[edge]
        code = self._held[wire.board][wire.channel]
        return self.config.calibration[wire.board][wire.channel].ohms_of(code)

    def set_inputs(self, volts) -> None:
        with self.round_trips.call("set_inputs"):
            self._check_open("set_inputs")
            n = len(self._inputs)
            volts = np.zeros(n) if volts is None else np.asarray(volts, dtype=float)
            if volts.shape != (n,) or not np.all(np.isfinite(volts)):
                raise RigError(f"set_inputs: expected {n} finite volts, got {volts!r}")
            self._stage("set_inputs", {u: u.series_state(float(v)) for u, v in zip(self._inputs, volts)})

    def drive_outputs(self, mode: str, values=None) -> None:
        with self.round_trips.call("drive_outputs"):
            self._check_open("drive_outputs")
            if mode not in OUTPUT_MODES:
                raise RigError(f"drive_outputs: mode {mode!r} is unknown; allowed: "
                               f"{', '.join(OUTPUT_MODES)}")
            if mode not in self.capabilities.output_modes:
                raise RigError(f"drive_outputs: mode {mode!r} is not available on this bench "
                               f"(it has {', '.join(sorted(self.capabilities.output_modes))}): an "
                               "output unit lacks the compliance setting it needs")
            if mode == "open":
                self._stage("drive_outputs", {u: u.open_state() for u in self._outputs})
                return
            n = len(self._outputs)
            values = np.asarray(values, dtype=float)
            if values.shape != (n,) or not np.all(np.isfinite(values)):
                raise RigError(f"drive_outputs: expected {n} finite values, got {values!r}")
            make = SourceUnit.current_state if mode == "current" else SourceUnit.clamp_state
            self._stage("drive_outputs", {u: make(u, float(x)) for u, x in zip(self._outputs, values)})

    def apply(self) -> None:
        """Bring every unit to its staged state now (measure() does this itself)."""
        with self.round_trips.call("apply"):
            self._check_open("apply")
            self._guard("apply", lambda: self._apply_staged(self._safe_generation, join_check=False))

    def measure(self, edges) -> np.ndarray:
        with self.round_trips.call("measure"):
            self._check_open("measure")
            edges = self._edges(edges, "measure")
            unreadable = [self.network.edge_names[e] for e in edges if e not in self._mux]
            if unreadable:
                raise RigError(f"measure: edges {', '.join(unreadable)} are not readable on this "
                               "bench (no multiplexer channel spans them)")
            return self._guard("measure", lambda: self._measure(edges))

    def program(self, edges, ohms) -> np.ndarray:
        with self.round_trips.call("program"):
            self._check_open("program")
            edges = self._edges(edges, "program")
            ohms = np.asarray(ohms, dtype=float).reshape(-1)
            if ohms.shape != edges.shape:
                raise RigError(f"program: {ohms.size} resistances for {edges.size} edges")
            if len(set(edges.tolist())) != edges.size:
                raise RigError("program: an edge is listed twice")
            codes = {}
            for edge, target in zip(edges.tolist(), ohms.tolist()):
                wire = self._board_wire.get(edge)
                name = self.network.edge_names[edge]
                if wire is None:
                    raise RigError(f"program: edge {name} is not tunable on this bench (no board "
                                   "channel is wired to it); nothing was sent")
                try:
                    code = self.config.calibration[wire.board][wire.channel].nearest_code(target)
                except ValueError as exc:
                    raise RigError(f"program: edge {name} ({wire.board} channel {wire.channel}): "
                                   f"{exc}; nothing was sent") from None
                codes.setdefault(wire.board, {})[wire.channel] = code
            self._guard("program", lambda: self._write_codes(codes))
            return np.array([self._held_ohms(edge) for edge in edges.tolist()])

    def safe_state(self) -> SafeStateReport:
        """Every source ramped to 0 V / 0 A and off, relays open, boards at the safe code: all
        instruments at once, each within its own bound (its safe-state exchanges times its
        timeout, plus one re-synchronisation, twice: a timed-out safe state is tried once more).
        Idempotent; never raises. Returns the report
        (also ``last_safe_state``); every instrument not made safe is logged, listed in
        ``safe_state_failures`` and reported as a ``safe_state_failed`` fault."""
        if self._closed:
            return self.last_safe_state  # close() made the bench safe and released its links
        self._safe_generation += 1
        # A second Ctrl-C must not leave a source half-ramped: interrupts wait until the end.
        with deferred_interrupts(), self.round_trips.call("safe_state"):
            call = self.round_trips.current
            actions = {}

            def within(name: str, action):
                def run() -> None:
                    with self.round_trips.call(call, counted=False):
                        try:
                            action()
                        except InstrumentTimeout:
                            # One lost or late reply must not leave a source on: the next
                            # exchange re-synchronises the link (a frozen instrument fails that
                            # too), and the safe state, which reads the actual state first,
                            # starts over.
                            action()
                inst = self.config.instruments[name]
                bound = 2 * (SAFE_STATE_EXCHANGES[inst.kind] * inst.timeout_s + RESYNC_WAIT_S) + 1.0
                return run, bound

            for unit in self._units:
                action = unit.safe_state if unit.name not in self._deaf else \
                    lambda why=self._deaf[unit.name]: _not_commanded(why)
                actions[unit.name] = within(unit.name, action)
            if self._dmm is not None:
                actions[self._dmm.name] = within(self._dmm.name, self._dmm_safe_state)
            for name, board in self._boards.items():
                actions[name] = within(name, lambda n=name, b=board: self._board_safe_state(n, b))
            actions.update(self._safe_actions(within))
            report = make_safe(actions)
            after = self._safe_actions_after(within, report)
            if after:
                second = make_safe(after)
                report = SafeStateReport(report.outcomes + second.outcomes, report.seconds + second.seconds)
        self.last_safe_state = report
        self.safe_state_failures = [f"{o.instrument}: {o.detail}" for o in report.failures]
        for outcome in report.failures:
            log.error("safe state of %s failed: %s", outcome.instrument, outcome.detail)
            self.faults.report(fault.SAFE_STATE, outcome.instrument, outcome.detail, recovered=False)
        return report

    def _safe_actions(self, within) -> dict:
        """Safe states of instruments a subclass adds, run with the others at once:
        name -> within(name, action)."""
        return {}

    def _safe_actions_after(self, within, first: SafeStateReport) -> dict:
        """Safe states to run once the first group has ended (a switch matrix, opened only
        after every source is off): name -> within(name, action)."""
        return {}

    def idle(self) -> None:
        """Every source ramped to 0 and off, the boards keeping their codes (a pause)."""
        self._check_open("idle")
        self._safe_generation += 1
        with deferred_interrupts(), self.round_trips.call("idle"):
            for unit in self._units:
                self._guard("idle", unit.safe_state)

    def describe(self) -> dict:
        """kind, description, bench name, instrument identities, and (drivers/bench/report.py)
        the limits in force, each instrument's setup and the board's network."""
        return {"kind": "bench", "description": f"bench {self.config.name!r} ({len(self.identities)} instruments)",
                "bench": self.config.name, "instruments": dict(self.identities),
                **bench_report.setup(self.config, self.identities)}

    def health(self) -> dict[str, dict]:
        return bench_report.health(self)

    def holds(self) -> list[str]:
        """A board silent for longer than its watchdog timeout (its heartbeat lost: its codes
        went to the safe code) or a link that could not be opened again holds the run."""
        if self._closed:
            return []
        found = []
        now = time.monotonic()
        for name, board in self._boards.items():
            watchdog_s = self.config.instruments[name]["watchdog_s"]
            silent = now - board.last_contact
            if board.last_contact and silent > watchdog_s:
                found.append(f"{name}: no heartbeat reply for {silent:.1f} s (its watchdog trips after "
                             f"{watchdog_s:g} s)")
        for name, transport in self._transports.items():
            if transport.closed:
                found.append(f"{name}: its link is closed")
        return found

    # ================================================================== internals
    def _check_open(self, call: str) -> None:
        if self._closed:
            raise RigError(f"{call}: the bench {self.config.name!r} is closed")

    def _edges(self, edges, call: str) -> np.ndarray:
        try:
            return self.network.edge_indices(edges, call)
        except HwlearnError as exc:
            raise RigError(f"{call}: {exc}") from None

    def _guard(self, call: str, action, timeouts_left: int = CALL_RETRIES_AFTER_TIMEOUT):
        """Instrument errors surface as RigError naming the call (the Rig's one error type). A
        lost link is opened again and verified once, and the call tried again. A call cut short
        by a timeout is tried again (up to CALL_RETRIES_AFTER_TIMEOUT times): its link has been
        re-synchronised, so no late reply can be taken for a new one, and a source whose
        transition was cut short starts over from a switch-off; nothing measured before the
        timeout is returned."""
        try:
            return action()
        except RigError:
            raise
        except InstrumentTimeout as exc:
            if timeouts_left <= 0 or exc.instrument not in self._transports:
                raise RigError(f"{call}: {exc}") from exc
            self._after_timeout(call, exc.instrument)
            return self._guard(call, action, timeouts_left - 1)
        except TransportError as exc:
            if exc.instrument not in self._transports:
                raise RigError(f"{call}: {exc}") from exc
            if not self._reconnect(exc.instrument, exc):
                raise RigError(f"{call}: {exc}; reconnecting failed") from exc
            try:
                return action()
            except RigError:
                raise
            except InstrumentError as again:
                raise RigError(f"{call}: {again}") from again
        except InstrumentError as exc:
            raise RigError(f"{call}: {exc}") from exc

    def _after_timeout(self, call: str, name: str) -> None:
        """Before a call that timed out on ``name`` is tried again: its link re-synchronised now,
        so every late reply has been read and discarded and the instrument has done everything
        it was sent (a scan taken before that could see a source not yet at its level); a source
        on it is taken as unknown and brought to its state again from a switch-off."""
        try:
            self._transports[name].resync()
        except InstrumentError as exc:
            raise RigError(f"{call}: {exc}") from exc
        for unit in self._units:
            if unit.name == name:
                unit.doubt()

    def _stage(self, call: str, states: dict[SourceUnit, SourceState]) -> None:
        for unit, state in states.items():
            problem = unit.limit_problem(state)
            if problem:
                raise RigError(f"{call}: {unit.label}: {problem}; nothing was sent")
        total = sum(unit.worst_case_watts(states.get(unit, unit.requested)) for unit in self._units)
        if total > self.config.max_total_watts:
            raise RigError(f"{call}: the sources' worst-case power would be {total:g} W, above "
                           f"bench.max_total_watts = {self.config.max_total_watts:g} W; nothing "
                           "was sent")
        problem = self._ratings.predicted_problem({u: states.get(u, u.requested) for u in self._units},
                                                  self.resistances())
        if problem:
            raise RigError(f"{call}: the staged sources {problem}; nothing was sent")
        for unit, state in states.items():
            unit.requested = state

    def _still_wanted(self, generation: int, call: str) -> None:
        if generation != self._safe_generation:
            raise RigError(f"{call}: safe_state() was called meanwhile (an emergency stop?); "
                           "stopped before the next exchange, no value is returned")

    def _apply_staged(self, generation: int, join_check: bool) -> set[SourceUnit]:
        """Every unit whose staged state differs gets its commands and a confirming query in one
        exchange; with ``join_check`` the last changed input ends with its compliance query
        instead (all other changes are confirmed executed before it). Returns the units whose
        compliance was so checked."""
        pending = [u for u in self._units if u.pending]
        joined = None
        if join_check:
            # Not a unit that switches on: its relay must settle before it measures.
            joined = next((u for u in reversed(pending) if u.role == "input" and u.needs_query
                           and not u.switches_on), None)
        checked = set()
        for unit in [u for u in pending if u is not joined] + ([joined] if joined else []):
            switching_on = unit.switches_on
            with unit.transport.batch():
                # Checked holding the unit's lock, which its safe state needs too: either the
                # safe state began before (stop here) or it waits for this line.
                self._still_wanted(generation, "apply")
                unit.apply()
                if unit is joined:
                    unit.check()
                    checked.add(unit)
                else:
                    unit.confirm()
            if switching_on:
                unit.driver.restart_settling()  # the line with :OUTP ON has been executed now
        return checked

    def _measure(self, edges: np.ndarray) -> np.ndarray:
        generation = self._safe_generation
        self._check_boards()
        checked = self._apply_staged(generation, join_check=True)
        current_units = [u for u in self._outputs if u.applied.on and u.applied.function == "CURR"]
        scanned = sorted(set(edges.tolist()) | {u.edge for u in current_units})
        for unit in self._units:
            unit.driver.wait_settled()  # output relays closed by this measurement
        volts = self._scan(scanned, generation) if scanned else {}
        problem = self._ratings.measured_problem(volts, self.resistances())
        if problem:
            raise RigError(f"measure: the scan {problem}; no value is returned")
        for unit in self._units:
            if unit not in checked and unit.applied.on and unit.applied.function == "VOLT":
                with unit.transport.lock:
                    self._still_wanted(generation, "measure")
                    unit.check(release=unit.role == "output")
        self._still_wanted(generation, "measure")
        for unit in current_units:
            problem = unit.current_mode_problem(volts[unit.edge], self.config.compliance_margin)
            if problem:
                raise ReadingRefused(f"measure: {problem}; no value is returned", "compliance")
        return np.array([volts[e] for e in edges.tolist()], dtype=float)

    def _scan(self, edges: list[int], generation: int | None = None) -> dict[int, float]:
        """Resistor volts (v = p[a] - p[b] - s, by each channel's polarity) from one scan."""
        wires = [self._mux[e] for e in edges]
        transport = self._transports[self.config.dmm.name]
        try:
            with transport.batch():
                if generation is not None:
                    self._still_wanted(generation, "measure")
                readings = self._dmm.measure([w.channel for w in wires])
        except ReadingError as exc:
            bad = ", ".join(f"channel {w.channel} spans {w.edge_name}" for w in wires
                            if w.channel in exc.channels)
            raise ReadingRefused(f"measure: the scan read an overrange or NaN value: {exc}"
                                 f"{f' ({bad})' if bad else ''}; no value is returned", "overrange") from exc
        volts = {w.edge: w.polarity * float(v) for w, v in zip(wires, readings)}
        self.last_scan = volts
        return volts

    def _write_codes(self, codes: dict[str, dict[int, int]]) -> None:
        for name, wanted in codes.items():
            board, held = self._boards[name], self._held[name]
            changes = {ch: code for ch, code in wanted.items() if held.get(ch) != code}
            if not changes:
                continue  # every code already held: nothing to write
            try:
                try:
                    board.write_codes(changes)
                except (BoardRebooted, WatchdogTripped):
                    self._recover_board(name)  # verified and the held codes restored first
                    board.write_codes(changes)
            except WatchdogTripped as exc:
                self._held[name] = board.read_codes(sorted(held))
                raise RigError(f"program: {exc}") from exc
            except InstrumentError:
                # Learn what the board really holds before reporting the failure.
                with contextlib.suppress(InstrumentError):
                    self._held[name] = board.read_codes(sorted(held))
                raise
            held.update(changes)

    def _dmm_safe_state(self) -> None:
        transport = self._transports[self.config.dmm.name]
        transport.discard()
        with transport.batch():
            self._dmm.safe_state()

    def _board_safe_state(self, name: str, board: ResistorBoard) -> None:
        board.safe_state()
        self._held[name] = {ch: board.info.safe_code for ch in self._held.get(name, {})}

    # ================================================================== verification
    def verify_safe(self) -> list[str]:
        """Ask every instrument whether it is safe (output off at level 0, no relay closed,
        every board channel at the safe code and no hardware shutdown), through the drivers'
        own readings; returns what is not safe, empty if all is."""
        problems = []
        with self.round_trips.call("verify_safe"):
            drivers = [(unit.name, unit.driver) for unit in self._units]
            drivers += [(self._dmm.name, self._dmm)] if self._dmm is not None else []
            drivers += list(self._boards.items())
            drivers += self._other_drivers()
            for name, driver in drivers:
                try:
                    problems += driver.unsafe()
                except InstrumentError as exc:
                    problems.append(f"{name}: cannot read its state: {exc}")
        return problems

    def _other_drivers(self) -> list[tuple[str, object]]:
        """(name, driver) of instruments a subclass adds, for verify_safe (each has unsafe())."""
        return []

    def scan_idle(self) -> dict[str, float]:
        """One scan of every mux channel without touching the sources (bench check): channel
        wiring -> volts. Raises RigError on an overrange or NaN reading."""
        with self.round_trips.call("scan_idle"):
            volts = self._guard("scan", lambda: self._scan(sorted(self._mux)))
        return {self.network.edge_names[e]: v for e, v in volts.items()}

    def snapshot(self) -> dict[str, np.ndarray]:
        """The calibrated ohms of every edge and, per tunable edge, the code its board channel
        holds (NaN elsewhere): what a resume compares the bench with."""
        codes = np.full(self.network.n_edges, np.nan)
        for edge, wire in self._board_wire.items():
            if wire.channel in self._held.get(wire.board, {}):
                codes[edge] = self._held[wire.board][wire.channel]
        return {"known_ohms": self.resistances(), "codes": codes}

    def differences(self, snapshot: dict[str, np.ndarray]) -> list[str]:
        """What the boards hold, read back now, against ``snapshot``: one line per tunable edge
        whose code (or, for a snapshot without codes, calibrated ohms) differs for a reason the
        bench does not know. A channel at its board's safe code is not one: every end of a run
        (a stop, a crash that tripped the watchdog, a restart) leaves the boards there, and a
        resume writes the checkpoint's codes over it."""
        held = self.board_codes()
        for name, codes in held.items():
            self._held[name].update(codes)
        known = np.asarray(snapshot["known_ohms"], dtype=float)
        target = np.asarray(snapshot.get("codes", np.full(self.network.n_edges, np.nan)), dtype=float)
        differences = []
        for edge, wire in sorted(self._board_wire.items()):
            now, name = held.get(wire.board, {}).get(wire.channel), self.network.edge_names[edge]
            if now == self._boards[wire.board].info.safe_code:
                continue
            if np.isfinite(target[edge]):
                if now != int(target[edge]):
                    differences.append(f"{name} ({wire.board} channel {wire.channel}) holds code {now}, the "
                                       f"checkpoint has {int(target[edge])}")
            elif now is not None and not np.isclose(self._held_ohms(edge), known[edge], rtol=1e-9, atol=0.0):
                differences.append(f"{name} holds {self._held_ohms(edge):.6g} ohm, the checkpoint has "
                                   f"{known[edge]:.6g} ohm")
        return differences

    def restore(self, snapshot: dict[str, np.ndarray], reprogram: bool = False) -> None:
        """Back to a checkpoint: the snapshot's values written and verified. A channel that holds
        neither them nor the safe code (differences()) is refused unless ``reprogram``
        (RigError listing every one): the operator decides whether the bench may be changed."""
        differences = self.differences(snapshot)
        if differences and not reprogram:
            raise RigError(f"the bench does not hold the checkpoint ({len(differences)} differences: "
                           + "; ".join(differences) + "); nothing was written. Resume with --reprogram to "
                           "write the checkpoint's values")
        if differences:
            log.warning("resume: writing the checkpoint's values over %d differences: %s", len(differences),
                        "; ".join(differences))
        super().restore(snapshot, reprogram=True)

    def board_codes(self) -> dict[str, dict[int, int]]:
        """The codes each board holds on its wired channels, read back now."""
        with self.round_trips.call("board_codes"):
            return self._guard("board_codes", lambda: {
                name: board.read_codes(sorted(self._held[name])) if self._held.get(name) else {}
                for name, board in self._boards.items()})

    @property
    def units(self) -> tuple[SourceUnit, ...]:
        """The source-measure units, inputs first (network order), then outputs."""
        return tuple(self._units)
