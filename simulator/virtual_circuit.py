"""The physics behind the virtual bench: one SimulatedCircuit that every emulator talks to.

An InstrumentBackend (simulator/instrument_backend.py) built from a validated bench file (a
hwlearn.config.bench.BenchConfig, used by attribute only). What each instrument is in the circuit
(sign conventions of hwlearn.network; a unit's polarity P is +1 when HI is at the edge's a node):

- an input unit, in series with its edge's resistor: sourcing volts V, the edge's series source
  s = P V; sourcing current I, a branch that carries i = -P I from a to b whatever the resistor
  (modelled as the edge opened and a current source beside it); output off, an open branch
  (simulator.circuit.OPEN_OHMS).
- an output unit, across its edge's resistor: sourcing volts V, a clamp holding v = P V
  (Excitation.clamp); sourcing current I, a current source j = -P I beside the resistor from a
  to b; output off, nothing.
- compliance as a real unit does it: sourcing volts, if |I| would exceed the current limit the
  unit becomes a current source at the limit (and reports compliance); sourcing current, if |V|
  would exceed the voltage limit it becomes a voltage source at the limit. A limited unit
  returns to its programmed source when the network no longer asks for more. The consistent
  set of limited units is found by switching one unit at a time, the most violated first.
- a multiplexer channel reads the voltage of the resistor it spans (P v), with the device
  model's read noise; a channel spanning no edge reads 0 V. With ``dmm_loading`` the meter's
  input resistance R_in (10 MOhm or 10 GOhm, as the 34970A emulator reports per channel) is
  across the resistor while it is read: the reading is the open-circuit voltage times
  R_in / (R_in + R_th), R_th the Thevenin resistance the meter sees (exact for the linear
  network: one extra solve, unit currents beside every read edge, sources zeroed). Off by
  default: the virtual bench is then the simulated rig's exact twin (a 1 kOhm network read
  through 10 MOhm is off by about 1e-4 relative, below any realistic read noise).
- faults a test or the fault plan can switch on: ``stick(board, channel)`` makes a board channel
  ignore writes (a dead potentiometer), ``start_drift(edge, per_read, per_second)`` makes an
  edge's true resistance drift, relative, with every scan and with time, while the host still
  believes the value it wrote.
- a board channel's code becomes its edge's resistance through the calibration (``truth``, the
  bench file's own calibration unless another is given), so a perfect calibration makes the
  resistances the host knows equal the true ones.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hwlearn.solver import Excitation
from simulator.circuit import OPEN_OHMS, SimulatedCircuit
from simulator.devices import DeviceModel
from simulator.instrument_backend import SourceReading, SourceSetting

# Relative slack when comparing a unit's volts or amps with its limit: solver round-off must not
# make a unit flicker in and out of compliance.
LIMIT_SLACK = 1e-9


@dataclass(frozen=True)
class Unit:
    name: str
    role: str      # 'series' (input) or 'parallel' (output)
    edge: int
    polarity: int


@dataclass(frozen=True)
class UnitState:
    """A unit's terminals in the settled circuit: volts HI-LO, amps out of HI, limited?"""

    volts: float
    amps: float
    limited: bool


