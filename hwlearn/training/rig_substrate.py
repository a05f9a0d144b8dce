"""Training on a Rig: the trainer's Substrate interface, served by plans run by the engine.

Two plans measure a step (``ProbeSettings.plan``, hwlearn.training.probing):

- per-sample: every sample goes through the rig one phase at a time; the rule runs its own plans
  (``rule.rig_gradient``), the same plans the fast simulated path executes on the solver;
- probe: the d_in + d_out unit responses and a linearity check (hwlearn.rules.probe), from which
  the whole batch's estimate is formed. Evaluations probe the inputs too, and a step at the same
  resistances reuses those probes. When a check fails nothing from that step is programmed: an
  error event records the residual, then ``on_nonlinear`` says what happens ('per-sample': the
  step is measured again sample by sample; 'pause': the engine pauses until an operator resumes,
  then per-sample; 'fail': the run ends with LinearityError).
"""

from __future__ import annotations

import numpy as np

from hwlearn.engine import RunEngine
from hwlearn.plans import Plan, check_rule_on_rig, outputs_plan, program_plan, single_sample
from hwlearn.ports import Ports
from hwlearn.rig import Rig, RigError
from hwlearn.rules.probe import ProbeOutcome, ProbeSet, outputs_probe_plan, probe_modes, probe_plan
from hwlearn.rules.probe_design import design_probes
from hwlearn.training.probing import LinearityError, ProbeSettings, probe_unavailable
from hwlearn.training.substrate import StepDiscarded

# A state key of the substrate's own: how many probe plans ran (seeds each check's combination).
CHECKS_KEY = "probe_checks"
# A probe whose largest reading is below this many times the voltmeter's error at it is weak: the
# limits keep it too small for the voltmeter's resolution (warned once per run).
WEAK_PROBE = 100.0


