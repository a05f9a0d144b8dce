"""Central finite differences of the loss: the reference estimator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hwlearn.loss import mse_loss
from hwlearn.messages import Msg, Plan, PlanError, finalize
from hwlearn.ports import Ports
from hwlearn.rules.executor import execute
from hwlearn.rules.parameters import check_parameters, parameter
from hwlearn.rules.phases import FREE, as_columns
from hwlearn.rules.protocol import Measure, PlanRunner, RigNeeds
from hwlearn.rules.registry import register
from hwlearn.rules.steps import free_phase, outputs_plan
from hwlearn.solver import Factorization


@register
@dataclass(frozen=True)
class FiniteDifference:
    """(L(r + h e_k) - L(r - h e_k)) / 2h with h = relative_step * r_k, edge by edge.

    On a bench the losses come from programming r_k +- h and measuring the outputs of the whole
    batch; in simulation the same plan runs on the solver (two refactorisations per edge). Error
    O(h^2) from truncation plus O(eps / h) from rounding: 1e-5 balances them for losses near 1.
    It needs nothing from a rig but programming and reading the outputs.
    """

    name: ClassVar[str] = "finite_difference"
    label: ClassVar[str] = "finite differences"
    units: ClassVar[str] = "W"
    check_values: ClassVar[dict[str, Any]] = {}

    relative_step: float = parameter(1e-5, "step h / r of the central differences", minimum=0.0, maximum=0.1,
                                     open_minimum=True)

    def __post_init__(self) -> None:
        check_parameters(self)

    @property
    def needs(self) -> RigNeeds:
        return RigNeeds()

    def steps(self, resistance: np.ndarray) -> np.ndarray:
        return self.relative_step * np.asarray(resistance, dtype=float)

    def phase_plan(self, ports: Ports, edges: np.ndarray, x, y, known_ohms: np.ndarray) -> Plan:
        """The free phase only: finite differences have no other phase."""
        x = as_columns(x, ports.n_inputs, "inputs")
        y_hat, free = yield from free_phase(ports, np.asarray(edges, dtype=np.int64), x)
        yield Msg("drive_outputs", ("open", None))
        return {FREE: free}, y_hat

    def plan(self, ports: Ports, edges: np.ndarray, x, y, known_ohms: np.ndarray, block: int = 1) -> Plan:
        """Program each edge to r +- h, measure the outputs for the batch (``block`` samples at a
        time: 1 on a rig), restore r. Returns (estimate (k,), free outputs (d_out, B)).

        The step is the achieved one, not the requested one: quantised devices may round it."""
        x = as_columns(x, ports.n_inputs, "inputs")
        y = as_columns(y, ports.n_outputs, "targets")
        edges = np.asarray(edges, dtype=np.int64)
        known = np.asarray(known_ohms, dtype=float)

        def batch_outputs():
            blocks = []
            for start in range(0, x.shape[1], block):
                blocks.append((yield from outputs_plan(ports, x[:, start:start + block])))
            return np.hstack(blocks)

        free = yield from batch_outputs()
        steps = self.steps(known[edges])
        losses = np.zeros((2, len(edges)))
        spans = np.zeros(len(edges))
        def perturbed(row: int, k: int, base: float):
            reached = []
            for side, sign in enumerate((1.0, -1.0)):
                achieved = yield Msg("program", (np.array([k]), np.array([base + sign * steps[row]])))
                reached.append(float(achieved[0]))
                losses[side, row] = mse_loss((yield from batch_outputs()), y)
            return reached

        def restore(k: int, base: float):
            yield Msg("program", (np.array([k]), np.array([base])))

        for row, k in enumerate(edges):
            base = known[k]
            # The edge goes back to its value however the perturbation ends (an error, an abort).
            reached = yield from finalize(perturbed(row, k, base), lambda k=k, base=base: restore(k, base))
            spans[row] = reached[0] - reached[1]
            if spans[row] <= 0:
                raise PlanError(f"finite differences: edge {ports.network.edge_names[k]} cannot be set to "
                                f"{base:.6g} +- {steps[row]:.3g} ohm (the device holds {reached}); "
                                "raise rule.relative_step above the device's resolution")
        return (losses[0] - losses[1]) / spans, free

    def rig_gradient(self, run: PlanRunner, ports: Ports, edges: np.ndarray, x, y,
                     known_ohms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return run(self.plan(ports, edges, x, y, known_ohms))

    def simulate(self, fz: Factorization, ports: Ports, edges: np.ndarray, x, y, *,
                 known_ohms: np.ndarray | None = None, measure: Measure | None = None,
                 shortcut: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The plan on the solver, the whole batch at once, perturbing the true resistances
        (``fz.resistance``): in simulation the reference of the exact gradient."""
        x = as_columns(x, ports.n_inputs, "inputs")
        return execute(self.plan(ports, edges, x, y, fz.resistance, block=x.shape[1]), fz, ports, measure)
