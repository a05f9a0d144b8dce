"""A crossbar bench: the Bench on a crossbar whose lines reach the instruments through a switch
matrix, its crosspoints memristive devices written by pulses (docs/crossbar.md).

    bench = open_bench("examples/virtual-crossbar.toml")      # drivers.bench.open_bench
    with bench:
        ...  # the Rig, as any Bench

Two routings, each entered only with every source at 0 V or off (the matrix driver asks
``cold_problem`` before every switch and refuses otherwise):

- **measure**: every port line on its unit (the channels ``[crossbar.lines.<line>].unit``
  closed), the programming bus on no line. The rule's phases run here exactly as on a resistor
  board bench (drivers/bench/rig.py): inputs in series with their edges, outputs across their
  loads, one scan per phase; no relay moves between phases or steps. The voltmeter reads each
  sensed line to ground; a crosspoint's voltage is the difference of its two lines'.
- **program**: entered by ``program()`` for the crosspoints whose targets moved beyond the
  tolerance. The visits of hwlearn.crossbar.schedule (the fewest relay operations) move one line
  at a time from its unit onto the programming bus (break before make: unit channel open, read
  back, bus channel closed, read back) and write its crosspoints by the V/2 scheme: every other
  line held at 0 V by its unit (outputs switch to clamps at 0 V), the crosspoint's other line
  (the holding line) at -v/2 by its unit while the programmer pulses +v/2 (source auto clear:
  the output on only for the pulse), so the device sees v and every half-selected device at most
  v/2 < disturb_volts. A verify read holds the other line at the read voltage and reads the
  current the programmer sources at 0 V: only the addressed device carries it, every other line
  being at 0 V (the sneak paths carry nothing). Each write is hwlearn.crossbar.write_verify;
  every pulse is logged (``take_records``) and the holding unit's compliance checked after it.

Limits beyond the Bench's: training drives are checked before any byte against
``disturb_volts`` on every crosspoint (the staged sources solved on the network, as a board's
terminal ratings are: CrosspointRatings), and again on every scan; pulses are bounded by
PulseLimits (amplitude, width, count), the programmer's compliance is always set, and a target
outside the device window is refused with nothing sent.

The safe state brings every source to 0 and off at once (the units, the programmer, the
scanner), then opens every relay of the matrix, and reads them back.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np

from drivers.bench.ratings import BoardRatings
from drivers.bench.rig import Bench, BenchError
from drivers.bench.safe_state import SafeStateReport
from drivers.bench.sources import SourceUnit
from drivers.instruments.errors import ReadingError
from drivers.instruments.exchanges import JoiningTransport
from drivers.instruments.keithley24xx import Keithley2400, SmuReading, SourceLimits
from drivers.instruments.switch_matrix import MATRIX_DRIVERS, SwitchMatrix
from hwlearn.config.bench import BenchConfig, InstrumentConfig
from hwlearn.crossbar import READ, CrossbarLayout, Pulse, Write, relay_operations, schedule, write_verify
from hwlearn.rig import Capabilities, RigError
from hwlearn.solver import KirchhoffSolver

log = logging.getLogger("hwlearn.bench.crossbar")

PULSE_FIELDS = ("pulse_volts", "pulse_width_s", "pulse_g_before_siemens", "pulse_g_after_siemens",
                "pulse_compliance")


class CrosspointRatings(BoardRatings):
    """No crosspoint beyond ``crossbar.disturb_volts`` outside a pulse: predicted from the staged
    sources before any byte, checked on every scan (BoardRatings' machinery)."""

    def __init__(self, config: BenchConfig):
        super().__init__(config)
        self.disturb = config.crossbar.disturb_volts
        layout = CrossbarLayout.of(config.network)
        self.channels = dict(layout.crosspoints)
        self._solver = KirchhoffSolver(self.network)

    def _problem(self, edges, volts, amps, verb):
        for edge, v in zip(edges.tolist(), volts.tolist()):
            if abs(v) > self.disturb:
                name = self.network.edge_names[edge]
                return (f"{verb} {v:.4g} V across crosspoint {name}, beyond crossbar.disturb_volts = "
                        f"{self.disturb:g} V (a device would change outside a pulse)")
        return None


class Programmer:
    """The pulse source: a 2400 with source auto clear on the programming bus."""

    def __init__(self, inst: InstrumentConfig, driver: Keithley2400, transport: JoiningTransport, xb):
        self.inst, self.driver, self.transport, self.xb = inst, driver, transport, xb
        self.name = inst.name
        self.pulses = 0
        self.compliance_hits = 0
        self.last: SmuReading | None = None
        self.line_frequency = 50.0
        self.at_zero = True   # level 0 and the output off (auto clear) as far as the bench knows

    def setup(self) -> None:
        d = self.driver
        with self.transport.batch():
            d.safe_state()
            d.reset()
            # NORMal output-off: between pulses it holds its line at 0 V (and its output relay
            # stays closed: a HIMP relay would click at every pulse).
            d.set_output_off_mode("NORM")
        self.line_frequency = d.line_frequency.read()
        integration = self.xb.pulse_nplc / self.line_frequency
        with self.transport.batch():
            d.configure_pulses(self.xb.compliance_amps, max(self.xb.limits.width_s - integration, 0.0),
                               self.xb.pulse_nplc)

    def pulse(self, volts: float) -> SmuReading:
        """One pulse (0 V: a current reading); the level is back at 0 when it returns."""
        self.at_zero = False
        with self.transport.batch():
            self.last = self.driver.pulse(volts)
        self.at_zero = True
        return self.last

    def safe_state(self) -> None:
        self.transport.discard()
        with self.transport.batch():
            self.driver.safe_state()
        self.at_zero = True


class CrossbarBench(Bench):
    """A Bench whose board is a crossbar of memristive devices on a switch matrix (module
    docstring). Open it with ``drivers.bench.open_bench`` (or ``CrossbarBench.open``)."""

    def __init__(self, config: BenchConfig, faults=None):
        if config.crossbar is None:
            raise BenchError(f"bench {config.name!r} ({config.source}) has no [crossbar] table")
        super().__init__(config, faults)
        self.crossbar = config.crossbar
        self.layout = CrossbarLayout.of(config.network)
        self._ratings = CrosspointRatings(config)
        self._mux = dict(self.crossbar.sensed)  # edge -> (plus line, minus line): what a scan reads
        self._matrix: SwitchMatrix | None = None
        self._programmer: Programmer | None = None
        self._routing = "open"   # 'measure', 'program <line>' or 'open' (every relay open)
        self._known: dict[int, float] = {e: math.nan for e in self.crossbar.tunable}  # siemens read
        self._stuck: set[int] = set()
        self._slots = {e: k for k, e in enumerate(self.crossbar.tunable)}
        self._pulse_log: dict[int, list[tuple]] = {}
        self._counts = {"pulses": 0, "compliance_hits": 0, "writes": 0, "writes_failed": 0, "pulses_unrecorded": 0,
                        "relay_operations_minimum": 0}
        self._taken = {"relay_operations": 0, **{k: 0 for k in self._counts}}

    # ================================================================== opening
    def _connect(self, visa_library: str) -> None:
        super()._connect(visa_library)
        xb, cfg = self.crossbar, self.config
        matrix = cfg.instruments[xb.matrix]
        self._matrix = MATRIX_DRIVERS[matrix.driver](self._transports[matrix.name], name=matrix.name,
                                                     cards=matrix["slots"], forbidden=matrix["forbidden"],
                                                     cold_check=self.cold_problem, model=matrix["model"])
        prog = cfg.instruments[xb.programmer]
        limits = SourceLimits(prog["max_volts"], prog["max_amps"], prog["max_watts"], prog["ramp_volts"],
                              prog["ramp_amps"])
        driver = Keithley2400(self._transports[prog.name], limits, name=prog.name,
                              measure_timeout_s=prog["measure_timeout_s"])
        self._programmer = Programmer(prog, driver, self._transports[prog.name], xb)
        self._line_units = {}
        for unit in self._units:
            line = next(name for name, w in xb.lines.items() if w.port_edge == unit.edge)
            self._line_units[line] = unit

    def _identify(self) -> None:
        super()._identify()
        cfg = self.config
        self._record_identity(cfg.instruments[self._matrix.name], self._matrix.identify())
        self._record_identity(cfg.instruments[self._programmer.name], self._programmer.driver.identify())

    def _setup(self, clear_watchdog: bool) -> None:
        super()._setup(clear_watchdog)
        self._programmer.setup()
        self._matrix.reset()
        self._routing = "open"
        self._route_measure(self._safe_generation)

    def _scan_channels(self) -> list[int]:
        return sorted(w.sense for w in self.crossbar.lines.values() if w.sense is not None)

    def _reconnect_other(self, name: str, inst: InstrumentConfig) -> None:
        if name == self._matrix.name:
            self._record_identity(inst, self._matrix.identify())
            self._matrix.reset()
            self._routing = "open"
            return
        if name == self._programmer.name:
            self._record_identity(inst, self._programmer.driver.identify())
            self._programmer.setup()
            return
        super()._reconnect_other(name, inst)

    # ================================================================== the routings
    def cold_problem(self) -> str | None:
        """Why switching a relay now would be hot (a source on at a nonzero level, or in a state
        not known), from what the bench has applied; None when every source is at 0 or off."""
        hot = []
        for unit in self._units:
            state = unit.applied
            if state.function not in ("VOLT", "CURR"):
                hot.append(f"{unit.name} in an unknown state")
            elif state.on and state.level != 0.0:
                hot.append(f"{unit.name} sources {state.describe()}")
        prog = self._programmer
        if prog is not None and not prog.at_zero:
            hot.append(f"{prog.name} not known to be at 0 V (a pulse did not end)")
        return "; ".join(hot) or None

    def _route_measure(self, generation: int) -> None:
        """Every port line on its unit, the programming bus on no line."""
        if self._routing == "measure":
            return
        self._still_wanted(generation, "route")
        xb = self.crossbar
        units = [w.unit_channel for w in xb.lines.values() if w.unit_channel]
        prog = [w.prog_channel for w in xb.lines.values() if w.prog_channel]
        closed = {c.name for c in self._matrix.known_closed}
        with self._matrix.transport.lock:
            self._still_wanted(generation, "route")
            self._matrix.route(open=[c for c in prog if c in closed], close=[c for c in units if c not in closed])
        self._routing = "measure"

    def _measure(self, edges: np.ndarray) -> np.ndarray:
        self._route_measure(self._safe_generation)
        return super()._measure(edges)

    def _scan(self, edges: list[int], generation: int | None = None) -> dict[int, float]:
        """Crosspoint and output volts from one scan of the lines they touch."""
        wires = self.crossbar.lines
        lines = sorted({line for e in edges for line in self._mux[e] if line is not None})
        channels = [wires[line].sense for line in lines]
        transport = self._transports[self.config.dmm.name]
        try:
            with transport.batch():
                if generation is not None:
                    self._still_wanted(generation, "measure")
                readings = self._dmm.measure(channels)
        except ReadingError as exc:
            bad = ", ".join(f"channel {wires[line].sense} reads line {line}" for line in lines
                            if wires[line].sense in exc.channels)
            raise RigError(f"measure: the scan read an overrange or NaN value: {exc}"
                           f"{f' ({bad})' if bad else ''}; no value is returned") from exc
        line_volts = {line: float(v) for line, v in zip(lines, readings)}
        volts = {}
        for e in edges:
            plus, minus = self._mux[e]
            volts[e] = (line_volts[plus] if plus else 0.0) - (line_volts[minus] if minus else 0.0)
        self.last_scan = volts
        return volts

    # ================================================================== the Rig
    def _capabilities(self) -> Capabilities:
        caps = super()._capabilities()
        xb = self.config.crossbar
        readable = sorted(set(xb.readable) | {w.edge for w in self.config.outputs})
        return Capabilities(caps.output_modes, np.array(readable, dtype=np.int64),
                            np.array(xb.tunable, dtype=np.int64), True,
                            ("outputs and crosspoints are read by one scan of the lines they touch",
                             "crosspoints are written by pulses through the switch matrix (V/2 scheme)",
                             "source changes are staged and applied by the next measure()"))

    def resistances(self) -> np.ndarray:
        """Nominal ohms of fixed edges and of devices not read yet; 1 / the last conductance
        read of every other device."""
        ohms = np.array(self.network.resistance, dtype=float)
        for edge, g in self._known.items():
            if math.isfinite(g) and g > 0:
                ohms[edge] = 1.0 / g
        return ohms

    def ohms_range(self) -> tuple[np.ndarray, np.ndarray]:
        low = np.array(self.network.resistance, dtype=float)
        high = low.copy()
        for edge in self.crossbar.tunable:
            g_low, g_high = self.crossbar.window(self.network.edge_names[edge])
            low[edge], high[edge] = 1.0 / g_high, 1.0 / g_low
        return low, high

    def program(self, edges, ohms) -> np.ndarray:
        """Write and verify every device of ``edges`` to ``ohms`` by pulses (module docstring);
        returns 1 / the conductance each one read last. A device within the tolerance of its
        last read is not touched; a stuck one (no response at the highest amplitude) is not
        pulsed again. A target outside the device window raises RigError, nothing sent."""
        with self.round_trips.call("program"):
            self._check_open("program")
            edges = self._edges(edges, "program")
            ohms = np.asarray(ohms, dtype=float).reshape(-1)
            if ohms.shape != edges.shape:
                raise RigError(f"program: {ohms.size} resistances for {edges.size} edges")
            if len(set(edges.tolist())) != edges.size:
                raise RigError("program: an edge is listed twice")
            targets = {}
            for edge, target in zip(edges.tolist(), ohms.tolist()):
                name = self.network.edge_names[edge]
                if edge not in self._known:
                    raise RigError(f"program: edge {name} is not a crosspoint this bench can write; nothing was sent")
                g_low, g_high = self.crossbar.window(name)
                if not (math.isfinite(target) and target > 0 and g_low * (1 - 1e-9) <= 1 / target
                        <= g_high * (1 + 1e-9)):
                    raise RigError(f"program: edge {name}: {target!r} ohm is outside the device window "
                                   f"{1 / g_high:.6g} .. {1 / g_low:.6g} ohm; nothing was sent")
                targets[edge] = min(max(1.0 / target, g_low), g_high)
            tolerance = self.crossbar.limits.tolerance_siemens
            todo = [e for e in edges.tolist() if e not in self._stuck
                    and not abs(targets[e] - self._known[e]) <= tolerance]
            if todo:
                self._guard("program", lambda: self._write(todo, targets))
            return np.array([1.0 / self._known[e] if math.isfinite(self._known[e]) and self._known[e] > 0
                             else self.network.resistance[e] for e in edges.tolist()])

    def restore(self, snapshot: dict[str, np.ndarray]) -> None:
        """Back to a snapshot: every tunable device written to the resistance the snapshot read
        (one outside the programmable window, a stuck device, only read), and verified within
        the write tolerance: a pulse-programmed device cannot return exactly. RigError naming
        every device that is not back."""
        tunable = np.asarray(self.capabilities.tunable, dtype=np.int64)
        low, high = self.ohms_range()
        target = np.asarray(snapshot["known_ohms"], dtype=float)[tunable]
        inside = (target >= low[tunable] * (1 - 1e-9)) & (target <= high[tunable] * (1 + 1e-9))
        if np.any(inside):
            self.program(tunable[inside], np.clip(target[inside], low[tunable][inside], high[tunable][inside]))
        if np.any(~inside):
            self.read_devices(tunable[~inside])
        achieved = self.resistances()[tunable]
        tolerance = self.crossbar.limits.tolerance_siemens
        wrong = np.flatnonzero(np.abs(1 / achieved - 1 / target) > tolerance)
        if wrong.size:
            lines = [f"{self.network.edge_names[tunable[i]]} reads {achieved[i]:.6g} ohm, the snapshot has "
                     f"{target[i]:.6g} ohm" for i in wrong]
            raise RigError("the crossbar cannot return to the snapshot within the write tolerance "
                           f"({tolerance:.3g} S): " + "; ".join(lines))

    # ================================================================== programming
    def _write(self, todo: list[int], targets: Mapping[int, float]) -> None:
        self._visit(todo, lambda write, hold, generation: self._write_one(write, targets[write.edge], generation))

    def _visit(self, edges: list[int], action) -> None:
        """``action(write, holding unit, generation)`` for every device of ``edges``, in the visits
        of the schedule: the programming line onto the bus, its devices, the line back; every unit
        at 0 meanwhile (outputs clamped), and the measure routing again at the end."""
        generation = self._safe_generation
        xb = self.crossbar
        visits = schedule([self.layout.crosspoints[e] for e in edges], xb.access, xb.layers)
        # The fewest relay operations the wiring allows for these devices (what the visits make).
        self._counts["relay_operations_minimum"] += relay_operations(visits)
        self._route_measure(generation)
        self._program_mode(generation, on=True)
        try:
            for visit in visits:
                line = xb.lines[visit.line]
                self._route(generation, open=[line.unit_channel], close=[line.prog_channel],
                            state=f"program {line.line}")
                try:
                    for write in visit.writes:
                        hold = self._line_units[write.hold_line]
                        try:
                            action(write, hold, generation)
                        finally:
                            if generation == self._safe_generation:
                                self._hold(hold, 0.0, generation)
                finally:
                    if generation == self._safe_generation:
                        self._route(generation, open=[line.prog_channel], close=[line.unit_channel], state="measure")
        finally:
            if generation == self._safe_generation:
                self._program_mode(generation, on=False)

    def read_devices(self, edges) -> np.ndarray:
        """Read ``edges``' conductances (siemens) without a pulse: a visit per programming line, a
        read per device (the bench then knows them, ``resistances()``)."""
        with self.round_trips.call("read_devices"):
            self._check_open("read_devices")
            edges = self._edges(edges, "read_devices")
            unknown = [self.network.edge_names[e] for e in edges.tolist() if e not in self._known]
            if unknown:
                raise RigError(f"read_devices: {', '.join(unknown)} are not crosspoints this bench can reach; "
                               "nothing was sent")

            def read(write, hold, generation):
                self._known[write.edge] = self._read(write, hold, generation)
            self._guard("read_devices", lambda: self._visit(edges.tolist(), read))
            return np.array([self._known[e] for e in edges.tolist()])

    def _route(self, generation: int, *, open, close, state: str) -> None:
        with self._matrix.transport.lock:
            self._still_wanted(generation, "program")
            self._routing = "unknown"
            self._matrix.route(open=[c for c in open if c], close=[c for c in close if c])
            self._routing = state

    def _program_mode(self, generation: int, on: bool) -> None:
        """Every unit at 0: inputs sourcing 0 V, outputs clamped at 0 V (on) or back to open."""
        for unit in self._units:
            if unit.role == "input":
                unit.requested = unit.series_state(0.0)
            elif on and unit.compliance["VOLT"] is not None:
                unit.requested = unit.clamp_state(0.0)
            else:
                unit.requested = unit.open_state_for("CURR" if unit.compliance["CURR"] is not None else "VOLT")
        self._apply_staged(generation, join_check=False)

    def _hold(self, unit: SourceUnit, line_volts: float, generation: int) -> None:
        """The holding line's unit to ``line_volts`` on its line (checked: its own limits and the
        bench's total power), applied and confirmed."""
        state = unit.series_state(line_volts) if unit.role == "input" else unit.clamp_state(line_volts)
        problem = unit.limit_problem(state)
        if problem:
            raise RigError(f"program: {unit.label}: {problem}; nothing was sent")
        total = sum(u.worst_case_watts(state if u is unit else u.requested) for u in self._units)
        if total > self.config.max_total_watts:
            raise RigError(f"program: the sources' worst-case power would be {total:g} W, above "
                           f"bench.max_total_watts = {self.config.max_total_watts:g} W; nothing was sent")
        unit.requested = state
        self._apply_staged(generation, join_check=False)

    def _pulse(self, volts: float, generation: int) -> SmuReading:
        prog = self._programmer
        with prog.transport.lock:
            self._still_wanted(generation, "program")
            return prog.pulse(volts)

    def _read(self, write: Write, hold: SourceUnit, generation: int) -> float:
        """The device's conductance at the read voltage: the holding line at -sign x read volts,
        the programming line at 0 V measuring the current the device alone carries."""
        xb = self.crossbar
        self._hold(hold, -write.sign * xb.read_volts, generation)
        amps = self._pulse(0.0, generation).amps
        return write.sign * amps / xb.read_volts

    def _device_pulse(self, write: Write, hold: SourceUnit, volts: float, generation: int) -> SmuReading:
        """One pulse of ``volts`` across the device (a minus b): the holding line at -v/2, the
        programming line pulsed to +v/2 (signs mirrored when the programming line is the b
        side); the holding unit's compliance checked after it."""
        low, high = self.crossbar.limits.amplitudes(1 if volts > 0 else -1)
        if not (math.isfinite(volts) and low <= abs(volts) <= high):
            raise RigError(f"program: a pulse of {volts!r} V is outside the amplitudes {low:g} .. {high:g} V of its "
                           "polarity (crossbar.set_volts / reset_volts); nothing was sent")
        half = volts / 2
        self._hold(hold, -write.sign * half, generation)
        reading = self._pulse(write.sign * half, generation)
        with hold.transport.lock:
            self._still_wanted(generation, "program")
            hold.check()   # a holding unit in compliance would leave the device short of v
        self._counts["pulses"] += 1
        self._counts["compliance_hits"] += int(reading.in_compliance)
        self._programmer.pulses += 1
        self._programmer.compliance_hits += int(reading.in_compliance)
        return reading

    def _write_one(self, write: Write, target: float, generation: int) -> None:
        hold = self._line_units[write.hold_line]
        plan = write_verify(target, self.crossbar.limits)
        request = next(plan)
        g_before, pending = math.nan, None
        try:
            while True:
                if request is READ:
                    g = self._read(write, hold, generation)
                    if pending is not None:
                        self._log(write.edge, *pending, g_before, g)
                        pending = None
                    g_before = g
                    request = plan.send(g)
                elif isinstance(request, Pulse):
                    reading = self._device_pulse(write, hold, request.volts, generation)
                    pending = (request.volts, request.width_s, reading.in_compliance)
                    request = plan.send(reading.in_compliance)
                else:
                    raise RigError(f"program: write-and-verify asked for {request!r}")
        except StopIteration as done:
            outcome = done.value
        self._known[write.edge] = outcome.siemens
        self._counts["writes"] += 1
        if not outcome.converged:
            self._counts["writes_failed"] += 1
            name = self.network.edge_names[write.edge]
            log.warning("write of %s not verified: %s", name, outcome.reason)
            if outcome.stuck:
                self._stuck.add(write.edge)

    # ================================================================== characterisation
    def characterise(self, edges, volts: float, pulses: int, cycles: int = 1,
                     floor_pulses: int | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Each device's response to pulses of ``volts`` (device volts, within both the SET and
        the RESET range) and the bench's pulse width: ``floor_pulses`` RESET pulses (default
        ``pulses``), a read, then ``cycles`` times ``pulses`` SET pulses and ``pulses`` RESET
        pulses with a read after each. Returns edge -> (reads in siemens (N+1,), polarity of
        each pulse (N,)). Every pulse is logged and counted as a write's are; the devices end at
        the floor of their last RESET run."""
        with self.round_trips.call("characterise"):
            self._check_open("characterise")
            edges = self._edges(edges, "characterise")
            xb = self.crossbar
            for (low, high), what in ((xb.limits.set_volts, "SET"), (xb.limits.reset_volts, "RESET")):
                if not (math.isfinite(volts) and low <= volts <= high):
                    raise RigError(f"characterise: {volts!r} V is outside the {what} amplitudes {low:g} .. "
                                   f"{high:g} V (crossbar.{what.lower()}_volts); nothing was sent")
            for edge in edges.tolist():
                if edge not in self._known:
                    raise RigError(f"characterise: edge {self.network.edge_names[edge]} is not a crosspoint this "
                                   "bench can write; nothing was sent")
            for what, count in (("pulses", pulses), ("cycles", cycles), ("floor_pulses", floor_pulses or 1)):
                if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100_000:
                    raise RigError(f"characterise: {what} = {count!r}: an integer 1 .. 100000; nothing was sent")
            floor = pulses if floor_pulses is None else floor_pulses
            return self._guard("characterise", lambda: self._characterise(edges.tolist(), volts, pulses, cycles,
                                                                          floor))

    def _characterise(self, edges, volts, pulses, cycles, floor) -> dict:
        width = self.crossbar.limits.width_s
        traces = {}

        def trace(write, hold, generation):
            for _ in range(floor):
                self._device_pulse(write, hold, -volts, generation)
            reads, polarity = [self._read(write, hold, generation)], []
            for _ in range(cycles):
                for sign in (1, -1):
                    for _ in range(pulses):
                        reading = self._device_pulse(write, hold, sign * volts, generation)
                        reads.append(self._read(write, hold, generation))
                        polarity.append(sign)
                        self._log(write.edge, sign * volts, width, reading.in_compliance, reads[-2], reads[-1])
            self._known[write.edge] = reads[-1]
            traces[write.edge] = (np.array(reads), np.array(polarity, dtype=int))
        self._visit(edges, trace)
        return traces

    def _log(self, edge: int, volts: float, width: float, limited: bool, before: float, after: float) -> None:
        entries = self._pulse_log.setdefault(edge, [])
        if len(entries) >= self._capacity:
            self._counts["pulses_unrecorded"] += 1
            return
        entries.append((volts, width, before, after, 1.0 if limited else 0.0))

    @property
    def _capacity(self) -> int:
        return 2 * self.crossbar.limits.max_pulses

    # ================================================================== records and health
    def take_records(self) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Since the last call: relay operations (and the fewest the wiring allows for the writes
        made), pulses, compliance hits, writes and writes not verified (scalars), and every pulse
        (arrays (tunable devices, 2 x max_pulses), NaN where no pulse; rows in the order of the
        bench's tunable crosspoints): its device volts, width, conductance read before and after
        it, and whether it hit the programmer's compliance."""
        now = {"relay_operations": self._matrix.operations if self._matrix is not None else 0, **self._counts}
        scalars = {key: float(now[key] - self._taken[key]) for key in now}
        self._taken = now
        arrays = {name: np.full((len(self._slots), self._capacity), np.nan) for name in PULSE_FIELDS}
        for edge, entries in self._pulse_log.items():
            for k, entry in enumerate(entries):
                for name, value in zip(PULSE_FIELDS, entry):
                    arrays[name][self._slots[edge], k] = value
        self._pulse_log = {}
        return scalars, arrays

    def health(self) -> dict[str, dict]:
        out = super().health()
        connected = not self._closed
        exchanges = self.round_trips.by_instrument
        if self._matrix is not None:
            out[self._matrix.name] = {
                "connected": connected, "routing": self._routing,
                "relays_closed": len(self._matrix.known_closed), "relay_operations": self._matrix.operations,
                "hot_openings": self._matrix.hot_openings, "exchanges": exchanges.get(self._matrix.name, 0)}
        prog = self._programmer
        if prog is not None:
            out[prog.name] = {
                "connected": connected, "role": "programmer", "output_on": False, "output_volts": 0.0,
                "last_volts": None if prog.last is None else prog.last.volts,
                "last_amps": None if prog.last is None else prog.last.amps,
                "in_compliance": None if prog.last is None else prog.last.in_compliance,
                "pulses": prog.pulses, "compliance_hits": prog.compliance_hits,
                "writes_failed": self._counts["writes_failed"], "stuck_devices": len(self._stuck),
                "exchanges": exchanges.get(prog.name, 0)}
        for failure in self.safe_state_failures:
            who = failure.split(":", 1)[0]
            if who in out:
                out[who]["safe_state_failure"] = failure
        return out

    # ================================================================== safe state
    def _safe_actions(self, within) -> dict:
        if self._programmer is None:
            return {}
        return {self._programmer.name: within(self._programmer.name, self._programmer.safe_state)}

    def _safe_actions_after(self, within, first: SafeStateReport) -> dict:
        if self._matrix is None:
            return {}
        name = self._matrix.name

        def open_every_relay():
            self._routing = "unknown"
            self._matrix.safe_state()
            self._routing = "open"
        return {name: within(name, open_every_relay)}

    def _other_drivers(self) -> list[tuple[str, object]]:
        found = []
        if self._programmer is not None:
            found.append((self._programmer.name, self._programmer.driver))
        if self._matrix is not None:
            found.append((self._matrix.name, self._matrix))
        return found

    def idle(self) -> None:
        """Every source at 0 and off (the programmer too), the devices and the routing kept."""
        super().idle()
        if self._programmer is not None:
            self._guard("idle", self._programmer.safe_state)


def open_bench(source, **options) -> Bench:
    """A Bench, or a CrossbarBench for a bench file with [crossbar], opened (Bench.open's
    options)."""
    from hwlearn.config.bench import load_bench_file

    config = source if isinstance(source, BenchConfig) else load_bench_file(source)
    cls = CrossbarBench if config.crossbar is not None else Bench
    return cls.open(config, **options)


def bench_class(config: BenchConfig) -> type[Bench]:
    """The Bench class for a bench file: CrossbarBench with [crossbar], else Bench."""
    return CrossbarBench if config.crossbar is not None else Bench


__all__ = ["CrossbarBench", "CrosspointRatings", "bench_class", "open_bench"]
