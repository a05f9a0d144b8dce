"""Which plan measures a step on a rig, and the settings of the probe plan (hwlearn.rules.probe).

``choose_plan`` resolves the experiment file's ``plan`` ('auto', 'probe', 'per-sample') for a
rule on a rig, with the reason recorded in the run folder; ``ProbeSettings`` carries the
``[probe]`` keys and what the rig contributes (its limits, its voltmeter's accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwlearn.errors import HwlearnError
from hwlearn.messages import PlanError
from hwlearn.ports import SERIES, Ports
from hwlearn.rig import Capabilities
from hwlearn.rules.probe import ON_NONLINEAR, PLANS, probe_modes, probe_phases, probe_refusal
from hwlearn.rules.probe_design import ProbeLimits, ReadingAccuracy


class LinearityError(HwlearnError):
    """The probe plan's linearity check failed and the experiment says to fail
    (probe.on_nonlinear = 'fail'); nothing from the step was programmed."""


@dataclass(frozen=True)
class ProbeSettings:
    """How a RigSubstrate measures its steps.

    plan         : 'probe' or 'per-sample' (resolved), ``why`` the reason, for the records.
    repeats, headroom, on_nonlinear : the experiment file's [probe] keys.
    limits       : the rig's limits (a bench file's), None for a rig without stated limits.
    accuracy     : the voltmeter's reading accuracy, for the linearity check's tolerance.
    seed         : seed of the checks' random combinations (with the count of checks done).
    """

    plan: str = "per-sample"
    why: str = "the per-sample plan was asked for"
    repeats: int = 1
    headroom: float = 0.5
    on_nonlinear: str = "per-sample"
    limits: ProbeLimits | None = None
    accuracy: ReadingAccuracy = field(default_factory=ReadingAccuracy.exact)
    seed: int = 0

    def __post_init__(self):
        if self.plan not in ("probe", "per-sample"):
            raise ValueError(f"plan {self.plan!r}: resolve 'auto' first (choose_plan); allowed: probe, per-sample")
        if self.on_nonlinear not in ON_NONLINEAR:
            raise ValueError(f"on_nonlinear {self.on_nonlinear!r}; allowed: {', '.join(ON_NONLINEAR)}")

    def describe(self) -> dict:
        """For the run's start document: the plan, why, and the probe settings that apply."""
        info = {"plan": self.plan, "why": self.why}
        if self.plan == "probe":
            info.update(repeats=self.repeats, headroom=self.headroom, on_nonlinear=self.on_nonlinear,
                        tolerance=self.accuracy.describe(),
                        amplitudes="bench limits" if self.limits is not None else "the batch's largest levels")
        return info


def probe_unavailable(rule, capabilities: Capabilities, ports: Ports) -> str | None:
    """Why the probe plan cannot measure ``rule`` on this rig, or None."""
    refusal = probe_refusal(rule)
    if refusal:
        return refusal
    missing = sorted(set(probe_modes(rule)) - set(capabilities.output_modes))
    if missing:
        return (f"the probes of rule '{rule.name}' drive the outputs as {', '.join(missing)}, which this rig's "
                f"outputs do not offer ({', '.join(sorted(capabilities.output_modes))})")
    if not capabilities.inputs_can_short:
        return "the input probes hold every other input at 0 V while connected, which this rig cannot"
    if any(kind != SERIES for kind in ports.input_kind):
        return "a rig drives inputs as series sources on input edges; these ports use netlist sources"
    return None


def choose_plan(requested: str, rule, capabilities: Capabilities, ports: Ports, batch_size: int,
                repeats: int = 1) -> tuple[str, str]:
    """('probe' or 'per-sample', why). 'probe' that cannot run raises PlanError naming the reason;
    'auto' takes the probe plan where it can run and measures fewer phases per step than the
    per-sample plan does at this batch size."""
    if requested not in PLANS:
        raise PlanError(f"plan = {requested!r}; allowed: {', '.join(PLANS)}")
    if requested == "per-sample":
        return "per-sample", "plan = 'per-sample' in the experiment file"
    refusal = probe_unavailable(rule, capabilities, ports)
    if requested == "probe":
        if refusal:
            raise PlanError(f"plan = 'probe': {refusal}; use plan = 'per-sample'")
        return "probe", "plan = 'probe' in the experiment file"
    if refusal:
        return "per-sample", f"plan = 'auto': {refusal}"
    d_in, d_out = ports.n_inputs, ports.n_outputs
    probe = probe_phases(rule, d_in, d_out) + (repeats - 1) * (probe_phases(rule, d_in, d_out) - len(probe_modes(rule)))
    per_sample = batch_size * (1 + len(rule.phases))
    if probe >= per_sample:
        return "per-sample", (f"plan = 'auto': the per-sample plan measures {per_sample} phases for a batch of "
                              f"{batch_size}, the probes {probe}")
    return "probe", (f"plan = 'auto': {probe} probe phases per step against {per_sample} for a batch of "
                     f"{batch_size} sample by sample")