class VirtualCircuit:
    """One simulated circuit behind every emulator of a bench file."""

    def __init__(self, config, *, read_noise_volts: float = 0.0, seed: int = 0,
                 truth: Mapping[str, Mapping[int, object]] | None = None, backend: str = "auto",
                 dmm_loading: bool = False, clock=time.monotonic, nonlinearity=None):
        self.config = config
        self.network = config.network
        self.lock = threading.RLock()
        self.truth = truth if truth is not None else config.calibration
        self.units = {w.smu: Unit(w.smu, "series", w.edge, w.polarity) for w in config.inputs}
        self.units.update({w.smu: Unit(w.smu, "parallel", w.edge, w.polarity) for w in config.outputs})
        self.settings: dict[str, SourceSetting] = {name: SourceSetting() for name in self.units}
        self.channels = {w.channel: (w.edge, w.polarity) for w in config.mux}
        self.board_edges = {(w.board, w.channel): w.edge for w in config.board_wiring}
        self.codes: dict[str, dict[int, int]] = {}
        ohms = [r for table in self.truth.values() for cal in table.values() for r in cal.ohms]
        bounds = (min(ohms), max(ohms)) if ohms else (1e-3, 1e12)
        device = DeviceModel(r_min=bounds[0], r_max=bounds[1], read_noise_volts=read_noise_volts)
        self.circuit = SimulatedCircuit(self.network, device, np.random.default_rng(seed),
                                        backend=backend, nonlinearity=nonlinearity)
        # Test hooks: a mux channel or a unit that reads this value instead of the physics.
        self.fault_channels: dict[int, float] = {}
        self.fault_sources: dict[str, float] = {}
        self.dmm_loading = dmm_loading
        self.clock = clock
        self.stuck: set[tuple[str, int]] = set()
        self.drifts: dict[int, tuple[float, float, float]] = {}  # edge -> per read, per s, since
        self._topology: tuple[tuple[int, ...], list[int]] = ((), [])
        self._settled: tuple[dict[str, UnitState], np.ndarray] | None = None

    # ================================================================== InstrumentBackend
    def apply_source(self, name: str, setting: SourceSetting) -> None:
        with self.lock:
            self.settings[name] = setting
            self._settled = None

    def read_source(self, name: str) -> SourceReading:
        with self.lock:
            if name in self.fault_sources:
                value = self.fault_sources[name]
                return SourceReading(value, value, False)
            if name not in self.units:
                return SourceReading(0.0, 0.0, False)  # a unit wired to nothing
            state = self.settle()[0][name]
            return SourceReading(state.volts, state.amps, state.limited)

    def read_channels(self, channels: Sequence[int],
                      input_ohms: Sequence[float] | None = None) -> list[float]:
        with self.lock:
            self._drift()
            resistor_volts = self.settle()[1]
            if self.dmm_loading and input_ohms is not None:
                resistor_volts = self._loaded(resistor_volts, channels, input_ohms)
            volts = []
            for channel in channels:
                if channel in self.fault_channels:
                    volts.append(self.fault_channels[channel])
                elif channel in self.channels:
                    edge, polarity = self.channels[channel]
                    volts.append(polarity * float(resistor_volts[edge]))
                else:
                    volts.append(0.0)
            wired = [i for i, ch in enumerate(channels) if ch in self.channels and ch not in self.fault_channels]
            if wired:
                noisy = self.circuit.read(np.array([volts[i] for i in wired]))
                for i, value in zip(wired, noisy):
                    volts[i] = float(value)
            return volts

    def write_codes(self, codes: Mapping[int, int]) -> None:
        self.board(self._only_board()).write_codes(codes)

    def read_codes(self, channels: Sequence[int]) -> dict[int, int]:
        return self.board(self._only_board()).read_codes(channels)

    # ================================================================== boards
    def board(self, name: str) -> BoardPort:
        """The backend one board's emulator talks to (a bench may have several boards)."""
        return BoardPort(self, name)

    def _only_board(self) -> str:
        boards = [i.name for i in self.config.instruments.values() if i.kind == "board"]
        if len(boards) != 1:
            raise RuntimeError(f"the bench has {len(boards)} boards; use board(name)")
        return boards[0]

    def _write_codes(self, board: str, codes: Mapping[int, int]) -> None:
        with self.lock:
            held = self.codes.setdefault(board, {})
            edges, ohms = [], []
            for channel, code in codes.items():
                if (board, int(channel)) in self.stuck and int(channel) in held:
                    continue  # a stuck channel ignores writes
                held[int(channel)] = int(code)
                edge = self.board_edges.get((board, int(channel)))
                if edge is not None:
                    edges.append(edge)
                    ohms.append(self.truth[board][int(channel)].ohms_of(int(code)))
            if edges:
                self.circuit.program(np.array(edges), np.array(ohms))
                self._settled = None

    def _read_codes(self, board: str, channels: Sequence[int]) -> dict[int, int]:
        with self.lock:
            held = self.codes.get(board, {})
            return {int(ch): held.get(int(ch), 0) for ch in channels}

    # ================================================================== faults
    def stick(self, board: str, channel: int) -> None:
        """From now on ``board``'s ``channel`` ignores writes and keeps its code."""
        with self.lock:
            self.stuck.add((board, int(channel)))

    def start_drift(self, edge: int, per_read: float = 0.0, per_second: float = 0.0) -> None:
        """Edge ``edge``'s true resistance grows by ``per_read`` (relative) at every scan and
        by ``per_second`` (relative) per second from now on."""
        with self.lock:
            self.drifts[int(edge)] = (float(per_read), float(per_second), self.clock())

    def _drift(self) -> None:
        if not self.drifts:
            return
        now = self.clock()
        edges, factors = [], []
        for edge, (per_read, per_second, since) in self.drifts.items():
            edges.append(edge)
            factors.append((1 + per_read) * (1 + per_second * (now - since)))
            self.drifts[edge] = (per_read, per_second, now)
        self.circuit.scale_true(np.array(edges), np.array(factors))
        self._settled = None

    def _loaded(self, resistor_volts: np.ndarray, channels: Sequence[int],
                input_ohms: Sequence[float]) -> np.ndarray:
        """Resistor voltages as a meter of ``input_ohms`` across each channel's edge reads them
        (each channel is read alone: the multiplexer closes one at a time)."""
        opened, clamps = self._topology
        read = [(i, self.channels[ch][0]) for i, ch in enumerate(channels)
                if ch in self.channels and self.channels[ch][0] not in opened]
        if not read:
            return resistor_volts
        edges = np.array([edge for _, edge in read])
        unit = np.eye(len(read))
        clamp = (np.array(clamps), np.zeros((len(clamps), len(read)))) if clamps else None
        state = self.circuit.solve(Excitation(parallel=(edges, unit), clamp=clamp), opened)
        thevenin = np.abs(state.edge_voltages()[edges, np.arange(len(read))])
        loaded = resistor_volts.copy()
        for (i, edge), r_th in zip(read, thevenin):
            r_in = float(input_ohms[i])
            loaded[edge] = resistor_volts[edge] * r_in / (r_in + r_th)
        return loaded

    # ================================================================== the physics
    def true_resistances(self) -> np.ndarray:
        return self.circuit.true_resistances()

    def unit_states(self) -> dict[str, UnitState]:
        with self.lock:
            return dict(self.settle()[0])

    def resistor_volts(self) -> np.ndarray:
        """(m,) resistor voltages of every edge in the settled circuit, without read noise."""
        with self.lock:
            return self.settle()[1].copy()

    def settle(self) -> tuple[dict[str, UnitState], np.ndarray]:
        """Unit states and resistor voltages of the circuit with its present settings,
        compliance included. Cached until a setting or a code changes."""
        if self._settled is None:
            self._settled = self._settle()
        return self._settled

    def _settle(self):
        active = [u for u in self.units.values() if self.settings[u.name].output_on]
        limited: dict[str, int] = {}  # unit -> sign of the limit it sits at
        for _ in range(4 * len(active) + 4):
            terminals, resistor_volts = self._solve(active, limited)
            worst, worst_unit = LIMIT_SLACK, None
            for unit in active:
                violation = self._violation(unit, limited.get(unit.name, 0), terminals[unit.name])
                if violation > worst:
                    worst, worst_unit = violation, unit
            if worst_unit is None:
                states = {}
                for unit in self.units.values():
                    if unit.name in terminals:
                        volts, amps = terminals[unit.name]
                        states[unit.name] = UnitState(float(volts), float(amps), unit.name in limited)
                    else:
                        states[unit.name] = UnitState(self._off_volts(unit, resistor_volts), 0.0, False)
                return states, resistor_volts
            name = worst_unit.name
            if limited.get(name):
                del limited[name]
            else:
                volts, amps = terminals[name]
                setting = self.settings[name]
                limited[name] = int(math.copysign(1, amps if setting.function == "VOLT" else volts))
        raise RuntimeError("the sources' compliance states did not settle: "
                           f"{ {u.name: self.settings[u.name] for u in active} }")

    def _violation(self, unit: Unit, sign: int, terminal: tuple[float, float]) -> float:
        """How far a unit's state is from consistent, relative to its limit (> 0: switch it)."""
        s = self.settings[unit.name]
        volts, amps = terminal
        limit = s.compliance
        if s.function == "VOLT":
            if not sign:   # a voltage source whose current must stay within the limit
                return (abs(amps) - limit) / limit
            # at the current limit: consistent while it still cannot reach its level
            return -sign * (s.level - volts) / max(abs(s.level), limit, 1e-12)
        if not sign:       # a current source whose voltage must stay within the limit
            return (abs(volts) - limit) / limit
        return -sign * (s.level - amps) / max(abs(s.level), 1e-15)

    def _solve(self, active: list[Unit], limited: dict[str, int]):
        """Solve with each active unit as the source it effectively is; returns its (volts,
        amps) and the resistor voltage of every edge."""
        series_idx, series_val, par_idx, par_val, clamp_idx, clamp_val = [], [], [], [], [], []
        opened, forced = set(), {}
        for unit in self.units.values():
            if unit.role == "series" and not self.settings[unit.name].output_on:
                opened.add(unit.edge)
        effective = {}
        for unit in active:
            s, sign = self.settings[unit.name], limited.get(unit.name, 0)
            if s.function == "VOLT":
                kind, value = ("I", sign * s.compliance) if sign else ("V", s.level)
            else:
                kind, value = ("V", sign * s.compliance) if sign else ("I", s.level)
            effective[unit.name] = (kind, value)
            p = unit.polarity
            if unit.role == "series":
                if kind == "V":
                    series_idx.append(unit.edge)
                    series_val.append(p * value)
                else:
                    opened.add(unit.edge)
                    forced[unit.edge] = -p * value   # branch current a -> b
                    par_idx.append(unit.edge)
                    par_val.append(-p * value)
            else:
                if kind == "V":
                    clamp_idx.append(unit.edge)
                    clamp_val.append(p * value)
                else:
                    par_idx.append(unit.edge)
                    par_val.append(-p * value)
        excitation = Excitation(
            series=(np.array(series_idx), np.array(series_val)[:, None]) if series_idx else None,
            parallel=(np.array(par_idx), np.array(par_val)[:, None]) if par_idx else None,
            clamp=(np.array(clamp_idx), np.array(clamp_val)[:, None]) if clamp_idx else None)
        self._topology = (tuple(sorted(opened)), list(clamp_idx))
        state = self.circuit.solve(excitation, tuple(sorted(opened)))
        edge_volts = state.edge_voltages()[:, 0]  # p[a] - p[b] - s
        r_true = self.circuit.true_resistances()
        resistor = edge_volts.copy()
        for edge in opened:
            # an open branch carries (almost) nothing; a forced one carries its current
            amps = forced.get(edge, edge_volts[edge] / (r_true[edge] + OPEN_OHMS))
            resistor[edge] = amps * r_true[edge]
        self._edge_volts = edge_volts
        clamp_amps = dict(zip(clamp_idx, state.clamp_currents[:, 0])) if clamp_idx else {}
        terminals = {}
        for unit in active:
            kind, value = effective[unit.name]
            p, e = unit.polarity, unit.edge
            if unit.role == "series" and kind == "V":
                # the resistor's current a -> b enters HI when P = +1: amps out of HI = -P i
                terminals[unit.name] = (value, -p * resistor[e] / r_true[e])
            elif unit.role == "series":
                # p[a] - p[b] is shared by the unit and its resistor
                terminals[unit.name] = (p * (edge_volts[e] + 0.0 - resistor[e]), value)
            elif kind == "V":
                # the clamp's current j runs a -> b beside the resistor: amps out of HI = -P j
                terminals[unit.name] = (value, -p * float(clamp_amps[e]))
            else:
                terminals[unit.name] = (p * edge_volts[e], value)
        return terminals, resistor

    def _off_volts(self, unit: Unit, resistor_volts: np.ndarray) -> float:
        """Volts across a unit whose output is off: its terminals float."""
        e = unit.edge
        if unit.role == "series":
            return unit.polarity * float(self._edge_volts[e] - resistor_volts[e])
        return unit.polarity * float(resistor_volts[e])


class BoardPort:
    """One board's view of the circuit: its channel numbers, its codes."""

    def __init__(self, circuit: VirtualCircuit, name: str):
        self.circuit = circuit
        self.name = name

    def write_codes(self, codes: Mapping[int, int]) -> None:
        self.circuit._write_codes(self.name, codes)

    def read_codes(self, channels: Sequence[int]) -> dict[int, int]:
        return self.circuit._read_codes(self.name, channels)

    # the rest of the InstrumentBackend protocol belongs to other instruments
    def apply_source(self, name, setting):  # pragma: no cover - a board has no sources
        raise RuntimeError("a resistor board has no sources")

    def read_source(self, name):  # pragma: no cover
        raise RuntimeError("a resistor board has no sources")

    def read_channels(self, channels):  # pragma: no cover
        raise RuntimeError("a resistor board has no multiplexer")
