"""Network builders: square lattice, crossbar (optionally layered), random connected graph.

Every builder returns a Network whose edges not chosen as inputs or outputs are tunable and
readable (change roles with ``Network.with_roles``). Inputs and outputs are given as edge names
or, where noted, as a count placed by a fixed rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwlearn.crossbar.layout import crossbar_line_name
from hwlearn.errors import NetworkError
from hwlearn.network import Network


def with_default_roles(net: Network, inputs, outputs) -> Network:
    """Inputs and outputs as given; every other edge tunable and readable."""
    inp = net.edge_indices(inputs if inputs is not None else [], "inputs")
    out = net.edge_indices(outputs if outputs is not None else [], "outputs")
    rest = np.ones(net.n_edges, dtype=bool)
    rest[inp] = False
    rest[out] = False
    return net.with_roles(input=inp, output=out, tunable=rest, readable=rest)


def _resistances(value, m: int, what: str) -> np.ndarray:
    r = np.broadcast_to(np.asarray(value, dtype=float), (m,)).copy() if np.ndim(value) == 0 \
        else np.asarray(value, dtype=float)
    if r.shape != (m,):
        raise NetworkError(f"{what}: {r.size} resistances given for {m} edges")
    return r


def lattice_edge_names(rows: int, cols: int) -> list[str]:
    """Names in edge order: horizontal ``Rh{r}_{c}`` ((r,c)-(r,c+1)) then vertical ``Rv{r}_{c}``."""
    return ([f"Rh{r}_{c}" for r in range(rows) for c in range(cols - 1)]
            + [f"Rv{r}_{c}" for r in range(rows - 1) for c in range(cols)])


PLACEMENTS = ("sides", "interior")


def lattice_boundary(rows: int, cols: int) -> list[str]:
    """The boundary edges clockwise from the top-left node: top row, right column, bottom row
    (right to left), left column (bottom to top)."""
    return ([f"Rh0_{c}" for c in range(cols - 1)] + [f"Rv{r}_{cols - 1}" for r in range(rows - 1)]
            + ([f"Rh{rows - 1}_{c}" for c in reversed(range(cols - 1))] if rows > 1 else [])
            + ([f"Rv{r}_0" for r in reversed(range(rows - 1))] if cols > 1 else []))


def _evenly(items: Sequence, count: int) -> list:
    """``count`` items spread evenly along ``items``, each at the middle of its share."""
    spots = (np.arange(count) + 0.5) * len(items) / count
    return [items[int(k)] for k in np.floor(spots)]


def lattice_ports(rows: int, cols: int, inputs: int, outputs: int, placement: str) -> tuple[list[str], list[str]]:
    """Edge names for ``inputs`` and ``outputs`` counted ports.

    'sides'    : inputs on the left boundary's vertical edges, outputs on the right one's, from the top.
    'interior' : the paper's setting (docs/reproduction.md): inputs spread evenly around the whole
                 boundary, outputs across horizontal edges of the middle column, spread evenly
                 over the interior rows (ordinary mesh edges, away from every source).
    """
    if placement not in PLACEMENTS:
        raise NetworkError(f"lattice: placement {placement!r} is unknown; allowed: {', '.join(PLACEMENTS)}")
    if placement == "sides":
        for count in (inputs, outputs):
            if count > rows - 1:
                raise NetworkError(f"lattice: {count} boundary edges requested, a column has {rows - 1}")
        return [f"Rv{r}_0" for r in range(inputs)], [f"Rv{r}_{cols - 1}" for r in range(outputs)]
    boundary = lattice_boundary(rows, cols)
    if inputs > len(boundary):
        raise NetworkError(f"lattice: {inputs} inputs requested, a {rows} x {cols} lattice has {len(boundary)} "
                           "boundary edges")
    if rows < 3 or cols < 2 or outputs > rows - 2:
        raise NetworkError(f"lattice: {outputs} interior outputs requested, a {rows} x {cols} lattice's middle "
                           f"column has {max(rows - 2, 0)} interior edges")
    middle = max(cols // 2 - 1, 0)
    return _evenly(boundary, inputs), [f"Rh{r}_{middle}" for r in _evenly(range(1, rows - 1), outputs)]


def lattice(rows: int, cols: int, *, resistance=1000.0, inputs=None, outputs=None,
            ground: tuple[int, int] = (0, 0), placement: str = "sides") -> Network:
    """A rows x cols square lattice of nodes ``n{r}_{c}``; 2 rows cols - rows - cols edges.

    inputs / outputs: edge names, or an int k placed as ``placement`` says (lattice_ports):
    'sides' (the left / right boundary) or 'interior' (the paper's setting).
    """
    if rows < 1 or cols < 1 or rows * cols < 2:
        raise NetworkError(f"lattice: need at least 2 nodes, got {rows} x {cols}")
    gr, gc = ground
    if not (0 <= gr < rows and 0 <= gc < cols):
        raise NetworkError(f"lattice: ground node {ground} is outside the {rows} x {cols} lattice")
    idx = np.arange(rows * cols).reshape(rows, cols)
    a = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    b = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    nodes = [f"n{r}_{c}" for r in range(rows) for c in range(cols)]
    names = lattice_edge_names(rows, cols)
    net = Network(nodes, a, b, _resistances(resistance, a.size, "lattice"), ground=int(idx[gr, gc]),
                  edge_names=names, title=f"lattice {rows}x{cols}")

    def counted(value):
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    if counted(inputs) or counted(outputs):
        placed_in, placed_out = lattice_ports(rows, cols, int(inputs) if counted(inputs) else 0,
                                              int(outputs) if counted(outputs) else 0, placement)
        inputs = placed_in if counted(inputs) else inputs
        outputs = placed_out if counted(outputs) else outputs
    return with_default_roles(net, inputs, outputs)


def crossbar(inputs: int, outputs: int, *, hidden: Sequence[int] = (), cross_ohms=10_000.0,
             source_ohms: float = 100.0, load_ohms: float = 1000.0, wire_ohms: float = 0.0,
             selector_ohms: float = 0.0) -> Network:
    """Input lines ``in{i}`` x output lines ``out{j}``, optionally through hidden layers of lines.

    Edges: ``Rin{i}`` (source resistance, ground -> in_i; the input edges carry the series
    sources), crosspoints ``Rx{l}_{i}_{j}`` from line i of layer l to line j of layer l+1
    (tunable, readable), ``Rout{j}`` (load, out_j -> ground; the outputs).

    wire_ohms     : resistance of each line segment between neighbouring crosspoints (and from a
                    line's terminal to its first crosspoint). 0: ideal lines, one node per line.
                    Otherwise a line is its terminal node (``in0``, where sources, loads and
                    voltmeters attach) and one tap node per crosspoint (``in0.3``), joined by
                    segments ``W{line}.{k}``. An input line runs from its terminal past its
                    crosspoints in column order, an output line from its terminal (beside the
                    last row) up the rows, a hidden line first past the crosspoints of the layer
                    before it (from the last row up), then those of the layer after.
    selector_ohms : a selector in series with every crosspoint device (1T1R with its gate on: an
                    ohmic on-resistance), ``S{l}_{i}_{j}`` from the a-side tap to the cell's middle
                    node ``m{l}_{i}_{j}``; 0: none.
    Wire and selector edges are fixed (neither tunable nor readable). With both 0 the network is
    the plain crossbar, edge for edge. docs/crossbar.md has the picture.
    """
    layers = [inputs, *hidden, outputs]
    if any(int(n) < 1 for n in layers):
        raise NetworkError(f"crossbar: every layer needs at least one line, got {layers}")
    for what, value in (("wire_ohms", wire_ohms), ("selector_ohms", selector_ohms)):
        if not (np.isfinite(value) and value >= 0):
            raise NetworkError(f"crossbar: {what} = {value!r}: must be a finite number >= 0")
    last = len(layers) - 1
    lines = [[crossbar_line_name(layer, i, last) for i in range(count)] for layer, count in enumerate(layers)]
    nodes = ["0"] + [name for layer in lines for name in layer]
    index = {name: k for k, name in enumerate(nodes)}
    crosspoints = [(k, i, j) for k in range(last) for i in range(layers[k]) for j in range(layers[k + 1])]

    # Where each crosspoint meets its two lines: the line's own node, or a tap node along it.
    taps: dict[tuple[str, tuple[int, int, int]], int] = {}
    wires: list[tuple[int, int, str]] = []
    if wire_ohms > 0:
        for layer, names in enumerate(lines):
            for k_line, line in enumerate(names):
                along = []
                if layer > 0:   # as the column of the layer before: from the last row up
                    along += [(layer - 1, i, k_line) for i in reversed(range(layers[layer - 1]))]
                if layer < last:  # as the row of the layer after: in column order
                    along += [(layer, k_line, j) for j in range(layers[layer + 1])]
                previous = index[line]
                for position, point in enumerate(along):
                    node = f"{line}.{position}"
                    index[node] = len(nodes)
                    nodes.append(node)
                    wires.append((previous, index[node], f"W{line}.{position}"))
                    taps[(line, point)] = index[node]
                    previous = index[node]

    def meets(line: str, point) -> int:
        return taps.get((line, point), index[line])

    selectors: list[tuple[int, int, str]] = []
    edges: list[tuple[int, int, str]] = [(index[lines[0][i]], 0, f"Rin{i}") for i in range(inputs)]
    for point in crosspoints:
        k, i, j = point
        a, b = meets(lines[k][i], point), meets(lines[k + 1][j], point)
        if selector_ohms > 0:
            middle = f"m{k}_{i}_{j}"
            index[middle] = len(nodes)
            nodes.append(middle)
            selectors.append((a, index[middle], f"S{k}_{i}_{j}"))
            a = index[middle]
        edges.append((a, b, f"Rx{k}_{i}_{j}"))
    edges += [(index[lines[-1][j]], 0, f"Rout{j}") for j in range(outputs)]
    edges += wires + selectors
    n_cross = len(crosspoints)
    ohms = np.r_[np.full(inputs, float(source_ohms)), _resistances(cross_ohms, n_cross, "crossbar"),
                 np.full(outputs, float(load_ohms)), np.full(len(wires), float(wire_ohms)),
                 np.full(len(selectors), float(selector_ohms))]
    a, b, names = zip(*edges)
    extras = (f", wires {wire_ohms:g} ohm" if wires else "") + (f", selectors {selector_ohms:g} ohm"
                                                                   if selectors else "")
    net = Network(nodes, a, b, ohms, ground=0, edge_names=names,
                  title=f"crossbar {'x'.join(map(str, layers))}{extras}")
    cells = np.zeros(net.n_edges, dtype=bool)
    cells[inputs:inputs + n_cross] = True
    return net.with_roles(input=[f"Rin{i}" for i in range(inputs)], output=[f"Rout{j}" for j in range(outputs)],
                          tunable=cells, readable=cells)


def random_graph(n_nodes: int, n_edges: int, *, seed: int, ohms_range=(100.0, 10_000.0),
                 inputs: int = 0, outputs: int = 0) -> Network:
    """A random connected graph: a random spanning tree plus distinct random extra edges.

    Nodes ``0`` (ground) .. ``n-1``, edges ``R0`` ..; resistances log-uniform in ohms_range;
    ``inputs`` and ``outputs`` distinct random edges. Same seed, same network.
    """
    if n_nodes < 2:
        raise NetworkError(f"random_graph: need at least 2 nodes, got {n_nodes}")
    max_edges = n_nodes * (n_nodes - 1) // 2
    if not n_nodes - 1 <= n_edges <= max_edges:
        raise NetworkError(f"random_graph: {n_edges} edges requested; a connected simple graph on "
                           f"{n_nodes} nodes has {n_nodes - 1} to {max_edges}")
    if inputs + outputs > n_edges:
        raise NetworkError(f"random_graph: {inputs} inputs + {outputs} outputs exceed {n_edges} edges")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_nodes)
    pairs = set()
    for i in range(1, n_nodes):  # attach each node to a random earlier one: a spanning tree
        u, v = int(order[i]), int(order[rng.integers(0, i)])
        pairs.add((min(u, v), max(u, v)))
    while len(pairs) < n_edges:
        u, v = (int(t) for t in rng.integers(0, n_nodes, size=2))
        if u != v:
            pairs.add((min(u, v), max(u, v)))
    pairs = sorted(pairs)
    flip = rng.random(len(pairs)) < 0.5
    a = np.array([q if f else p for (p, q), f in zip(pairs, flip)])
    b = np.array([p if f else q for (p, q), f in zip(pairs, flip)])
    lo, hi = ohms_range
    ohms = np.exp(rng.uniform(np.log(lo), np.log(hi), size=len(pairs)))
    net = Network([str(k) for k in range(n_nodes)], a, b, ohms, ground=0,
                  title=f"random graph n={n_nodes} m={n_edges} seed={seed}")
    chosen = rng.choice(n_edges, size=inputs + outputs, replace=False)
    return with_default_roles(net, chosen[:inputs], chosen[inputs:])
