"""Topology of the reduced nodal system: supernodes and the reduced incidence matrix.

Ideal voltage sources fix the difference of two node potentials, so the nodes they join form a
supernode whose potentials are one unknown plus fixed offsets (p = T q + W vs). Eliminating the
constraints this way keeps the nodal matrix a symmetric positive definite Laplacian, solvable by
Cholesky, while still handling voltage sources anywhere in a netlist (modified nodal analysis by
elimination). The supernode holding ground has no unknown.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from hwlearn.errors import SolverError
from hwlearn.network import Network


def _preview(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


@dataclass(frozen=True)
class Topology:
    """Everything about the nodal system that does not depend on resistance values.

    reduced : (n,) reduced unknown of each node's supernode, -1 for the ground supernode.
    offsets : (n, nv) sparse W: node potential offsets per volt of each voltage source.
    edge_ra, edge_rb : (m,) reduced unknowns of each edge's ends (-1: ground supernode).
    incidence : (n_red, m) CSC, the reduced incidence T^T B.
    """

    n_reduced: int
    reduced: np.ndarray
    offsets: sp.csr_matrix
    edge_ra: np.ndarray
    edge_rb: np.ndarray
    incidence: sp.csc_matrix
    isource_incidence: sp.csr_matrix

    @classmethod
    def of(cls, network: Network) -> Topology:
        root, offsets = _supernodes(network)
        ground_root = root[network.ground]
        roots = np.unique(root)
        free_roots = roots[roots != ground_root]
        index_of_root = np.full(network.n_nodes, -1, dtype=np.int64)
        index_of_root[free_roots] = np.arange(free_roots.size)
        reduced = index_of_root[root]
        n_red = int(free_roots.size)
        ra, rb = reduced[network.edge_a], reduced[network.edge_b]
        incidence = _signed_incidence(ra, rb, n_red)
        si = network.isources
        isource_incidence = _signed_incidence(reduced[si.pos], reduced[si.neg], n_red).tocsr()
        topo = cls(n_red, reduced, offsets, ra, rb, incidence, isource_incidence)
        topo._check_grounded(network)
        return topo

    def _check_grounded(self, network: Network) -> None:
        """Every supernode needs a resistive path to ground, or the potentials are undetermined."""
        n = self.n_reduced
        if n == 0:
            return
        ground = n  # the ground supernode as an extra graph vertex
        a = np.where(self.edge_ra < 0, ground, self.edge_ra)
        b = np.where(self.edge_rb < 0, ground, self.edge_rb)
        keep = a != b
        graph = sp.coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(n + 1, n + 1))
        _, label = connected_components(graph, directed=False)
        node_label = np.where(self.reduced >= 0, label[self.reduced], label[ground])
        floating = np.flatnonzero(node_label != label[ground])
        if floating.size:
            names = [network.node_names[k] for k in floating]
            raise SolverError(
                f"node(s) {_preview(names)} have no resistive path to ground "
                f"'{network.node_names[network.ground]}': the graph is disconnected or a subnetwork "
                "floats (joined only through current sources or nothing), so its potentials are "
                "undetermined; connect it to ground through a resistor"
            )

    @staticmethod
    def grounded(q: np.ndarray) -> np.ndarray:
        """q with a zero row appended: index -1 (the ground supernode) then reads potential 0."""
        return np.vstack([q, np.zeros((1, q.shape[1]))])

    def edge_gather(self, grounded_q: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """q[ra] - q[rb] for edges idx, from ``grounded(q)``."""
        return grounded_q[self.edge_ra[idx]] - grounded_q[self.edge_rb[idx]]


def _signed_incidence(ra: np.ndarray, rb: np.ndarray, n_red: int) -> sp.csc_matrix:
    """+1 at ra, -1 at rb per column, dropping the ground supernode and cancelling ra == rb."""
    cols = np.arange(ra.size)
    keep = ra != rb
    rows = np.r_[ra[keep & (ra >= 0)], rb[keep & (rb >= 0)]]
    cc = np.r_[cols[keep & (ra >= 0)], cols[keep & (rb >= 0)]]
    vals = np.r_[np.ones(int((keep & (ra >= 0)).sum())), -np.ones(int((keep & (rb >= 0)).sum()))]
    return sp.csc_matrix((vals, (rows, cc)), shape=(n_red, ra.size))


def _supernodes(network: Network) -> tuple[np.ndarray, sp.csr_matrix]:
    """Root node of each node's voltage-source tree, and the offset matrix W (n x nv)."""
    n, vs = network.n_nodes, network.vsources
    root = np.arange(n, dtype=np.int64)
    if len(vs) == 0:
        return root, sp.csr_matrix((n, 0))
    adjacency: dict[int, list[tuple[int, int, float]]] = {}
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for k, (p, q) in enumerate(zip(vs.pos.tolist(), vs.neg.tolist())):
        rp, rq = find(p), find(q)
        if rp == rq:
            loop = _tree_path(adjacency, p, q)
            names = [vs.names[j] for j in sorted(loop + [k])]
            raise SolverError(
                f"voltage sources {', '.join(names)} form a loop: their values either conflict "
                "or leave the loop current undetermined; remove one of them"
            )
        parent[rp] = rq
        # +1: walking pos -> neg the potential drops by the value (p[pos] - p[neg] = V).
        adjacency.setdefault(p, []).append((q, k, -1.0))
        adjacency.setdefault(q, []).append((p, k, +1.0))
    rows: dict[int, dict[int, float]] = {}
    seen = np.zeros(n, dtype=bool)
    starts = [network.ground] + sorted(adjacency)
    for start in starts:
        if seen[start] or start not in adjacency:
            continue
        seen[start] = True
        rows[start] = {}
        queue = deque([start])
        while queue:
            u = queue.popleft()
            for w, k, sign in adjacency[u]:
                if seen[w]:
                    continue
                seen[w] = True
                root[w] = start
                row = dict(rows[u])
                row[k] = row.get(k, 0.0) + sign
                rows[w] = row
                queue.append(w)
    r_idx, c_idx, vals = [], [], []
    for node, row in rows.items():
        for k, val in row.items():
            if val != 0.0:
                r_idx.append(node)
                c_idx.append(k)
                vals.append(val)
    offsets = sp.csr_matrix((vals, (r_idx, c_idx)), shape=(n, len(vs)))
    return root, offsets


def _tree_path(adjacency, start: int, goal: int) -> list[int]:
    """Source indices on the path from start to goal in the voltage-source forest."""
    previous = {start: None}
    queue = deque([start])
    while queue:
        u = queue.popleft()
        if u == goal:
            break
        for w, k, _ in adjacency.get(u, []):
            if w not in previous:
                previous[w] = (u, k)
                queue.append(w)
    path = []
    node = goal
    while previous.get(node) is not None:
        node, k = previous[node]
        path.append(k)
    return path[::-1]
