"""Per-sample path: each rule's phases solved as a bench would run them, batch by batch.

The phase voltages come out in exactly the form a bench measures them (resistor voltages on
the measured edges, series nudges realised as Norton currents), and the estimate comes from
the same rule code a bench plan calls. Large batches are cut into chunks to bound memory.
"""

from __future__ import annotations

import numpy as np

from hwlearn.ports import Ports
from hwlearn.rules.base import FREE, BilinearRule, PhaseMeasurement
from hwlearn.solver import Factorization

# Upper bound on (measured edges x samples) solved at once, to keep phase arrays near 100 MB.
CHUNK_ELEMENTS = 12_000_000


def _as_columns(values, rows: int, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    arr = arr[:, None] if arr.ndim == 1 else arr
    if arr.shape[0] != rows:
        raise ValueError(f"{what} has {arr.shape[0]} rows, expected {rows}")
    return arr


def output_rows(ports: Ports, edges: np.ndarray) -> np.ndarray:
    """Row of each output within ``edges`` (-1 where an output is not among them)."""
    slot = np.full(ports.network.n_edges, -1, dtype=np.int64)
    slot[np.asarray(edges, dtype=np.int64)] = np.arange(len(edges))
    return slot[ports.outputs]


def simulate_phases(fz: Factorization, ports: Ports, rule: BilinearRule, x, y, edges: np.ndarray):
    """Solve the free phase and the rule's phases for samples x (d_in, B), targets y (d_out, B).

    Returns ({phase name: PhaseMeasurement on ``edges``}, free outputs y_hat (d_out, B)).
    """
    x = _as_columns(x, ports.n_inputs, "inputs")
    y = _as_columns(y, ports.n_outputs, "targets")
    free = fz.solve(ports.excitation(x))
    y_hat = free.edge_voltages(ports.outputs)
    measured = {FREE: PhaseMeasurement(free.edge_voltages(edges))}
    rows = output_rows(ports, edges)
    out_ohms = fz.resistance[ports.outputs]
    for phase in rule.phases:
        drive = phase.rig_drive(y_hat, y, out_ohms)
        state = fz.solve(ports.excitation(x if phase.inputs_on else None, drive=drive))
        measured[phase.name] = PhaseMeasurement(
            state.edge_voltages(edges), phase.series_equivalent(y_hat, y, rows, len(edges)))
    return measured, y_hat


def per_sample_gradient(fz: Factorization, ports: Ports, rule: BilinearRule, x, y, edges) -> np.ndarray:
    """(k,) batch-mean estimate on ``edges`` from phase measurements, chunked over samples."""
    edges = np.asarray(edges, dtype=np.int64)
    x = _as_columns(x, ports.n_inputs, "inputs")
    y = _as_columns(y, ports.n_outputs, "targets")
    batch = x.shape[1]
    chunk = max(1, CHUNK_ELEMENTS // max(fz.network.n_edges, len(edges), 1))
    total = np.zeros(len(edges))
    for start in range(0, batch, chunk):
        part = slice(start, min(start + chunk, batch))
        measured, _ = simulate_phases(fz, ports, rule, x[:, part], y[:, part], edges)
        width = part.stop - part.start
        total += rule.gradient_from_measurements(measured, fz.resistance[edges]) * (width / batch)
    return total
