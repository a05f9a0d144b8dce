"""Training on a Rig: the trainer's Substrate interface, served by plans run by the engine.

Every sample goes through the rig one phase at a time, exactly as on a bench: the rule runs its
own plans (``rule.rig_gradient``), the same plans the fast simulated path executes on the solver.
"""

from __future__ import annotations

import numpy as np

from hwlearn.engine import RunEngine
from hwlearn.plans import Plan, check_rule_on_rig, outputs_plan, program_plan, single_sample
from hwlearn.ports import Ports
from hwlearn.rig import Rig, RigError


class RigSubstrate:
    def __init__(self, rig: Rig, ports: Ports, learnable: np.ndarray, rule, engine: RunEngine | None = None,
                 description: str | None = None, bounds: tuple[float, float] = (0.0, np.inf)):
        """bounds: (r_min, r_max) of the update rule (docs/theory.md, section 5: r <- clip(step(r, g))),
        narrowed per edge to what the rig can hold when it says so (``rig.ohms_range()``)."""
        check_rule_on_rig(rule, rig.capabilities, ports, np.asarray(learnable))
        self.rig = rig
        self.network = rig.network
        self.ports = ports
        self.learnable = np.asarray(learnable, dtype=np.int64)
        self.engine = engine or RunEngine(rig)
        self.description = description or f"{type(rig).__name__} through plans"
        low = np.full(rig.network.n_edges, bounds[0])
        high = np.full(rig.network.n_edges, bounds[1])
        if hasattr(rig, "ohms_range"):
            rig_low, rig_high = rig.ohms_range()
            low, high = np.maximum(low, rig_low), np.minimum(high, rig_high)
        self.low, self.high = low[self.learnable], high[self.learnable]

    def resistances(self) -> np.ndarray:
        return np.asarray(self.rig.resistances(), dtype=float)

    def run(self, plan: Plan):
        """Run a plan written on sample blocks through the engine, one sample per block."""
        return self.engine.run(single_sample(plan))

    def gradient(self, rule, x, y):
        return rule.rig_gradient(self.run, self.ports, self.learnable, x, y, self.resistances())

    def program(self, ohms: np.ndarray) -> np.ndarray:
        """Write ``ohms`` clipped to the update bounds (the rule's clip, not a silent one: a
        bench refuses anything outside its calibrated span)."""
        return self.engine.run(program_plan(self.learnable, np.clip(ohms, self.low, self.high)))

    def outputs(self, x) -> np.ndarray:
        x = np.atleast_2d(x)
        return np.hstack([self.run(outputs_plan(self.ports, x[:, b:b + 1])) for b in range(x.shape[1])])

    def phase_voltages(self, rule, x, y) -> dict[str, np.ndarray]:
        """Every readable edge in each phase for one sample; NaN where the rig cannot read."""
        readable = np.setdiff1d(self.rig.capabilities.readable, self.ports.outputs)
        measured, _ = self.run(rule.phase_plan(self.ports, readable, x[:, :1], y[:, :1], self.resistances()))
        result = {}
        for name, m in measured.items():
            volts = np.full(self.network.n_edges, np.nan)
            volts[readable] = m.voltages[:, 0]
            result[name] = volts
        return result

    def state(self) -> dict[str, np.ndarray]:
        state = {"known_ohms": self.resistances()}
        if hasattr(self.rig, "circuit"):  # a simulated rig: its hidden state too, for exact resumes
            state.update(self.rig.circuit.state())
        return state

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Back to a checkpoint: a simulated rig is restored exactly; a bench has its learnable
        edges programmed to the checkpoint's values, then verified."""
        if hasattr(self.rig, "circuit") and "true_ohms" in state:
            self.rig.circuit.restore(state)
            return
        target = np.asarray(state["known_ohms"], dtype=float)[self.learnable]
        achieved = self.program(target)
        if not np.allclose(achieved, target, rtol=1e-9, atol=0):
            worst = int(np.argmax(np.abs(achieved - target)))
            k = self.learnable[worst]
            raise RigError(f"resume: edge {self.network.edge_names[k]} holds {achieved[worst]:.6g} ohm, the "
                               f"checkpoint has {target[worst]:.6g} ohm; the bench cannot return to the checkpoint")