class RigSubstrate:
    def __init__(self, rig: Rig, ports: Ports, learnable: np.ndarray, rule, engine: RunEngine | None = None,
                 description: str | None = None, bounds: tuple[float, float] = (0.0, np.inf),
                 initial_ohms: np.ndarray | None = None, probe: ProbeSettings | None = None,
                 reprogram: bool = True):
        """bounds: (r_min, r_max) of the update rule (docs/theory.md: r <- clip(r - lr g)),
        narrowed per edge to what the rig can hold (``rig.ohms_range()``). initial_ohms: (m,)
        what start() programs on the learnable edges (None: whatever the rig holds). probe: how
        steps are measured (default: the per-sample plan). reprogram: whether a resume may
        write the checkpoint's values over what the rig holds (a bench asks the operator)."""
        check_rule_on_rig(rule, rig.capabilities, ports, np.asarray(learnable))
        self.probe = probe or ProbeSettings()
        self.reprogram = reprogram
        if self.probe.plan == "probe":
            refusal = probe_unavailable(rule, rig.capabilities, ports)
            if refusal:
                raise RigError(f"the probe plan cannot run: {refusal}")
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
        self.plan_info = self.probe.describe()
        self.step_scalars: dict[str, float] = {}
        self.linearity = {"checks": 0, "failed": 0, "worst_ratio": 0.0}  # over this process's probes
        self._checks = 0               # probe plans run so far (with the seed: each check's draw)
        self._generation = 0           # bumped by every program(): probes hold for one generation
        self._inputs: tuple[int, ProbeSet] | None = None
        self._failed_at: int | None = None  # the generation at which a check failed
        self._warned_weak = False

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

    # ------------------------------------------------------------------ measuring a step
    def gradient(self, rule, x, y):
        self.step_scalars = {}
        if self._probing("the step's estimate"):
            design = design_probes(self.probe.limits, self.ports, self.resistances(), probe_modes(rule),
                                   headroom=self.probe.headroom, repeats=self.probe.repeats)
            outcome = self._probe(probe_plan(rule, self.ports, self.learnable, x, y, self.resistances(), design,
                                             self.probe.accuracy, self._rng(), inputs=self._cached_inputs()))
            if outcome.linear:
                return outcome.gradient, outcome.outputs
            self._not_linear(outcome, "the step's estimate", step=True)
        return rule.rig_gradient(self.run, self.ports, self.learnable, x, y, self.resistances())

    def outputs(self, x) -> np.ndarray:
        x = np.atleast_2d(x)
        if x.shape[1] > self.ports.n_inputs + 1 and self._probing("an evaluation's outputs"):
            cached = self._cached_inputs()
            if cached is not None:
                return cached.per_unit[:self.ports.n_outputs] * self.ports.gain @ x
            design = design_probes(self.probe.limits, self.ports, self.resistances(), (),
                                   headroom=self.probe.headroom, repeats=self.probe.repeats)
            outcome = self._probe(outputs_probe_plan(self.ports, self.learnable, x, design, self.probe.accuracy,
                                                     self._rng()))
            if outcome.linear:
                return outcome.outputs
            self._not_linear(outcome, "an evaluation's outputs", step=False)
        return np.hstack([self.run(outputs_plan(self.ports, x[:, b:b + 1])) for b in range(x.shape[1])])

    def _probing(self, what: str) -> bool:
        """Whether to probe now: the plan is 'probe', and no check failed at these resistances
        (one failure per programmed state is enough: the rest of it is measured per sample)."""
        if self.probe.plan != "probe":
            return False
        if self._failed_at == self._generation:
            self.step_scalars["probe_fallback"] = 1.0
            self.engine.event("linearity", f"{what} measured with the per-sample plan: the linearity check "
                              "failed at these resistances", level="warning", step=self.engine.position.get("step"))
            return False
        return True

    def _rng(self) -> np.random.Generator:
        self._checks += 1
        return np.random.default_rng([self.probe.seed, self._checks])

    def _cached_inputs(self) -> ProbeSet | None:
        if self._inputs is not None and self._inputs[0] == self._generation:
            return self._inputs[1]
        return None

    def _probe(self, plan: Plan) -> ProbeOutcome:
        """Run a probe plan, publish its summary, keep its input probes while they hold."""
        outcome = self.run(plan)
        step = self.engine.position.get("step")
        checks = outcome.summary["checks"]
        worst = max(checks, key=lambda c: c["max_ratio"])
        self.step_scalars["linearity_ratio"] = max(self.step_scalars.get("linearity_ratio", 0.0), worst["max_ratio"])
        self.linearity["checks"] += len(checks)
        self.linearity["failed"] += sum(not c["passed"] for c in checks)
        self.linearity["worst_ratio"] = max(self.linearity["worst_ratio"], worst["max_ratio"])
        self.engine.event("probe", f"probe plan: {outcome.summary['phases']} phases, linearity "
                          f"{'passed' if outcome.linear else 'FAILED'} (largest residual {worst['max_ratio']:.3g} "
                          "of its bound)", level="debug", data=outcome.summary, step=step)
        weakest = outcome.summary["weakest_probe"]
        if weakest["reading_over_error"] < WEAK_PROBE and not self._warned_weak:
            self._warned_weak = True
            self.engine.event(
                "probe", f"probe {weakest['probe']} reads at most {weakest['largest_reading_volts']:.3g} V, only "
                f"{weakest['reading_over_error']:.3g} x the voltmeter's error there: the bench limits keep it small; "
                "its noise weighs on every sample (probe.repeats averages it)",
                level="warning", data=weakest, step=step)
        if outcome.linear:
            self._inputs = (self._generation, outcome.inputs)
        return outcome

    def _not_linear(self, outcome: ProbeOutcome, what: str, step: bool) -> None:
        """A failed linearity check: nothing of it is used; record it, then on_nonlinear. ``step``:
        the check belonged to a step's estimate (a stop during a pause gives the step up), not to
        an evaluation (which programs nothing and is measured again in any case)."""
        self._inputs = None
        self._failed_at = self._generation
        check = outcome.failed_check()
        names = [self.network.edge_names[k] for k in outcome.measured_edges]
        worst = int(np.argmax(check.ratios))
        number = self.engine.position.get("step")
        where = f"step {number}" if number is not None else "the start"
        detail = (f"{names[worst]} read {check.measured[worst]:.6g} V where the probes predict "
                  f"{check.predicted[worst]:.6g} V: residual {check.residual[worst]:.3g} V, "
                  f"{check.ratios[worst]:.3g} x the bound {check.bound[worst]:.3g} V")
        message = (f"linearity check failed at {where} ({what}): {detail}; the network does not respond "
                   "linearly to the probes, nothing measured by them is used")
        self.engine.event("linearity", message, level="error",
                          data={**check.summary(names), "residual_volts_all": check.residual.tolist(),
                                "bound_volts_all": check.bound.tolist(), "edges": names}, step=number)
        self.step_scalars["probe_fallback"] = 1.0
        policy = self.probe.on_nonlinear
        if policy == "fail":
            raise LinearityError(message + " (probe.on_nonlinear = 'fail')")
        if policy == "pause":
            self.engine.pause(f"linearity check failed at {where} ({what}): {detail}; resume to measure it "
                              "with the per-sample plan")
            self.engine.boundary("sample")  # holds until resumed; raises if aborted
            if step and self.engine.stop_requested:
                raise StepDiscarded(f"stopped during the linearity pause at {where}; nothing programmed")
        self.engine.event("linearity", f"{where}: {what} measured again with the per-sample plan",
                          level="warning", step=number)

    # ------------------------------------------------------------------ the rest of the Substrate
    def exact_gradient(self, x, y) -> np.ndarray | None:
        return self.rig.exact_gradient(self.ports, self.learnable, x, y)

    def program(self, ohms: np.ndarray) -> np.ndarray:
        """Write ``ohms`` clipped to the update bounds (the rule's clip, not a silent one: a
        bench refuses anything outside its calibrated span)."""
        self._generation += 1
        return self.engine.run_plan(program_plan(self.learnable, np.clip(ohms, self.low, self.high)))

    def take_records(self) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """What the rig did since the last record (Rig.take_records: a crossbar's relay
        operations and pulses), for the step the trainer records now."""
        return self.rig.take_records()

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
        return {"known_ohms": self.resistances(), **self.rig.snapshot(), CHECKS_KEY: np.array([self._checks])}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Back to a checkpoint: the rig restores its snapshot (exactly for a simulated rig; a
        bench programs and verifies, naming every edge that cannot return)."""
        state = dict(state)
        checks = state.pop(CHECKS_KEY, None)
        self._generation += 1
        try:
            self.rig.restore(state, reprogram=self.reprogram)
        except RigError as exc:
            raise RigError(f"resume: {exc}") from None
        if checks is not None:
            self._checks = int(np.asarray(checks).reshape(-1)[0])
