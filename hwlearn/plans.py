"""Plans: what a rule does on a bench, as a sequence of messages (Bluesky's shape).

A plan is a generator. It yields Msg objects (set the inputs, drive the outputs, measure, program)
and receives each one's result, so it can compute the next drive from what was measured. It
describes; hwlearn.engine.RunEngine executes it on any Rig (simulated, virtual bench, real). The
numbers a plan hands to the rule are exactly what a bench measures: resistor voltages on the
measured edges, output drives in the form the rig applies them (hwlearn.rules.base).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwlearn.errors import HwlearnError
from hwlearn.ports import SERIES, Ports
from hwlearn.rig import Capabilities
from hwlearn.rules import (
    FREE,
    BilinearRule,
    FiniteDifference,
    PhaseMeasurement,
    mse_loss,
)
from hwlearn.rules.simulate import output_rows

Plan = Generator["Msg", Any, Any]


@dataclass(frozen=True)
class Msg:
    """One rig operation: verb is set_inputs, drive_outputs, measure or program."""

    verb: str
    args: tuple = ()


class PlanError(HwlearnError):
    """A plan cannot run on this rig; the message names the missing capability."""


def required_capabilities(rule) -> tuple[set[str], bool]:
    """(output modes the rule needs, whether it needs inputs switched to 0 V while connected)."""
    if isinstance(rule, FiniteDifference):
        return set(), False
    modes = {"clamp" if p.mode == "clamp" else "current" for p in rule.phases}
    return modes, any(not p.inputs_on for p in rule.phases)


def check_rule_on_rig(rule, capabilities: Capabilities, ports: Ports, learnable: np.ndarray) -> None:
    """Refuse, before anything runs, a rule or an edge set this rig cannot serve."""
    modes, needs_short = required_capabilities(rule)
    missing = sorted(modes - set(capabilities.output_modes))
    net = ports.network
    if missing:
        why = {"current": "current sources beside the output edges (an SMU in current mode)",
               "clamp": "voltage clamps across the output edges (an SMU in voltage mode)"}
        raise PlanError(f"rule '{rule.name}' needs {' and '.join(why[m] for m in missing)}; "
                        f"this rig's outputs offer only: {', '.join(sorted(capabilities.output_modes))}")
    if needs_short and not capabilities.inputs_can_short:
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


def minimum_exchanges_per_sample(rule: BilinearRule, d_in: int, d_out: int, batch: int) -> float:
    """The fewest instrument exchanges a sample of ``rule`` needs on a bench with d_in input and
    d_out output units: the inputs set whenever they change (the sample's values, then every
    switch off or on), the outputs driven whenever their drive changes (each phase, then back to
    open), one multiplexer scan per phase, and one board write per update (spread over the batch)."""
    input_changes, inputs_on = 1, True
    for phase in rule.phases:
        if phase.inputs_on != inputs_on:
            input_changes += 1
            inputs_on = phase.inputs_on
    phases = len(rule.phases) + 1
    return input_changes * d_in + phases * d_out + phases + 1.0 / batch


def sample_plan(rule: BilinearRule, ports: Ports, edges: np.ndarray, x: np.ndarray, y: np.ndarray,
                known_ohms: np.ndarray) -> Plan:
    """One sample through the free phase and the rule's phases; returns
    ({phase: PhaseMeasurement (k, 1)}, y_hat (d_out,))."""
    x = np.asarray(x, dtype=float).reshape(-1)
    y = np.asarray(y, dtype=float).reshape(-1, 1)
    scan = np.r_[ports.outputs, edges]
    yield Msg("note", (FREE,))  # where the sample stands, for displays (the engine's position)
    yield Msg("drive_outputs", ("open", None))
    yield Msg("set_inputs", (ports.gain * x,))
    volts = yield Msg("measure", (scan,))
    y_hat = np.asarray(volts[:ports.n_outputs], dtype=float).reshape(-1, 1)
    measured = {FREE: PhaseMeasurement(np.asarray(volts[ports.n_outputs:], dtype=float).reshape(-1, 1))}
    rows = output_rows(ports, edges)
    inputs_on = True
    for phase in rule.phases:
        mode, values = phase.rig_drive(y_hat, y, known_ohms[ports.outputs])
        yield Msg("note", (phase.name,))
        if phase.inputs_on != inputs_on:
            yield Msg("set_inputs", (ports.gain * x if phase.inputs_on else None,))
            inputs_on = phase.inputs_on
        yield Msg("drive_outputs", (mode, values[:, 0]))
        volts = yield Msg("measure", (edges,))
        measured[phase.name] = PhaseMeasurement(np.asarray(volts, dtype=float).reshape(-1, 1),
                                                phase.series_equivalent(y_hat, y, rows, len(edges)))
    yield Msg("drive_outputs", ("open", None))
    return measured, y_hat[:, 0]


def outputs_plan(ports: Ports, x: np.ndarray) -> Plan:
    """Free-phase outputs of one sample (d_out,)."""
    yield Msg("note", ("evaluation",))
    yield Msg("drive_outputs", ("open", None))
    yield Msg("set_inputs", (ports.gain * np.asarray(x, dtype=float).reshape(-1),))
    volts = yield Msg("measure", (ports.outputs,))
    return np.asarray(volts, dtype=float)


def finite_difference_plan(rule: FiniteDifference, ports: Ports, edges: np.ndarray, x: np.ndarray,
                           y: np.ndarray, known_ohms: np.ndarray) -> Plan:
    """Central differences on a bench: program each edge to r +- h, measure the outputs for the
    batch, restore. Returns (gradient (k,), free outputs (d_out, B))."""
    x, y = np.atleast_2d(x), np.atleast_2d(y)

    def outputs_for_batch():
        columns = []
        for b in range(x.shape[1]):
            columns.append((yield from outputs_plan(ports, x[:, b])))
        return np.array(columns).T

    free = yield from outputs_for_batch()
    steps = rule.steps(known_ohms[edges])
    losses = np.zeros((2, len(edges)))
    spans = np.zeros(len(edges))
    def perturbed(k: int, base: float, step: float):
        reached = []
        for side, sign in enumerate((1.0, -1.0)):
            achieved = yield Msg("program", (np.array([k]), np.array([base + sign * step])))
            reached.append(float(achieved[0]))
            losses[side, row] = mse_loss((yield from outputs_for_batch()), y)
        return reached

    def restore(k: int, base: float):
        yield Msg("program", (np.array([k]), np.array([base])))

    for row, k in enumerate(edges):
        base = known_ohms[k]
        # The edge goes back to its value however the perturbation ends (an error, an abort).
        reached = yield from finalize(perturbed(k, base, steps[row]), lambda k=k, base=base: restore(k, base))
        spans[row] = reached[0] - reached[1]
        if spans[row] <= 0:
            raise PlanError(f"finite differences: edge {ports.network.edge_names[k]} cannot be set to "
                            f"{base:.6g} +- {steps[row]:.3g} ohm (the device holds {reached}); "
                            "raise rule.relative_step above the device's resolution")
    # The achieved span, not the requested one: quantised devices may round the steps.
    return rule.gradient_from_losses(losses[0], losses[1], spans / 2), free


def finalize(plan: Plan, cleanup) -> Plan:
    """``plan``, then the messages of ``cleanup()`` however the plan ends: normally, by its own
    error, or by an error or abort the engine throws into it. Not after an emergency stop: the
    engine closes the plan then, and nothing more may reach the instruments."""
    closed = False
    try:
        return (yield from plan)
    except GeneratorExit:
        closed = True
        raise
    finally:
        if not closed:
            yield from cleanup()


def program_plan(edges: np.ndarray, ohms: np.ndarray) -> Plan:
    yield Msg("note", ("programming",))
    achieved = yield Msg("program", (np.asarray(edges), np.asarray(ohms, dtype=float)))
    return np.asarray(achieved, dtype=float)
