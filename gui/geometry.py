"""Where each edge of a run's network is drawn (no Qt here: plain arrays, tested alone).

Layouts, chosen by the network itself:
- a crossbar (edges named ``Rx{layer}_{i}_{j}``) is a heat map of its crosspoints, one block per
  layer (rows: the lines it comes from, columns: the lines it goes to), the input edges as a
  column left of the first block and the output edges as a row under the last one;
- a lattice (nodes named ``n{row}_{col}``) is drawn on its grid, row 0 at the top: as line
  segments, or from LARGE_LATTICE edges on as an image whose pixels between node pixels are the
  edges;
- any other graph gets a layout computed once (spectral, then relaxed by a force-directed pass)
  and cached in the run folder (``gui-layout.npz``), so every view of the run draws it alike.

Edge classes for the marks: input, output, learnable (readable, tunable and updated), frozen
(readable and tunable but masked), fixed (not tunable), unread (not readable).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hwlearn.config import resolve
from hwlearn.experiment import build_experiment
from hwlearn.network import Network
from hwlearn.network_file import network_from_dict

LAYOUT_CACHE = "gui-layout.npz"
# From this many edges on, a lattice is drawn as an image (an edge is the pixel between its two
# nodes' pixels): one blit instead of thousands of line segments, so the map stays live.
LARGE_LATTICE = 2000
_CROSSPOINT = re.compile(r"^Rx(\d+)_(\d+)_(\d+)$")
_INPUT_LINE = re.compile(r"^Rin(\d+)$")
_OUTPUT_LINE = re.compile(r"^Rout(\d+)$")
_GRID_NODE = re.compile(r"^n(\d+)_(\d+)$")


@dataclass
class EdgeGeometry:
    """kind 'segments': edge k is the line (x0[k], y0[k]) - (x1[k], y1[k]); kind 'cells': edge k
    is the pixel (row[k], col[k]) of an image of ``shape`` (row -1: not drawn). ``mid`` (m, 2)
    is where an edge's mark and hover point sit. ``classes`` maps a class name to a bool mask."""

    kind: str
    names: tuple[str, ...]
    mid: np.ndarray
    classes: dict[str, np.ndarray]
    learnable: np.ndarray
    x0: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y0: np.ndarray = field(default_factory=lambda: np.zeros(0))
    x1: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y1: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shape: tuple[int, int] = (0, 0)
    row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    col: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ticks: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    title: str = ""

    @property
    def n_edges(self) -> int:
        return len(self.names)

    def edge_at(self, x: float, y: float, reach: float) -> int | None:
        """The edge drawn nearest to (x, y), within ``reach`` (in drawing units), or None."""
        if self.kind == "cells":
            r, c = int(np.floor(y)), int(np.floor(x))
            hit = np.flatnonzero((self.row == r) & (self.col == c))
            return int(hit[0]) if hit.size else None
        d2 = (self.mid[:, 0] - x) ** 2 + (self.mid[:, 1] - y) ** 2
        k = int(np.argmin(d2))
        return k if d2[k] <= reach * reach else None

    def describe_edge(self, k: int) -> str:
        kinds = [name for name in ("input", "output", "learnable", "frozen", "fixed", "unread")
                 if self.classes[name][k]]
        return f"{self.names[k]} ({', '.join(kinds)})"


def edge_classes(network: Network, learnable: np.ndarray) -> dict[str, np.ndarray]:
    roles = network.roles
    m = network.n_edges
    io = roles["input"] | roles["output"]
    is_learnable = np.zeros(m, dtype=bool)
    is_learnable[np.asarray(learnable, dtype=np.int64)] = True
    return {
        "input": roles["input"].copy(),
        "output": roles["output"].copy(),
        "learnable": is_learnable,
        "frozen": roles["tunable"] & roles["readable"] & ~is_learnable & ~io,
        "fixed": ~roles["tunable"] & ~io,
        "unread": ~roles["readable"] & ~io,
    }


def run_network(config: dict, rig: dict | None) -> tuple[Network, np.ndarray]:
    """The network a run trained (with the experiment's roles) and its learnable edges: rebuilt
    from the run's config, on the bench's network when the run's rig description carries one."""
    config = resolve(config, "<run config>")
    doc = (rig or {}).get("network")
    network = network_from_dict(doc, "<run's bench network>") if doc else None
    experiment = build_experiment(config, "<run config>", network=network)
    return experiment.network, experiment.learnable


