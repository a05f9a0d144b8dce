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
  every relay open, every board at its safe code. A failing instrument is logged and the
  others are still made safe. It may be called from another thread (an emergency stop): a
  measure() in progress then stops before its next exchange with RigError.

``round_trips`` counts exchanges per Rig call (drivers/instruments/exchanges.py); docs/bench.md tabulates
them per rule.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

from drivers.bench import report
from drivers.bench.sources import SourceState, SourceUnit
from drivers.instruments.errors import InstrumentError, ReadingError, WatchdogTripped
from drivers.instruments.exchanges import CountingTransport, JoiningTransport, RoundTrips
from drivers.instruments.keithley24xx import Keithley2400, Keithley2450, SourceLimits
from drivers.instruments.resistor_board import ResistorBoard
from drivers.instruments.scanning_voltmeter import Keysight34970A, scan_list
from hwlearn.config.bench import BenchConfig, InstrumentConfig, load_bench_file
from hwlearn.errors import HwlearnError
from hwlearn.rig import OUTPUT_MODES, Capabilities, Rig, RigError
from hwlearn.signals import deferred_interrupts

log = logging.getLogger("hwlearn.bench")

SMU_CLASSES = {"keithley2400": Keithley2400, "keithley2450": Keithley2450}


class BenchError(RigError, HwlearnError):
    """The bench cannot be opened or used: an instrument is missing, not the one the bench file
    names, or not in a state the bench may start from."""


