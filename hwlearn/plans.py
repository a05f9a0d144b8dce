"""Plans: what a rule does on a bench, as a sequence of messages (Bluesky's shape).

A plan is a generator of Msg (hwlearn.messages): it yields rig operations and receives each
one's result. It describes; hwlearn.engine.RunEngine executes it on any Rig (simulated, virtual
bench, real), and hwlearn.rules.executor executes the same plans on the solver. Each rule owns
its plans (``rule.phase_plan``, ``rule.rig_gradient``); this module checks a rule against a rig
before anything runs, and holds the plans that belong to no rule.
"""

from __future__ import annotations

import numpy as np

from hwlearn.messages import Msg, Plan, PlanError, finalize, single_sample
from hwlearn.ports import SERIES, Ports
from hwlearn.rig import Capabilities
from hwlearn.rules.steps import outputs_plan

__all__ = ["Msg", "Plan", "PlanError", "check_rule_on_rig", "finalize", "minimum_exchanges_per_sample",
           "outputs_plan", "program_plan", "single_sample"]


def check_rule_on_rig(rule, capabilities: Capabilities, ports: Ports, learnable: np.ndarray) -> None:
    """Refuse, before anything runs, a rule or an edge set this rig cannot serve."""
    needs = rule.needs
    missing = sorted(needs.output_modes - set(capabilities.output_modes))
    net = ports.network
    if missing:
        why = {"current": "current sources beside the output edges (an SMU in current mode)",
               "clamp": "voltage clamps across the output edges (an SMU in voltage mode)"}
        raise PlanError(f"rule '{rule.name}' needs {' and '.join(why[m] for m in missing)}; "
                        f"this rig's outputs offer only: {', '.join(sorted(capabilities.output_modes))}")
    if needs.inputs_off and not capabilities.inputs_can_short:
        raise PlanError(f"rule '{rule.name}' needs input sources that can be set to 0 V while connected")
    if any(kind != SERIES for kind in ports.input_kind):
        raise PlanError("a rig drives inputs as series sources on input edges; these ports use netlist sources")
    for what, edges, have in (("readable", learnable, capabilities.readable),
                              ("tunable", learnable, capabilities.tunable),
                              ("readable", ports.outputs, capabilities.readable)):
        lacking = np.setdiff1d(edges, have)
        if lacking.size:
            names = ", ".join(net.edge_names[k] for k in lacking[:6])
            raise PlanError(f"edges {names}{' ...' if lacking.size > 6 else ''} are not {what} on this rig, "
                            f"but rule '{rule.name}' needs them {what}")


def minimum_exchanges_per_sample(rule, d_in: int, d_out: int, batch: int) -> float:
    """The fewest instrument exchanges a sample of a phase-based ``rule`` needs on a bench with
    d_in input and d_out output units: the inputs set whenever they change (the sample's values,
    then every switch off or on), the outputs driven whenever their drive changes (each phase,
    then back to open), one multiplexer scan per phase, and one board write per update (spread
    over the batch)."""
    input_changes, inputs_on = 1, True
    for phase in rule.phases:
        if phase.inputs_on != inputs_on:
            input_changes += 1
            inputs_on = phase.inputs_on
    phases = len(rule.phases) + 1
    return input_changes * d_in + phases * d_out + phases + 1.0 / batch


def program_plan(edges: np.ndarray, ohms: np.ndarray) -> Plan:
    """Write ``ohms`` (k,) to ``edges``; returns the achieved ohms (k,)."""
    yield Msg("note", ("programming",))
    achieved = yield Msg("program", (np.asarray(edges), np.asarray(ohms, dtype=float)))
    return np.asarray(achieved, dtype=float)