def geometry_for(network: Network, learnable: np.ndarray, cache_dir: Path | None = None) -> EdgeGeometry:
    classes = edge_classes(network, learnable)
    names = network.edge_names
    if any(_CROSSPOINT.match(n) for n in names):
        geometry = _crossbar(network, classes)
    else:
        positions = _grid_positions(network)
        if positions is not None and network.n_edges >= LARGE_LATTICE:
            geometry = _lattice_cells(network, classes, positions)
        else:
            if positions is None:
                positions = _cached_layout(network, cache_dir)
            geometry = _segments(network, classes, positions)
    geometry.learnable = np.asarray(learnable, dtype=np.int64)
    geometry.title = network.title
    return geometry


# ---------------------------------------------------------------------------- crossbars
def _crossbar(network: Network, classes: dict) -> EdgeGeometry:
    names = network.edge_names
    m = len(names)
    parsed = {k: tuple(int(g) for g in _CROSSPOINT.match(n).groups()) for k, n in enumerate(names)
              if _CROSSPOINT.match(n)}
    layers = sorted({layer for layer, _, _ in parsed.values()})
    rows = {layer: 1 + max(i for lay, i, _ in parsed.values() if lay == layer) for layer in layers}
    cols = {layer: 1 + max(j for lay, _, j in parsed.values() if lay == layer) for layer in layers}
    # Blocks side by side with one empty column between; the input strip two columns left.
    offset, x = {}, 2
    for layer in layers:
        offset[layer] = x
        x += cols[layer] + 1
    height = max(rows.values()) + 2
    row = np.full(m, -1, dtype=np.int64)
    col = np.full(m, -1, dtype=np.int64)
    for k, (layer, i, j) in parsed.items():
        row[k], col[k] = i, offset[layer] + j
    last = layers[-1]
    for k, n in enumerate(names):
        if (match := _INPUT_LINE.match(n)) is not None:
            row[k], col[k] = int(match.group(1)), 0
        elif (match := _OUTPUT_LINE.match(n)) is not None:
            row[k], col[k] = rows[last] + 1, offset[last] + int(match.group(1))
    mid = np.column_stack([col + 0.5, row + 0.5]).astype(float)
    bottom = [(0.5, "in")]
    left = [(i + 0.5, f"{i}") for i in range(max(rows.values()))] + [(rows[last] + 1.5, "out")]
    for layer in layers:
        bottom += [(offset[layer] + j + 0.5, f"{j}") for j in range(cols[layer])]
    return EdgeGeometry("cells", tuple(names), mid, classes, np.zeros(0, dtype=np.int64),
                        shape=(height, x - 1), row=row, col=col, ticks={"bottom": bottom, "left": left})


# ---------------------------------------------------------------------------- graphs
def _segments(network: Network, classes: dict, positions: np.ndarray) -> EdgeGeometry:
    a, b = network.edge_a, network.edge_b
    x0, y0 = positions[a, 0], positions[a, 1]
    x1, y1 = positions[b, 0], positions[b, 1]
    mid = np.column_stack([(x0 + x1) / 2, (y0 + y1) / 2])
    return EdgeGeometry("segments", tuple(network.edge_names), mid, classes, np.zeros(0, dtype=np.int64),
                        x0=x0, y0=y0, x1=x1, y1=y1)


def _lattice_cells(network: Network, classes: dict, positions: np.ndarray) -> EdgeGeometry:
    """Node (r, c) at pixel (2r, 2c); the edge between two nodes at the pixel between them."""
    r, c = np.rint(-positions[:, 1]).astype(np.int64), np.rint(positions[:, 0]).astype(np.int64)
    a, b = network.edge_a, network.edge_b
    row, col = r[a] + r[b], c[a] + c[b]
    mid = np.column_stack([col + 0.5, row + 0.5]).astype(float)
    return EdgeGeometry("cells", tuple(network.edge_names), mid, classes, np.zeros(0, dtype=np.int64),
                        shape=(2 * int(r.max()) + 1, 2 * int(c.max()) + 1), row=row, col=col)


