"""Independent reference implementations of the batch Omega gradient, for bench_solver.py.

Both start from the network's edge list and roles, not from hwlearn's solver, ports or rules,
so that a mistake on one side cannot hide in the other: bench_solver.py cross-checks them
against hwlearn before it times anything.

Quantities (docs/theory.md, sections 1-2): B~ is the incidence matrix (+1 at an edge's ``a`` node,
-1 at its ``b`` node) without the ground row, G = diag(1/r), L = B~ G B~^T. Input k drives the
series source of input edge k with ``gain * x_k``; the outputs are the output edges' resistor
voltages. The loss is 1/2 mean_s |P_o v_s - y_s|^2 and every function returns its gradient
with respect to the resistances r:

    grad_r = mean_s  i_F,s * (I - Omega^T) P_o^T e_s,    i_F = G v,  v = -Omega s,
    Omega = I - B~^T L^-1 B~ G,   so  (I - Omega^T) j = G B~^T L^-1 B~ j.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

BYTES_PER_FLOAT = 8


@dataclass(frozen=True)
class Problem:
    """One network at one resistance vector, as plain arrays."""

    incidence: sp.csc_matrix  # B~, (n - 1, m)
    conductance: np.ndarray  # (m,)
    inputs: np.ndarray  # input edge of each input feature
    outputs: np.ndarray  # output edge of each target
    gain: float

    @classmethod
    def of(cls, network, resistance: np.ndarray, gain: float = 1.0) -> Problem:
        """The problem for a network without ideal V/I sources (all benchmark networks)."""
        if len(network.vsources) or len(network.isources):
            raise ValueError("the reference gradients handle resistor networks with series sources only")
        return cls(reduced_incidence(network), 1.0 / np.asarray(resistance, dtype=float),
                   np.asarray(network.inputs), np.asarray(network.outputs), gain)

    @property
    def n_edges(self) -> int:
        return self.conductance.size

    def laplacian(self) -> sp.csc_matrix:
        """L = B~ G B~^T, assembled with scipy.sparse."""
        inc = self.incidence
        return (inc @ sp.diags(self.conductance) @ inc.T).tocsc()

    def sources(self, x: np.ndarray) -> np.ndarray:
        """(m, B) series-source volts of every edge for inputs x (d_in, B)."""
        s = np.zeros((self.n_edges, x.shape[1]))
        s[self.inputs] = self.gain * x
        return s

    def output_drive(self, errors: np.ndarray) -> np.ndarray:
        """(m, B) P_o^T e: the errors placed on the output edges."""
        j = np.zeros((self.n_edges, errors.shape[1]))
        j[self.outputs] = errors
        return j


def reduced_incidence(network) -> sp.csc_matrix:
    """B~: +1 at each edge's ``a`` node, -1 at its ``b`` node, the ground row removed."""
    m, n = network.n_edges, network.n_nodes
    edges = np.arange(m)
    full = sp.csr_matrix((np.r_[np.ones(m), -np.ones(m)],
                          (np.r_[network.edge_a, network.edge_b], np.r_[edges, edges])), shape=(n, m))
    keep = np.arange(n) != network.ground
    return full[keep].tocsc()


# ----------------------------------------------------------------------------- (a) dense projector
def omega_gibibytes(n_edges: int) -> float:
    """Memory of one dense m x m Omega."""
    return n_edges * n_edges * BYTES_PER_FLOAT / 2**30


def dense_omega(problem: Problem) -> np.ndarray:
    """Omega = I - B~^T L^-1 B~ G as a dense (m, m) array, with dense LAPACK Cholesky."""
    inc, g = problem.incidence, problem.conductance
    factor = sla.cho_factor(problem.laplacian().toarray(), lower=True, check_finite=False)
    driven = (inc @ sp.diags(g)).toarray()  # B~ G, (n - 1, m)
    potentials = sla.cho_solve(factor, driven, overwrite_b=True, check_finite=False)
    omega = -np.asarray(inc.T @ potentials)
    omega[np.diag_indices_from(omega)] += 1.0
    return omega


def dense_projector_gradient(problem: Problem, omega: np.ndarray, x: np.ndarray,
                             y: np.ndarray) -> tuple[float, np.ndarray]:
    """(loss, grad_r) of a batch with dense products by Omega, as the projector form reads."""
    v = -(omega @ problem.sources(x))
    errors = v[problem.outputs] - y
    j = problem.output_drive(errors)
    delta = j - omega.T @ j  # (I - Omega^T) P_o^T e
    free_currents = problem.conductance[:, None] * v
    loss = 0.5 * float(np.mean(np.sum(errors * errors, axis=0)))
    return loss, np.mean(free_currents * delta, axis=1)


# ----------------------------------------------------------------------------- (b) per-sample SuperLU
def splu_sample_gradient(problem: Problem, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grad_r of one sample's loss, the straightforward way: assemble L, factor it with
    SuperLU's default options (a general LU, fresh ordering every time), then solve forward
    and adjoint. x: (d_in,), y: (d_out,)."""
    inc, g = problem.incidence, problem.conductance
    lu = spla.splu(problem.laplacian())
    s = problem.sources(x[:, None])[:, 0]
    v = inc.T @ lu.solve(inc @ (g * s)) - s
    j = problem.output_drive((v[problem.outputs] - y)[:, None])[:, 0]
    delta = g * (inc.T @ lu.solve(inc @ j))  # (I - Omega^T) j = G B~^T L^-1 B~ j
    return (g * v) * delta


def splu_batch_gradient(problem: Problem, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grad_r of the batch-mean loss, one refactorisation per sample."""
    batch = x.shape[1]
    return sum(splu_sample_gradient(problem, x[:, k], y[:, k]) for k in range(batch)) / batch
