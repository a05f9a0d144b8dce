"""Plan messages: what a plan asks of a rig, and how a plan reads (Bluesky's shape).

A plan is a generator. It yields Msg objects and receives each one's result, so it can compute
the next drive from what was measured; it returns its result. It describes; an executor runs it:
the run engine on a Rig (hwlearn.engine), or the solver for a whole block of samples at once
(hwlearn.rules.executor). Array arguments are column blocks, (d_in, B) inputs and (d_out, B)
output drives, and ``measure`` answers (k, B) resistor voltages; a Rig runs blocks of one sample
(``single_sample`` adapts them to its per-sample calls).

Verbs and their arguments:
    set_inputs     (volts (d_in, B) or None,)   input edges' series sources; None: inputs off
    drive_outputs  (mode, values (d_out, B) or None)   'open', 'current' (amps) or 'clamp' (volts)
    measure        (edges (k,),)                resistor voltages of those edges, one scan
    program        (edges (k,), ohms (k,))      write and verify; answers the achieved ohms (k,)
    note           (text,)                      where the plan is (a phase's name), for displays;
                                                touches nothing, answers None
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwlearn.errors import HwlearnError

VERBS = ("set_inputs", "drive_outputs", "measure", "program", "note")

Plan = Generator["Msg", Any, Any]


@dataclass(frozen=True)
class Msg:
    """One rig operation: ``verb`` is one of VERBS, ``args`` its arguments."""

    verb: str
    args: tuple = ()


class PlanError(HwlearnError):
    """A plan cannot run on this rig; the message names the missing capability."""


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


def single_sample(plan: Plan) -> Plan:
    """The plan as a Rig runs it: block arguments of one column passed as vectors ((d,) instead
    of (d, 1)), and each measurement (k,) handed back as a (k, 1) block. An exception thrown in
    (an executor's way of reporting a failed message) is passed on to the plan, so that its own
    clean-up runs."""
    try:
        msg = next(plan)
        while True:
            try:
                result = yield _one_sample(msg)
            except GeneratorExit:
                plan.close()
                raise
            except BaseException as exc:  # passed on to the plan, never swallowed
                msg = plan.throw(exc)
                continue
            if msg.verb == "measure":
                result = np.asarray(result, dtype=float).reshape(-1, 1)
            msg = plan.send(result)
    except StopIteration as done:
        return done.value


def _one_sample(msg: Msg) -> Msg:
    if msg.verb == "set_inputs" and msg.args[0] is not None:
        return Msg(msg.verb, (_column(msg.args[0], "set_inputs"),))
    if msg.verb == "drive_outputs" and msg.args[1] is not None:
        return Msg(msg.verb, (msg.args[0], _column(msg.args[1], "drive_outputs")))
    return msg


def _column(values, verb: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim == 2:
        if values.shape[1] != 1:
            raise PlanError(f"{verb}: a rig takes one sample at a time, the plan gave {values.shape[1]}")
        return values[:, 0]
    return values
