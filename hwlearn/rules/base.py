"""Phase-based rules: a free phase, one or two more phases, and a sum of current products.

Every rule of docs/theory.md except finite differences has the same shape. After the free phase
(inputs on, outputs open) it runs one or two more phases, each driving the output edges with
a * y_hat + b * y (y_hat: free outputs, y: targets) as current sources, series sources or
voltage clamps, with the inputs on or off. Its estimate is then, edge by edge, a sum of terms
coef * mean_over_samples(i_p * i_q) over pairs of phase currents. Written in that form, one
phase plan (``phase_plan``) serves a bench (sample by sample) and the simulator (a block at a
time), and the whole-batch linear path (hwlearn.rules.linear) evaluates the same terms exactly.

A subclass is a frozen dataclass: its fields are its parameters; it sets ``name``, ``label``,
``units`` and defines the ``phases`` and ``terms`` properties from its parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from hwlearn.messages import Msg, Plan
from hwlearn.ports import Ports
from hwlearn.rules.linear import LinearResponse
from hwlearn.rules.parameters import check_parameters
from hwlearn.rules.phases import FREE, Phase, PhaseMeasurement, Term, as_columns, output_rows, stack
from hwlearn.rules.protocol import Measure, PlanRunner, RigNeeds
from hwlearn.rules.simulate import per_sample_gradient_and_outputs
from hwlearn.rules.steps import free_phase
from hwlearn.solver import Factorization


class BilinearRule:
    """A rule given by its phases and its terms (the Rule protocol for phase-based rules)."""

    name: ClassVar[str]
    label: ClassVar[str]
    units: ClassVar[str] = "W"
    check_values: ClassVar[Mapping[str, Any]] = {}

    def __post_init__(self) -> None:
        check_parameters(self)

    @property
    def phases(self) -> tuple[Phase, ...]:
        raise NotImplementedError

    @property
    def terms(self) -> tuple[Term, ...]:
        raise NotImplementedError

    @property
    def needs(self) -> RigNeeds:
        return RigNeeds(frozenset("clamp" if p.mode == "clamp" else "current" for p in self.phases),
                        any(not p.inputs_on for p in self.phases))

    # ------------------------------------------------------------------ the phase sequence
    def phase_plan(self, ports: Ports, edges: np.ndarray, x, y, known_ohms: np.ndarray) -> Plan:
        """The free phase, then each of the rule's phases: inputs switched when the phase says,
        the outputs driven as a rig drives them (series sources in Norton form, computed with
        ``known_ohms``), one scan of ``edges`` per phase, and the outputs opened again.
        Returns ({phase name: PhaseMeasurement (k, B)}, y_hat (d_out, B))."""
        x = as_columns(x, ports.n_inputs, "inputs")
        y = as_columns(y, ports.n_outputs, "targets")
        edges = np.asarray(edges, dtype=np.int64)
        y_hat, free = yield from free_phase(ports, edges, x)
        measured = {FREE: free}
        rows = output_rows(ports, edges)
        output_ohms = np.asarray(known_ohms, dtype=float)[ports.outputs]
        inputs_on = True
        for phase in self.phases:
            yield Msg("note", (phase.name,))
            mode, values = phase.rig_drive(y_hat, y, output_ohms)
            if phase.inputs_on != inputs_on:
                yield Msg("set_inputs", (ports.gain * x if phase.inputs_on else None,))
                inputs_on = phase.inputs_on
            yield Msg("drive_outputs", (mode, values))
            volts = yield Msg("measure", (edges,))
            measured[phase.name] = PhaseMeasurement(np.asarray(volts, dtype=float),
                                                    phase.series_equivalent(y_hat, y, rows, len(edges)))
        yield Msg("drive_outputs", ("open", None))
        return measured, y_hat

    # ------------------------------------------------------------------ the estimate
    def gradient_from_currents(self, currents: Mapping[str, np.ndarray]) -> np.ndarray:
        """(k,) estimate from branch currents (k, B) per phase name (incl. 'free')."""
        total = None
        for term in self.terms:
            part = term.coef * np.mean(currents[term.left] * currents[term.right], axis=1)
            total = part if total is None else total + part
        return total

    def gradient_from_measurements(self, measurements: Mapping[str, PhaseMeasurement],
                                   resistance: np.ndarray) -> np.ndarray:
        """(k,) estimate from measured phase voltages on k edges with these resistances (ohms)."""
        missing = {FREE, *(p.name for p in self.phases)} - set(measurements)
        if missing:
            raise ValueError(f"rule '{self.name}' needs phase(s) {sorted(missing)}; "
                             f"got {sorted(measurements)}")
        currents = {name: m.currents(resistance) for name, m in measurements.items()}
        return self.gradient_from_currents(currents)

    def rig_gradient(self, run: PlanRunner, ports: Ports, edges: np.ndarray, x, y,
                     known_ohms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each sample through ``phase_plan`` on the rig; the estimate from the stacked
        measurements with the resistances the host knows."""
        x = as_columns(x, ports.n_inputs, "inputs")
        y = as_columns(y, ports.n_outputs, "targets")
        known = np.asarray(known_ohms, dtype=float)
        blocks, outputs = [], []
        for b in range(x.shape[1]):
            measured, y_hat = run(self.phase_plan(ports, edges, x[:, b:b + 1], y[:, b:b + 1], known))
            blocks.append(measured)
            outputs.append(y_hat)
        gradient = self.gradient_from_measurements(stack(blocks), known[np.asarray(edges, dtype=np.int64)])
        return gradient, np.hstack(outputs)

    def simulate(self, fz: Factorization, ports: Ports, edges: np.ndarray, x, y, *,
                 known_ohms: np.ndarray | None = None, measure: Measure | None = None,
                 shortcut: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The phase plan executed by the solver, or, where nothing is measured with noise and it
        is cheaper, the whole-batch linear path: d_in + d_out solves whatever the batch size,
        against a solve per sample and phase (small batches on networks with many ports favour
        the phases)."""
        x = as_columns(x, ports.n_inputs, "inputs")
        phase_solves = x.shape[1] * (1 + len(self.phases))
        if not shortcut or measure is not None or phase_solves < ports.n_inputs + ports.n_outputs:
            return per_sample_gradient_and_outputs(fz, ports, self, x, y, edges, known_ohms=known_ohms,
                                                   measure=measure)
        response = LinearResponse(fz, ports, edges, known_ohms=known_ohms)
        return response.gradient(self, x, y), response.outputs(x)
