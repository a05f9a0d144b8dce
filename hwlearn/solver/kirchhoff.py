"""Nodal analysis of a Network: one factorisation per resistance vector, many solves.

Equations (see hwlearn.network for the sign conventions). With node potentials
p = T q + W vs (hwlearn.solver.topology), resistor voltages v = B^T p - s and injections
inj = -B_I is - B_par j, Kirchhoff's current law summed over each supernode reads

    L q = B~ G (s - B^T W vs) + T^T inj,     L = B~ G B~^T,  B~ = T^T B,

an SPD system. Every solve is linear in the sources, so a batch of B samples is one solve with B
right-hand sides, and the Factorization can be reused for forward and adjoint phases alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from hwlearn.errors import SolverError
from hwlearn.network import Network, check_resistances
from hwlearn.solver.backends import BACKENDS, choose_backend
from hwlearn.solver.topology import Topology


def _as_batch(values, rows: int, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != rows:
        raise SolverError(f"{what}: expected shape ({rows},) or ({rows}, batch), got {arr.shape}")
    return arr


@dataclass(frozen=True)
class Excitation:
    """The sources applied in one solve, for a batch of samples (columns).

    series   : (edge indices, volts (k, B)): sources in series with those edges' resistors.
    parallel : (edge indices, amps (k, B)): current sources beside those resistors, driving
               current from the edge's ``a`` node to its ``b`` node (the resistor's direction).
    clamp    : (edge indices, volts (k, B)): ideal voltage sources beside those resistors,
               holding their voltage (Coupled Learning's clamped phase).
    vsource  : (nv, B) values of the network's ideal voltage sources (volts).
    isource  : (ni, B) values of the network's ideal current sources (amps).
    """

    series: tuple[np.ndarray, np.ndarray] | None = None
    parallel: tuple[np.ndarray, np.ndarray] | None = None
    clamp: tuple[np.ndarray, np.ndarray] | None = None
    vsource: np.ndarray | None = None
    isource: np.ndarray | None = None

    @property
    def batch(self) -> int:
        arrays = [item[1] for item in (self.series, self.parallel, self.clamp) if item is not None]
        arrays += [a for a in (self.vsource, self.isource) if a is not None]
        sizes = {np.shape(a)[1] if np.ndim(a) == 2 else 1 for a in arrays}
        if len(sizes) > 1:
            raise SolverError(f"excitation arrays disagree on the batch size: {sorted(sizes)}")
        return sizes.pop() if sizes else 1

    @classmethod
    def of_network(cls, network: Network) -> Excitation:
        """The sources stored in the network itself (a netlist's DC values)."""
        nz = np.flatnonzero(network.series_volts)
        return cls(
            series=(nz, network.series_volts[nz][:, None]) if nz.size else None,
            vsource=network.vsources.values[:, None] if len(network.vsources) else None,
            isource=network.isources.values[:, None] if len(network.isources) else None,
        )


class KirchhoffSolver:
    """Structure and symbolic analysis of a network's nodal system, built once.

    ``backend``: 'auto' (dense for small or dense graphs, CHOLMOD if installed, else SuperLU),
    or one of 'dense', 'cholmod', 'superlu'. The chosen name is ``self.backend``.
    """

    def __init__(self, network: Network, backend: str = "auto"):
        self.network = network
        self.topology = Topology.of(network)
        self._pattern, self._value_map = _laplacian_pattern(self.topology)
        self.backend = choose_backend(self._pattern, backend)
        self._analysis = BACKENDS[self.backend](self._pattern)

    def factorize(self, resistance=None) -> Factorization:
        """Numeric factorisation for these resistances (ohms; default: the network's own)."""
        r = self.network.resistance if resistance is None else np.asarray(resistance, dtype=float)
        if r.shape != (self.network.n_edges,):
            raise SolverError(f"resistance vector has shape {r.shape}, expected ({self.network.n_edges},)")
        check_resistances(r, self.network.edge_names)
        return Factorization(self, r)

    @cached_property
    def _vsource_kcl(self):
        """Factorised B_V^T B_V, to recover voltage-source currents from KCL residuals."""
        vs = self.network.vsources
        n = self.network.n_nodes
        cols = np.arange(len(vs))
        bv = sp.csc_matrix((np.r_[np.ones(len(vs)), -np.ones(len(vs))],
                            (np.r_[vs.pos, vs.neg], np.r_[cols, cols])), shape=(n, len(vs)))
        return bv, spla.splu((bv.T @ bv).tocsc())


def _laplacian_pattern(topo: Topology) -> tuple[sp.csc_matrix, sp.csr_matrix]:
    """CSC pattern of L = B~ G B~^T and the sparse map from conductances to its stored values."""
    n, ra, rb = topo.n_reduced, topo.edge_ra, topo.edge_rb
    edges = np.arange(ra.size)
    live = ra != rb  # an edge inside one supernode adds nothing to L
    parts = []
    for rows, cols, sign, sel in (
        (ra, ra, 1.0, live & (ra >= 0)),
        (rb, rb, 1.0, live & (rb >= 0)),
        (ra, rb, -1.0, live & (ra >= 0) & (rb >= 0)),
        (rb, ra, -1.0, live & (ra >= 0) & (rb >= 0)),
    ):
        parts.append((rows[sel], cols[sel], np.full(int(sel.sum()), sign), edges[sel]))
    rows = np.concatenate([p[0] for p in parts])
    cols = np.concatenate([p[1] for p in parts])
    signs = np.concatenate([p[2] for p in parts])
    which = np.concatenate([p[3] for p in parts])
    codes, slot = np.unique(cols * np.int64(max(n, 1)) + rows, return_inverse=True)
    pattern_rows = codes % max(n, 1)
    pattern_cols = codes // max(n, 1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, pattern_cols + 1, 1)
    np.cumsum(indptr, out=indptr)
    pattern = sp.csc_matrix((np.ones(codes.size), pattern_rows, indptr), shape=(n, n))
    value_map = sp.csr_matrix((signs, (slot, which)), shape=(codes.size, ra.size))
    return pattern, value_map


class Factorization:
    """The nodal system factorised for one resistance vector."""

    def __init__(self, solver: KirchhoffSolver, resistance: np.ndarray):
        self.solver = solver
        self.network = solver.network
        self.topology = solver.topology
        self.resistance = resistance
        self.conductance = 1.0 / resistance
        pattern = solver._pattern
        matrix = sp.csc_matrix((solver._value_map @ self.conductance, pattern.indices, pattern.indptr),
                               shape=pattern.shape)
        self._numeric = solver._analysis.factor(matrix) if pattern.shape[0] else None
        self._clamp_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ core solve
    def solve_reduced(self, rhs: np.ndarray) -> np.ndarray:
        if self._numeric is None:
            return np.zeros_like(rhs)
        return self._numeric.solve(rhs)

    @cached_property
    def _vsource_coupling(self) -> sp.csr_matrix:
        """B~ G B^T W: how source offsets drive the reduced unknowns (n_red x nv)."""
        net, W = self.network, self.topology.offsets
        edge_offsets = (W[net.edge_a] - W[net.edge_b]).tocsr()
        return (self.topology.incidence @ sp.diags(self.conductance) @ edge_offsets).tocsr()

    def rhs(self, ex: Excitation, batch: int) -> np.ndarray:
        topo, g = self.topology, self.conductance
        rhs = np.zeros((topo.n_reduced, batch))
        if ex.series is not None:
            idx, vals = ex.series
            rhs += topo.incidence[:, idx] @ (g[idx, None] * _as_batch(vals, len(idx), "series"))
        if ex.parallel is not None:
            idx, vals = ex.parallel
            rhs -= topo.incidence[:, idx] @ _as_batch(vals, len(idx), "parallel")
        if ex.vsource is not None:
            rhs -= self._vsource_coupling @ _as_batch(ex.vsource, len(self.network.vsources), "vsource")
        if ex.isource is not None:
            rhs -= topo.isource_incidence @ _as_batch(ex.isource, len(self.network.isources), "isource")
        return rhs

    def solve(self, excitation: Excitation) -> State:
        """Solve for a batch of excitations; returns the State (lazy voltages and currents)."""
        batch = excitation.batch
        q = self.solve_reduced(self.rhs(excitation, batch))
        state = State(self, q, replace(excitation, clamp=None), batch)
        if excitation.clamp is None:
            return state
        return self._apply_clamp(state, excitation)

    # ------------------------------------------------------------------ clamps
    def _clamp_response(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reduced unknowns per unit parallel current on edges idx, and the (k, k) voltage map."""
        key = tuple(int(k) for k in idx)
        if key not in self._clamp_cache:
            k = len(idx)
            unit = State(self, self.solve_reduced(self.rhs(Excitation(parallel=(idx, np.eye(k))), k)),
                         Excitation(parallel=(idx, np.eye(k))), k)
            response = unit.edge_voltages(idx)
            if k and np.linalg.matrix_rank(response) < k:
                names = ", ".join(self.network.edge_names[j] for j in idx)
                raise SolverError(f"clamped edges {names} form a loop or are shorted by voltage "
                                  "sources: the clamp currents are undetermined")
            self._clamp_cache[key] = (unit.q, response)
        return self._clamp_cache[key]

    def _apply_clamp(self, state: State, ex: Excitation) -> State:
        idx, target = ex.clamp
        idx = np.asarray(idx, dtype=np.int64)
        target = _as_batch(target, len(idx), "clamp")
        q_unit, response = self._clamp_response(idx)
        currents = np.linalg.solve(response, target - state.edge_voltages(idx))
        parallel = ex.parallel
        if parallel is None:
            parallel = (idx, currents)
        else:
            parallel = (np.r_[parallel[0], idx],
                        np.vstack([_as_batch(parallel[1], len(parallel[0]), "parallel"), currents]))
        clamped = State(self, state.q + q_unit @ currents, replace(ex, clamp=None, parallel=parallel),
                        state.batch)
        clamped.clamp_currents = currents
        return clamped


@dataclass
class State:
    """A solved batch. Voltages and currents are computed on demand, for the edges asked."""

    factorization: Factorization
    q: np.ndarray
    excitation: Excitation
    batch: int
    clamp_currents: np.ndarray | None = field(default=None)

    @cached_property
    def _grounded_q(self) -> np.ndarray:
        return self.factorization.topology.grounded(self.q)

    def node_voltages(self) -> np.ndarray:
        """(n, B) node potentials in volts, ground = 0."""
        fz = self.factorization
        p = self._grounded_q[fz.topology.reduced]
        if self.excitation.vsource is not None:
            p = p + fz.topology.offsets @ _as_batch(self.excitation.vsource, len(fz.network.vsources), "vsource")
        return p

    def edge_voltages(self, idx=None) -> np.ndarray:
        """(k, B) resistor voltages v = p[a] - p[b] - s of edges idx (default: all)."""
        fz = self.factorization
        net = fz.network
        idx = np.arange(net.n_edges) if idx is None else np.asarray(idx, dtype=np.int64)
        v = fz.topology.edge_gather(self._grounded_q, idx)
        ex = self.excitation
        if ex.vsource is not None:
            W = fz.topology.offsets
            vs = _as_batch(ex.vsource, len(net.vsources), "vsource")
            v += (W[net.edge_a[idx]] - W[net.edge_b[idx]]) @ vs
        if ex.series is not None:
            s_idx, s_val = ex.series
            s_val = _as_batch(s_val, len(s_idx), "series")
            slot = np.full(net.n_edges, -1, dtype=np.int64)
            slot[s_idx] = np.arange(len(s_idx))
            hit = slot[idx]
            rows = np.flatnonzero(hit >= 0)
            v[rows] -= s_val[hit[rows]]
        return v

    def edge_currents(self, idx=None) -> np.ndarray:
        """(k, B) resistor currents in amps, flowing a -> b."""
        g = self.factorization.conductance
        g = g if idx is None else g[np.asarray(idx, dtype=np.int64)]
        return g[:, None] * self.edge_voltages(idx)

    def injections(self) -> np.ndarray:
        """(n, B) current injected into each node by current sources (parallel ones included)."""
        fz = self.factorization
        net = fz.network
        inj = np.zeros((net.n_nodes, self.batch))
        ex = self.excitation
        if ex.isource is not None and len(net.isources):
            vals = _as_batch(ex.isource, len(net.isources), "isource")
            np.add.at(inj, net.isources.neg, vals)
            np.add.at(inj, net.isources.pos, -vals)
        if ex.parallel is not None:
            idx, vals = ex.parallel
            vals = _as_batch(vals, len(idx), "parallel")
            np.add.at(inj, net.edge_b[idx], vals)
            np.add.at(inj, net.edge_a[idx], -vals)
        return inj

    def vsource_currents(self) -> np.ndarray:
        """(nv, B) current into each ideal voltage source's positive terminal (SPICE sign)."""
        net = self.factorization.network
        if len(net.vsources) == 0:
            return np.zeros((0, self.batch))
        bv, normal = self.factorization.solver._vsource_kcl
        residual = self.injections() - net.incidence @ self.edge_currents()
        return normal.solve(np.asarray(bv.T @ residual))
