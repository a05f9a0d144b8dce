"""Plan steps every rule shares: the free phase and the free outputs of a block of samples."""

from __future__ import annotations

import numpy as np

from hwlearn.messages import Msg, Plan
from hwlearn.ports import Ports
from hwlearn.rules.phases import PhaseMeasurement


def free_phase(ports: Ports, edges: np.ndarray, x: np.ndarray) -> Plan:
    """Outputs open, inputs on at gain * x (d_in, B), one scan of the outputs and ``edges``.
    Returns (free outputs y_hat (d_out, B), PhaseMeasurement of ``edges`` (k, B))."""
    yield Msg("note", ("free",))
    yield Msg("drive_outputs", ("open", None))
    yield Msg("set_inputs", (ports.gain * x,))
    volts = yield Msg("measure", (np.concatenate((ports.outputs, edges)),))
    volts = np.asarray(volts, dtype=float)
    return volts[:ports.n_outputs], PhaseMeasurement(volts[ports.n_outputs:])


def outputs_plan(ports: Ports, x: np.ndarray) -> Plan:
    """Free-phase outputs (d_out, B) of inputs x (d_in, B)."""
    y_hat, _ = yield from free_phase(ports, np.zeros(0, dtype=np.int64), x)
    return y_hat
