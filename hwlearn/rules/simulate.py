"""Per-sample path: each rule's phases solved as a bench would run them, batch by batch.

The phase voltages come out in exactly the form a bench measures them (resistor voltages on
the measured edges, series nudges realised as Norton currents), and the estimate comes from
the same rule code a bench plan calls. Large batches are cut into chunks to bound memory.
"""

from __future__ import annotations

from collections.abc import Callable

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


def simulate_phases(fz: Factorization, ports: Ports, rule: BilinearRule, x, y, edges: np.ndarray, *,
                    known_ohms: np.ndarray | None = None, measure: Callable[[np.ndarray], np.ndarray] | None = None):
    """Solve the free phase and the rule's phases for samples x (d_in, B), targets y (d_out, B).

    known_ohms : (m,) resistances the host believes (default: the true ones); it computes the
                 Norton drives with them, as a bench would.
    measure    : applied to every array of measured voltages (e.g. to add read noise); the
                 outputs that set the drives are the measured ones.
    Returns ({phase name: PhaseMeasurement on ``edges``}, measured free outputs y_hat (d_out, B)).
    """
    x = _as_columns(x, ports.n_inputs, "inputs")
    y = _as_columns(y, ports.n_outputs, "targets")
    known = fz.resistance if known_ohms is None else known_ohms
    measure = measure or (lambda volts: volts)
    edges = np.asarray(edges, dtype=np.int64)
    scan = np.r_[ports.outputs, edges]  # one scan reads the outputs and the edges of interest
    free_scan = measure(fz.solve(ports.excitation(x)).edge_voltages(scan))
    y_hat = free_scan[:ports.n_outputs]
    measured = {FREE: PhaseMeasurement(free_scan[ports.n_outputs:])}
    rows = output_rows(ports, edges)
    out_ohms = known[ports.outputs]
    for phase in rule.phases:
        drive = phase.rig_drive(y_hat, y, out_ohms)
        state = fz.solve(ports.excitation(x if phase.inputs_on else None, drive=drive))
        measured[phase.name] = PhaseMeasurement(
            measure(state.edge_voltages(edges)), phase.series_equivalent(y_hat, y, rows, len(edges)))
    return measured, y_hat


def per_sample_gradient(fz: Factorization, ports: Ports, rule: BilinearRule, x, y, edges, *,
                        known_ohms: np.ndarray | None = None,
                        measure: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """(k,) batch-mean estimate on ``edges`` from phase measurements, chunked over samples.
    ``known_ohms`` and ``measure`` as in simulate_phases."""
    return per_sample_gradient_and_outputs(fz, ports, rule, x, y, edges, known_ohms=known_ohms,
                                           measure=measure)[0]


def per_sample_gradient_and_outputs(fz: Factorization, ports: Ports, rule: BilinearRule, x, y, edges, *,
                                    known_ohms=None, measure=None) -> tuple[np.ndarray, np.ndarray]:
    """As per_sample_gradient, also returning the measured free outputs (d_out, B)."""
    edges = np.asarray(edges, dtype=np.int64)
    x = _as_columns(x, ports.n_inputs, "inputs")
    y = _as_columns(y, ports.n_outputs, "targets")
    known = fz.resistance if known_ohms is None else np.asarray(known_ohms, dtype=float)
    batch = x.shape[1]
    chunk = max(1, CHUNK_ELEMENTS // max(fz.network.n_edges, len(edges), 1))
    total = np.zeros(len(edges))
    outputs = np.empty((ports.n_outputs, batch))
    for start in range(0, batch, chunk):
        part = slice(start, min(start + chunk, batch))
        measured, outputs[:, part] = simulate_phases(fz, ports, rule, x[:, part], y[:, part], edges,
                                                     known_ohms=known, measure=measure)
        width = part.stop - part.start
        total += rule.gradient_from_measurements(measured, known[edges]) * (width / batch)
    return total, outputs