class Bench(Rig):
    """A Rig on real (or emulated) instruments. Use ``Bench.open(path_or_config)``."""

    def __init__(self, config: BenchConfig):
        """Prefer Bench.open, which also connects; this only lays out the bench's structure."""
        self.config = config
        self.network = config.network
        self.round_trips = RoundTrips()
        self.identities: dict[str, str] = {}
        self.safe_state_failures: list[str] = []
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

    # ================================================================== opening and closing
    @classmethod
    def open(cls, source: str | Path | BenchConfig, *, clear_watchdog: bool = False,
             visa_library: str = "@py") -> Bench:
        """Validate the bench file, connect every instrument, check identities (model, serial,
        board protocol, channel count, watchdog status), reset and configure them. The board's
        watchdog having tripped is refused unless ``clear_watchdog``. On any failure every
        instrument already reached is made safe and closed, and BenchError is raised."""
        config = source if isinstance(source, BenchConfig) else load_bench_file(source)
        bench = cls(config)
        try:
            with bench.round_trips.call("open"):
                bench._connect(visa_library)
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
                                      timeout_s=inst.timeout_s, retries=inst.retries)
                self._transports[inst.name] = CountingTransport(raw, self.round_trips)
                continue
            if self._resource_manager is None:
                import pyvisa

                self._resource_manager = pyvisa.ResourceManager(visa_library)
            raw = VisaTransport(inst.resource, inst.name, timeout_s=inst.timeout_s,
                                retries=inst.retries, resource_manager=self._resource_manager)
            self._transports[inst.name] = JoiningTransport(raw, self.round_trips)
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
            self._record_identity(cfg.instruments[unit.name], unit.driver.identify())
        if self._dmm is not None:
            self._record_identity(cfg.dmm, self._dmm.identify())
        for name, board in self._boards.items():
            inst = cfg.instruments[name]
            identity = board.connect()
            self._record_identity(inst, identity)
            if inst["model"] is not None and identity.model != inst["model"]:
                raise BenchError(f"{name}: *IDN? names model {identity.model!r}; the bench file "
                                 f"expects {inst['model']!r}")
            info = board.info
            if info.channels != inst["channels"]:
                raise BenchError(f"{name}: the board reports {info.channels} channels (INFO?); "
                                 f"the bench file says channels = {inst['channels']}")
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
            if status.tripped:
                if not clear_watchdog:
                    raise BenchError(f"{name}: the board's watchdog has tripped since it was last "
                                     "cleared (a host stopped talking to it while codes were set); "
                                     "its codes went to the safe code. Open with clear_watchdog "
                                     "(hwlearn: --clear-watchdog) to acknowledge")
                board.clear_watchdog()
            wired = sorted(self.config.calibration.get(name, {}))
            self._held[name] = board.read_codes(wired) if wired else {}
            period = self.config.instruments[name]["heartbeat_s"]
            board.start_heartbeat(period)
        for unit in self._units:
            unit.setup()
        if self._dmm is not None:
            dmm = self.config.dmm
            transport = self._transports[dmm.name]
            with transport.batch():
                self._dmm.reset()
                self._dmm.configure([w.channel for w in self.config.mux], dmm["volt_range"],
                                    dmm["nplc"])

    def _abandon(self) -> None:
        """After a failed open: make safe whatever was reached, then close everything."""
        try:
            self.safe_state()
        finally:
            self._close_links()

    def close(self) -> list[str]:
        """safe_state(), stop the heartbeats, close every link. Idempotent; returns the
        safe-state failures."""
        if self._closed:
            return list(self.safe_state_failures)
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
            self._guard("apply", lambda: self._apply_staged(join_check=False))

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

    def safe_state(self) -> list[str]:
        """Every source ramped to 0 V / 0 A and off, relays open, boards at the safe code.
        Idempotent. A failing instrument is logged and returned (also kept in
        ``safe_state_failures``); the others are still made safe; nothing is raised."""
        if self._closed:
            return list(self.safe_state_failures)  # close() made the bench safe and released its links
        self._safe_generation += 1
        # A second Ctrl-C must not leave a source half-ramped: interrupts wait until the end.
        with deferred_interrupts(), self.round_trips.call("safe_state"):
            failures = []

            def attempt(what: str, action) -> None:
                try:
                    action()
                except Exception as exc:  # never past one instrument: the rest must be safe too
                    log.error("safe state of %s failed: %s", what, exc)
                    failures.append(f"{what}: {exc}")

            for unit in self._units:
                attempt(unit.name, unit.safe_state)
            if self._dmm is not None:
                attempt(self._dmm.name, self._dmm_safe_state)
            for name, board in self._boards.items():
                attempt(name, lambda n=name, b=board: self._board_safe_state(n, b))
            self.safe_state_failures = failures
        return list(failures)

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
                **report.setup(self.config, self.identities)}

    def health(self) -> dict[str, dict]:
        return report.health(self)

    # ================================================================== internals
    def _check_open(self, call: str) -> None:
        if self._closed:
            raise RigError(f"{call}: the bench {self.config.name!r} is closed")

    def _edges(self, edges, call: str) -> np.ndarray:
        try:
            return self.network.edge_indices(edges, call)
        except HwlearnError as exc:
            raise RigError(f"{call}: {exc}") from None

    @staticmethod
    def _guard(call: str, action):
        """Instrument errors surface as RigError naming the call (the Rig's one error type)."""
        try:
            return action()
        except RigError:
            raise
        except InstrumentError as exc:
            raise RigError(f"{call}: {exc}") from exc

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
        for unit, state in states.items():
            unit.requested = state

    def _still_wanted(self, generation: int, call: str) -> None:
        if generation != self._safe_generation:
            raise RigError(f"{call}: safe_state() was called meanwhile (an emergency stop?); "
                           "stopped before the next exchange, no value is returned")

    def _apply_staged(self, join_check: bool) -> set[SourceUnit]:
        """Every unit whose staged state differs gets its commands and a confirming query in one
        exchange; with ``join_check`` the last changed input ends with its compliance query
        instead (all other changes are confirmed executed before it). Returns the units whose
        compliance was so checked."""
        generation = self._safe_generation
        pending = [u for u in self._units if u.pending]
        joined = None
        if join_check:
            joined = next((u for u in reversed(pending) if u.role == "input" and u.needs_query), None)
        checked = set()
        for unit in [u for u in pending if u is not joined] + ([joined] if joined else []):
            self._still_wanted(generation, "apply")
            with unit.transport.batch():
                unit.apply()
                if unit is joined:
                    unit.check()
                    checked.add(unit)
                else:
                    unit.confirm()
        return checked

    def _measure(self, edges: np.ndarray) -> np.ndarray:
        generation = self._safe_generation
        checked = self._apply_staged(join_check=True)
        current_units = [u for u in self._outputs if u.applied.on and u.applied.function == "CURR"]
        scanned = sorted(set(edges.tolist()) | {u.edge for u in current_units})
        self._still_wanted(generation, "measure")
        volts = self._scan(scanned) if scanned else {}
        for unit in self._units:
            if unit not in checked and unit.applied.on and unit.applied.function == "VOLT":
                self._still_wanted(generation, "measure")
                unit.check(release=unit.role == "output")
        self._still_wanted(generation, "measure")
        for unit in current_units:
            problem = unit.current_mode_problem(volts[unit.edge], self.config.compliance_margin)
            if problem:
                raise RigError(f"measure: {problem}; no value is returned")
        return np.array([volts[e] for e in edges.tolist()], dtype=float)

    def _scan(self, edges: list[int]) -> dict[int, float]:
        """Resistor volts (v = p[a] - p[b] - s, by each channel's polarity) from one scan."""
        wires = [self._mux[e] for e in edges]
        transport = self._transports[self.config.dmm.name]
        try:
            with transport.batch():
                readings = self._dmm.measure([w.channel for w in wires])
        except ReadingError as exc:
            bad = ", ".join(f"channel {w.channel} spans {w.edge_name}" for w in wires
                            if f"channel {w.channel} " in str(exc))
            raise RigError(f"measure: the scan read an overrange or NaN value: {exc}"
                           f"{f' ({bad})' if bad else ''}; no value is returned") from exc
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
        every board channel at the safe code); returns what is not, empty if all is safe."""
        problems = []
        with self.round_trips.call("verify_safe"):
            for unit in self._units:
                d, t = unit.driver, unit.transport
                try:
                    function = t.query(d.FUNCTION_QUERY).strip().strip('"').upper()[:4]
                    level = float(t.query(d.LEVEL_QUERY["CURR" if function == "CURR" else "VOLT"]))
                    output = t.query(d.OUTPUT_QUERY).strip()
                    if output != "0" or level != 0.0:
                        problems.append(f"{unit.name}: output {'on' if output == '1' else output}, "
                                        f"level {level:g}")
                except (InstrumentError, ValueError) as exc:
                    problems.append(f"{unit.name}: cannot read its state: {exc}")
            if self._dmm is not None:
                try:
                    listed = scan_list(self._dmm.channels)
                    closed = self._transports[self._dmm.name].query(f"ROUT:CLOS? {listed}")
                    shut = [ch for ch, flag in zip(self._dmm.channels, closed.split(",")) if flag.strip() == "1"]
                    if shut:
                        problems.append(f"{self._dmm.name}: relays {shut} are closed")
                except InstrumentError as exc:
                    problems.append(f"{self._dmm.name}: cannot read its relays: {exc}")
            for name, board in self._boards.items():
                try:
                    held = board.read_codes()
                    wrong = {ch: c for ch, c in held.items() if c != board.info.safe_code}
                    if wrong:
                        problems.append(f"{name}: channels {wrong} are not at the safe code "
                                        f"{board.info.safe_code}")
                except InstrumentError as exc:
                    problems.append(f"{name}: cannot read its codes: {exc}")
        return problems

    def scan_idle(self) -> dict[str, float]:
        """One scan of every mux channel without touching the sources (bench check): channel
        wiring -> volts. Raises RigError on an overrange or NaN reading."""
        with self.round_trips.call("scan_idle"):
            volts = self._guard("scan", lambda: self._scan([w.edge for w in self.config.mux]))
        return {self.network.edge_names[e]: v for e, v in volts.items()}

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