def _grid_positions(network: Network) -> np.ndarray | None:
    """(n, 2) positions of a lattice's nodes (x = column, y = -row), or None if not a lattice."""
    cells = [_GRID_NODE.match(name) for name in network.node_names]
    if not all(cells):
        return None
    rc = np.array([[int(c.group(1)), int(c.group(2))] for c in cells], dtype=float)
    return np.column_stack([rc[:, 1], -rc[:, 0]])


def _fingerprint(network: Network) -> str:
    h = hashlib.sha256()
    h.update("\0".join(network.node_names).encode())
    h.update(network.edge_a.tobytes())
    h.update(network.edge_b.tobytes())
    return h.hexdigest()


def _cached_layout(network: Network, cache_dir: Path | None) -> np.ndarray:
    """The layout from ``cache_dir/gui-layout.npz`` when it belongs to this network, else
    computed and written there (atomically; a read-only folder only costs the recomputation)."""
    key = _fingerprint(network)
    path = None if cache_dir is None else Path(cache_dir) / LAYOUT_CACHE
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as cached:
                if str(cached["fingerprint"]) == key:
                    return np.asarray(cached["positions"], dtype=float)
        except (OSError, ValueError, KeyError):
            pass
    positions = graph_layout(network)
    if path is not None:
        tmp = path.with_name(f".tmp-{LAYOUT_CACHE}.{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, fingerprint=np.array(key), positions=positions)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
    return positions


def graph_layout(network: Network, iterations: int = 80, seed: int = 0) -> np.ndarray:
    """(n, 2) node positions: the Laplacian's two lowest non-trivial eigenvectors (spectral),
    then a force-directed relaxation (Fruchterman-Reingold) on graphs small enough for its
    O(n^2) repulsion; deterministic. Scaled so the mean edge is about 1 long."""
    n = network.n_nodes
    a, b = network.edge_a, network.edge_b
    adjacency = sp.coo_matrix((np.ones(a.size), (a, b)), shape=(n, n))
    adjacency = ((adjacency + adjacency.T) > 0).astype(float).tocsr()
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    laplacian = sp.diags(degree) - adjacency
    if n <= 3:
        pos = np.column_stack([np.cos(2 * np.pi * np.arange(n) / n), np.sin(2 * np.pi * np.arange(n) / n)])
    elif n <= 600:
        _, vectors = np.linalg.eigh(laplacian.toarray())
        pos = vectors[:, 1:3].copy()
    else:
        from scipy.sparse.linalg import eigsh

        v0 = np.random.default_rng(seed).standard_normal(n)
        _, vectors = eigsh(laplacian.tocsc() + 1e-6 * sp.identity(n, format="csc"), k=3, sigma=0, which="LM", v0=v0)
        pos = vectors[:, 1:3].copy()
    pos += 1e-3 * np.random.default_rng(seed).standard_normal(pos.shape)
    if n <= 2000:
        pos = _relax(pos, a, b, iterations)
    lengths = np.linalg.norm(pos[a] - pos[b], axis=1)
    scale = float(np.mean(lengths)) if lengths.size and np.mean(lengths) > 0 else 1.0
    return (pos - pos.mean(axis=0)) / scale


def _relax(pos: np.ndarray, a: np.ndarray, b: np.ndarray, iterations: int) -> np.ndarray:
    n = pos.shape[0]
    pos = (pos - pos.mean(axis=0)) / (np.abs(pos).max() + 1e-12)
    k = 1.0 / np.sqrt(n)
    temperature = 0.1
    for _ in range(iterations):
        delta = pos[:, None, :] - pos[None, :, :]
        dist = np.maximum(np.linalg.norm(delta, axis=2), 1e-6)
        force = (delta * (k * k / dist ** 2)[:, :, None]).sum(axis=1)  # repulsion between all nodes
        edge = pos[a] - pos[b]
        length = np.maximum(np.linalg.norm(edge, axis=1), 1e-6)
        pull = edge * (length / k)[:, None]                            # attraction along edges
        np.add.at(force, a, -pull)
        np.add.at(force, b, pull)
        step = np.linalg.norm(force, axis=1)
        pos += force / np.maximum(step, 1e-12)[:, None] * np.minimum(step, temperature)[:, None]
        temperature *= 0.95
    return pos
