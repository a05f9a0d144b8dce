"""Phase-by-phase simulation: a rule's own phase plan executed by the solver, batch by batch.

The phase voltages come out in exactly the form a bench measures them (resistor voltages on
the measured edges, series nudges realised as Norton currents), because they come from the same
plan a bench runs (the rule's ``phase_plan``), executed for a block of samples at once by
hwlearn.rules.executor. Large batches are cut into chunks to bound memory.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwlearn.ports import Ports
from hwlearn.rules.executor import execute
from hwlearn.rules.phases import PhaseMeasurement, as_columns
from hwlearn.solver import Factorization

# Upper bound on (measured edges x samples) solved at once, to keep phase arrays near 100 MB.
CHUNK_ELEMENTS = 12_000_000

Measure = Callable[[np.ndarray], np.ndarray]


def simulate_phases(fz: Factorization, ports: Ports, rule, x, y, edges: np.ndarray, *,
                    known_ohms: np.ndarray | None = None,
                    measure: Measure | None = None) -> tuple[dict[str, PhaseMeasurement], np.ndarray]:
    """Run ``rule.phase_plan`` for samples x (d_in, B), targets y (d_out, B) on the solver.

    known_ohms : (m,) resistances the host believes (default: the true ones); the plan computes
                 the Norton drives with them, as a bench would.
    measure    : applied to every array of measured voltages (e.g. to add read noise); the
                 outputs that set the drives are the measured ones.
    Returns ({phase name: PhaseMeasurement on ``edges``}, measured free outputs y_hat (d_out, B)).
    """
    known = fz.resistance if known_ohms is None else np.asarray(known_ohms, dtype=float)
    return execute(rule.phase_plan(ports, edges, x, y, known), fz, ports, measure)


def per_sample_gradient(fz: Factorization, ports: Ports, rule, x, y, edges, *,
                        known_ohms: np.ndarray | None = None, measure: Measure | None = None) -> np.ndarray:
    """(k,) batch-mean estimate on ``edges`` from phase measurements, chunked over samples.
    ``known_ohms`` and ``measure`` as in simulate_phases."""
    return per_sample_gradient_and_outputs(fz, ports, rule, x, y, edges, known_ohms=known_ohms,
                                           measure=measure)[0]


def per_sample_gradient_and_outputs(fz: Factorization, ports: Ports, rule, x, y, edges, *,
                                    known_ohms: np.ndarray | None = None,
                                    measure: Measure | None = None) -> tuple[np.ndarray, np.ndarray]:
    """As per_sample_gradient, also returning the measured free outputs (d_out, B)."""
    edges = np.asarray(edges, dtype=np.int64)
    x = as_columns(x, ports.n_inputs, "inputs")
    y = as_columns(y, ports.n_outputs, "targets")
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
