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
                 description: str | None = None, bounds: tuple[float, float] = (0.0, np.inf),
                 initial_ohms: np.ndarray | None = None):
        """bounds: (r_min, r_max) of the update rule (docs/theory.md: r <- clip(r - lr g)),
        narrowed per edge to what the rig can hold (``rig.ohms_range()``). initial_ohms: (m,)
        what start() programs on the learnable edges (None: whatever the rig holds)."""
        check_rule_on_rig(rule, rig.capabilities, ports, np.asarray(learnable))
        self.rig = rig
        self.network = rig.network
        self.ports = ports
        self.learnable = np.asarray(learnable, dtype=np.int64)
        self.engine = engine or RunEngine(rig)
        self.description = description or rig.describe()["description"]
        self.initial_ohms = None if initial_ohms is None else np.asarray(initial_ohms, dtype=float)
        rig_low, rig_high = rig.ohms_range()
        low = np.maximum(np.full(rig.network.n_edges, bounds[0]), rig_low)
        high = np.minimum(np.full(rig.network.n_edges, bounds[1]), rig_high)
        self.low, self.high = low[self.learnable], high[self.learnable]

    def attach(self, engine: RunEngine) -> None:
        """Run every plan through ``engine`` (the run's controller)."""
        self.engine = engine

    def start(self) -> None:
        """A run from its beginning (new, or resumed before its first checkpoint): the
        learnable edges to the experiment's initial resistances."""
        if self.initial_ohms is not None:
            self.program(self.initial_ohms[self.learnable])

    def resistances(self) -> np.ndarray:
        return np.asarray(self.rig.resistances(), dtype=float)

    def run(self, plan: Plan):
        """Run a plan written on sample blocks through the engine, one sample per block."""
        return self.engine.run_plan(single_sample(plan))

    def gradient(self, rule, x, y):
        return rule.rig_gradient(self.run, self.ports, self.learnable, x, y, self.resistances())

    def exact_gradient(self, x, y) -> np.ndarray | None:
        return self.rig.exact_gradient(self.ports, self.learnable, x, y)

    def program(self, ohms: np.ndarray) -> np.ndarray:
        """Write ``ohms`` clipped to the update bounds (the rule's clip, not a silent one: a
        bench refuses anything outside its calibrated span)."""
        return self.engine.run_plan(program_plan(self.learnable, np.clip(ohms, self.low, self.high)))

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
        return {"known_ohms": self.resistances(), **self.rig.snapshot()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Back to a checkpoint: the rig restores its snapshot (exactly for a simulated rig; a
        bench programs and verifies, naming every edge that cannot return)."""
        try:
            self.rig.restore(state)
        except RigError as exc:
            raise RigError(f"resume: {exc}") from None
