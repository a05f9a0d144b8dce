"""The resistor board's terminal ratings as bench limits: no channel beyond its voltage or current.

An MCP4251 terminal carries at most 2.5 mA and stays within the board's supply (DS22060); the
bench file states them per board (``max_terminal_volts``, ``max_terminal_amps``). Which voltage
a channel sees depends on the whole network, so the bench predicts it: before any byte is sent,
the staged source states are solved on the network with the resistances the boards hold
(sources ideal, a unit that is off an open branch); a state that would put any channel beyond
its ratings is refused. After each scan, every board channel the scan read is checked again
against what was measured, so a prediction that the real circuit contradicts (a calibration far
off, a unit in compliance) still stops the run before its readings are used.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hwlearn.config.bench import BenchConfig
from hwlearn.solver import Excitation, KirchhoffSolver

OPEN_OHMS = 1e12  # an input unit whose output is off: its branch is open


class BoardRatings:
    """Checks board channels against their boards' terminal ratings."""

    def __init__(self, config: BenchConfig):
        self.config = config
        self.network = config.network
        self.channels = {w.edge: w for w in config.board_wiring}
        self.limits = {name: (inst["max_terminal_volts"], inst["max_terminal_amps"])
                       for name, inst in config.instruments.items() if inst.kind == "board"}
        self._solver = KirchhoffSolver(self.network) if self.channels else None
        self._factor_key: bytes | None = None
        self._factor = None

    def predicted_problem(self, states: Mapping, ohms: np.ndarray) -> str | None:
        """Why the source states (SourceUnit -> SourceState) would overload a board channel,
        or None. ``ohms``: the edge resistances the bench knows."""
        if not self.channels:
            return None
        ohms = np.array(ohms, dtype=float)
        series, parallel, clamp = ([], []), ([], []), ([], [])
        for unit, state in states.items():
            if not state.on:
                if unit.role == "input":
                    ohms[unit.edge] = OPEN_OHMS
                continue
            if unit.role == "input":
                series[0].append(unit.edge)
                series[1].append(unit.polarity * state.level)
            elif state.function == "CURR":
                parallel[0].append(unit.edge)
                parallel[1].append(-unit.polarity * state.level)
            else:
                clamp[0].append(unit.edge)
                clamp[1].append(unit.polarity * state.level)
        if not any(series[1]) and not any(parallel[1]) and not any(clamp[1]):
            return None  # nothing drives the network
        excitation = Excitation(**{k: (np.array(e, dtype=np.int64), np.array(x, dtype=float)[:, None])
                                   for k, (e, x) in (("series", series), ("parallel", parallel),
                                                     ("clamp", clamp)) if e})
        state = self._factorization(ohms).solve(excitation)
        edges = np.array(sorted(self.channels), dtype=np.int64)
        volts = state.edge_voltages(edges)[:, 0]
        amps = state.edge_currents(edges)[:, 0]
        return self._problem(edges, volts, amps, "would put")

    def measured_problem(self, volts: Mapping[int, float], ohms: np.ndarray) -> str | None:
        """Why the scanned resistor volts (edge -> V) show a board channel beyond its ratings."""
        edges = np.array([e for e in sorted(volts) if e in self.channels], dtype=np.int64)
        if edges.size == 0:
            return None
        v = np.array([volts[e] for e in edges.tolist()])
        return self._problem(edges, v, v / np.asarray(ohms, dtype=float)[edges], "measures")

    def _problem(self, edges: np.ndarray, volts: np.ndarray, amps: np.ndarray, verb: str) -> str | None:
        for edge, v, i in zip(edges.tolist(), volts.tolist(), amps.tolist()):
            wire = self.channels[edge]
            max_v, max_i = self.limits[wire.board]
            name = self.network.edge_names[edge]
            if abs(v) > max_v:
                return (f"{verb} {v:.4g} V across {name} ({wire.board} channel {wire.channel}), beyond "
                        f"instruments.{wire.board}.max_terminal_volts = {max_v:g} V")
            if abs(i) > max_i:
                return (f"{verb} {i * 1e3:.4g} mA through {name} ({wire.board} channel {wire.channel}), "
                        f"beyond instruments.{wire.board}.max_terminal_amps = {max_i * 1e3:g} mA")
        return None

    def _factorization(self, ohms: np.ndarray):
        key = ohms.tobytes()
        if key != self._factor_key:
            self._factor, self._factor_key = self._solver.factorize(ohms), key
        return self._factor
