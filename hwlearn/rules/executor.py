"""Plans executed by the solver: a whole block of samples at once, in memory.

A Rig runs a plan one sample at a time (hwlearn.engine); the SolverExecutor answers the same
messages for a block of B samples from one factorisation, so simulation and bench share one
definition of every rule's phase sequence (hwlearn.messages). It holds the state a rig would
hold (input sources, output drive, resistances written) and solves when asked to measure.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwlearn.messages import Msg, Plan
from hwlearn.ports import Ports
from hwlearn.solver import Factorization


class SolverExecutor:
    """Answers plan messages from a factorisation of the circuit.

    measure : applied to every array of measured voltages (e.g. read noise); default exact.
    ``program`` writes the requested ohms exactly (no device model) and refactorises at the next
    measurement; the factorisation given is never changed.
    """

    def __init__(self, fz: Factorization, ports: Ports, measure: Callable[[np.ndarray], np.ndarray] | None = None):
        self.ports = ports
        self._solver = fz.solver
        self._fz: Factorization | None = fz
        self._resistance = fz.resistance
        self._measure = measure
        self._inputs: np.ndarray | None = None
        self._drive: tuple[str, np.ndarray] | None = None

    def run(self, plan: Plan):
        """Execute ``plan`` to its end and return its value."""
        try:
            msg = next(plan)
            while True:
                msg = plan.send(self.answer(msg))
        except StopIteration as done:
            return done.value

    def answer(self, msg: Msg):
        if msg.verb == "set_inputs":
            self._inputs = msg.args[0]
            return None
        if msg.verb == "drive_outputs":
            mode, values = msg.args
            self._drive = None if mode == "open" else (mode, values)
            return None
        if msg.verb == "measure":
            excitation = self.ports.sources(self._inputs, drive=self._drive)
            volts = self._factorization().solve(excitation).edge_voltages(msg.args[0])
            return volts if self._measure is None else self._measure(volts)
        if msg.verb == "note":
            return None
        if msg.verb == "program":
            edges, ohms = msg.args
            resistance = self._resistance.copy()
            resistance[np.asarray(edges, dtype=np.int64)] = ohms
            self._resistance, self._fz = resistance, None
            return np.asarray(ohms, dtype=float).copy()
        raise ValueError(f"plan yielded unknown message verb '{msg.verb}'")

    def _factorization(self) -> Factorization:
        if self._fz is None:
            self._fz = self._solver.factorize(self._resistance)
        return self._fz


def execute(plan: Plan, fz: Factorization, ports: Ports,
            measure: Callable[[np.ndarray], np.ndarray] | None = None):
    """Run ``plan`` on the solver (SolverExecutor) and return its value."""
    return SolverExecutor(fz, ports, measure).run(plan)
