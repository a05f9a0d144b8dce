"""The network: a graph of resistor edges with roles, plus optional ideal sources.

Conventions (docs/theory.md, section 1; fixed once here):
- Edge k runs from node ``a[k]`` (the SPICE positive node, the "head", +1 in the incidence
  matrix B) to node ``b[k]`` (-1 in B).
- An edge is a resistor r_k in series with an ideal source s_k whose positive terminal faces
  ``a``. The resistor voltage is v_k = p[a] - p[b] - s_k and its current i_k = v_k / r_k flows
  from ``a`` to ``b`` through the edge. For an edge without a source this is SPICE's
  V(n1) - V(n2) and I(R) for ``R n1 n2``.
- An ideal voltage source (a netlist ``V``) holds p[pos] - p[neg] = value; its current is the
  current into its positive terminal, SPICE's convention.
- An ideal current source (a netlist ``I``) drives ``value`` amps from ``pos`` through itself
  to ``neg``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from hwlearn.errors import NetworkError

ROLES = ("input", "output", "readable", "tunable")


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class SourceSet:
    """Ideal sources of one kind (voltage or current) between pairs of nodes."""

    names: tuple[str, ...] = ()
    pos: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    neg: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def build(cls, names: Sequence[str], pos, neg, values) -> SourceSet:
        return cls(
            tuple(names),
            _frozen(np.asarray(pos, dtype=np.int64).reshape(-1)),
            _frozen(np.asarray(neg, dtype=np.int64).reshape(-1)),
            _frozen(np.asarray(values, dtype=float).reshape(-1)),
        )


class Network:
    """A resistor network with edge roles. Immutable: ``with_*`` methods return copies.

    Parameters
    ----------
    node_names : node names, unique; ``ground`` indexes the ground node.
    edge_a, edge_b : (m,) node indices of each edge's positive and negative end.
    resistance : (m,) ohms, finite and > 0.
    edge_names : (m,) unique names (default ``R0``, ``R1``, ...).
    series_volts : (m,) series source of each edge in volts (default 0).
    roles : role name -> edge names, edge indices or a boolean mask.
    vsources, isources : ideal voltage / current sources between nodes.
    """

    def __init__(
        self,
        node_names: Sequence[str],
        edge_a,
        edge_b,
        resistance,
        *,
        ground: int = 0,
        edge_names: Sequence[str] | None = None,
        series_volts=None,
        roles: Mapping[str, object] | None = None,
        vsources: SourceSet | None = None,
        isources: SourceSet | None = None,
        title: str = "",
    ):
        self.node_names = tuple(str(n) for n in node_names)
        n = len(self.node_names)
        if n < 2:
            raise NetworkError(f"a network needs at least 2 nodes, got {n}")
        if not 0 <= ground < n:
            raise NetworkError(f"ground index {ground} is outside the {n} nodes")
        self.ground = int(ground)
        self.title = title
        self.edge_a = _frozen(np.array(edge_a, dtype=np.int64).reshape(-1))
        self.edge_b = _frozen(np.array(edge_b, dtype=np.int64).reshape(-1))
        m = self.edge_a.size
        if self.edge_b.size != m:
            raise NetworkError(f"edge_a has {m} entries but edge_b has {self.edge_b.size}")
        self.edge_names = (
            tuple(f"R{k}" for k in range(m)) if edge_names is None else tuple(map(str, edge_names))
        )
        if len(self.edge_names) != m:
            raise NetworkError(f"{len(self.edge_names)} edge names given for {m} edges")
        self.resistance = _frozen(np.array(resistance, dtype=float).reshape(-1))
        if self.resistance.size != m:
            raise NetworkError(f"{self.resistance.size} resistances given for {m} edges")
        self.series_volts = _frozen(
            np.zeros(m) if series_volts is None else np.array(series_volts, dtype=float).reshape(-1)
        )
        if self.series_volts.size != m:
            raise NetworkError(f"{self.series_volts.size} series sources given for {m} edges")
        self.vsources = vsources or SourceSet()
        self.isources = isources or SourceSet()
        self._check_topology()
        check_resistances(self.resistance, self.edge_names)
        if not np.all(np.isfinite(self.series_volts)):
            k = int(np.flatnonzero(~np.isfinite(self.series_volts))[0])
            raise NetworkError(f"edge {self.edge_names[k]}: series source {self.series_volts[k]} V is not finite")
        for kind, sources in (("voltage", self.vsources), ("current", self.isources)):
            bad = np.flatnonzero(~np.isfinite(sources.values))
            if bad.size:
                k = int(bad[0])
                raise NetworkError(f"{kind} source {sources.names[k]}: value {sources.values[k]} is not finite")
        self.roles = self._resolve_roles(roles or {})

    # ----------------------------------------------------------------- validation
    def _check_topology(self) -> None:
        n, m = self.n_nodes, self.n_edges
        names = list(self.node_names)
        if len(set(names)) != len(names):
            dup = sorted({x for x in names if names.count(x) > 1})
            raise NetworkError(f"node names must be unique; repeated: {', '.join(dup[:5])}")
        if "0" in self.node_names and self.node_names.index("0") != self.ground:
            raise NetworkError("node '0' is reserved for ground, but ground is "
                               f"'{self.node_names[self.ground]}'")
        for what, a, b, labels in (
            ("edge", self.edge_a, self.edge_b, self.edge_names),
            ("voltage source", self.vsources.pos, self.vsources.neg, self.vsources.names),
            ("current source", self.isources.pos, self.isources.neg, self.isources.names),
        ):
            if a.size and (a.min() < 0 or b.min() < 0 or a.max() >= n or b.max() >= n):
                k = int(np.flatnonzero((a < 0) | (b < 0) | (a >= n) | (b >= n))[0])
                raise NetworkError(f"{what} {labels[k]} names node index ({a[k]}, {b[k]}) outside 0..{n - 1}")
            if what != "current source" and np.any(a == b):
                k = int(np.flatnonzero(a == b)[0])
                raise NetworkError(f"{what} {labels[k]} connects node '{self.node_names[a[k]]}' to itself")
        elements = list(self.edge_names) + list(self.vsources.names) + list(self.isources.names)
        if len(set(x.lower() for x in elements)) != len(elements):
            seen, dup = set(), []
            for x in elements:
                if x.lower() in seen:
                    dup.append(x)
                seen.add(x.lower())
            raise NetworkError(f"element names must be unique; repeated: {', '.join(dup[:5])}")
        if m == 0:
            raise NetworkError("a network needs at least one resistor edge")

    def _resolve_roles(self, roles: Mapping[str, object]) -> dict[str, np.ndarray]:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise NetworkError(f"unknown edge role(s) {sorted(unknown)}; allowed: {', '.join(ROLES)}")
        resolved = {}
        for role in ROLES:
            mask = np.zeros(self.n_edges, dtype=bool)
            spec = roles.get(role)
            if spec is not None:
                mask[self.edge_indices(spec, what=f"role '{role}'")] = True
            resolved[role] = _frozen(mask)
        both = np.flatnonzero(resolved["input"] & resolved["output"])
        if both.size:
            names = ", ".join(self.edge_names[k] for k in both[:5])
            raise NetworkError(f"edges cannot be both input and output: {names}")
        return resolved

    # ----------------------------------------------------------------- sizes and lookup
    @property
    def n_nodes(self) -> int:
        return len(self.node_names)

    @property
    def n_edges(self) -> int:
        return int(self.edge_a.size)

    @cached_property
    def _edge_lookup(self) -> dict[str, int]:
        return {name.lower(): k for k, name in enumerate(self.edge_names)}

    def edge_indices(self, spec, what: str = "edge list") -> np.ndarray:
        """Indices of edges given as names (case-insensitive, as in SPICE), integer indices or a
        boolean mask of length m."""
        if isinstance(spec, str):
            spec = [spec]
        arr = np.asarray(list(spec) if not isinstance(spec, np.ndarray) else spec)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.dtype == bool:
            if arr.size != self.n_edges:
                raise NetworkError(f"{what}: boolean mask has {arr.size} entries for {self.n_edges} edges")
            return np.flatnonzero(arr)
        if np.issubdtype(arr.dtype, np.integer):
            bad = arr[(arr < 0) | (arr >= self.n_edges)]
            if bad.size:
                raise NetworkError(f"{what}: edge index {int(bad[0])} outside 0..{self.n_edges - 1}")
            return arr.astype(np.int64)
        missing = [str(x) for x in arr if str(x).lower() not in self._edge_lookup]
        if missing:
            raise NetworkError(f"{what}: no edge named {', '.join(missing[:5])}"
                               f"{' ...' if len(missing) > 5 else ''} (the network has {self.n_edges} edges, "
                               f"e.g. {', '.join(self.edge_names[:3])})")
        return np.array([self._edge_lookup[str(x).lower()] for x in arr], dtype=np.int64)

    def role(self, name: str) -> np.ndarray:
        """Indices of the edges that have role ``name``."""
        if name not in ROLES:
            raise NetworkError(f"unknown role '{name}'; allowed: {', '.join(ROLES)}")
        return np.flatnonzero(self.roles[name])

    @property
    def inputs(self) -> np.ndarray:
        return self.role("input")

    @property
    def outputs(self) -> np.ndarray:
        return self.role("output")

    # ----------------------------------------------------------------- matrices
    @cached_property
    def incidence(self) -> sp.csr_matrix:
        """B, (n x m): +1 at each edge's ``a`` node, -1 at its ``b`` node."""
        m = self.n_edges
        cols = np.arange(m)
        B = sp.csr_matrix(
            (np.r_[np.ones(m), -np.ones(m)], (np.r_[self.edge_a, self.edge_b], np.r_[cols, cols])),
            shape=(self.n_nodes, m),
        )
        return B

    # ----------------------------------------------------------------- copies
    def _copy(self, **changes) -> Network:
        kwargs = dict(
            node_names=self.node_names, edge_a=self.edge_a, edge_b=self.edge_b,
            resistance=self.resistance, ground=self.ground, edge_names=self.edge_names,
            series_volts=self.series_volts, roles=self.roles, vsources=self.vsources,
            isources=self.isources, title=self.title,
        )
        kwargs.update(changes)
        return Network(**kwargs)

    def with_roles(self, **roles) -> Network:
        """A copy with the given roles replaced (others kept). Values as in the constructor."""
        merged = dict(self.roles)
        merged.update(roles)
        return self._copy(roles=merged)

    def with_resistances(self, resistance) -> Network:
        return self._copy(resistance=resistance)

    def with_series_volts(self, series_volts) -> Network:
        return self._copy(series_volts=series_volts)

    def __repr__(self) -> str:
        counts = ", ".join(f"{r}={int(self.roles[r].sum())}" for r in ROLES)
        extra = ""
        if len(self.vsources) or len(self.isources):
            extra = f", {len(self.vsources)} V and {len(self.isources)} I sources"
        return f"<Network {self.title!r}: {self.n_nodes} nodes, {self.n_edges} edges{extra}; {counts}>"


# The solver works in double precision: outside this range a conductance overflows (1e-320 ohm
# gives an infinite one) or vanishes next to its neighbours, and the solution is NaN or noise.
MIN_OHMS, MAX_OHMS = 1e-9, 1e15


def check_resistances(resistance: np.ndarray, names: Sequence[str]) -> None:
    """Raise NetworkError naming the first edge whose resistance is not finite and within
    [MIN_OHMS, MAX_OHMS]."""
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~(np.isfinite(resistance) & (resistance > 0)))
        if not bad.size:
            bad = np.flatnonzero((resistance < MIN_OHMS) | (resistance > MAX_OHMS))
    if bad.size:
        k = int(bad[0])
        more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
        raise NetworkError(
            f"edge {names[k]}: resistance {float(resistance[k])!r} ohm is not allowed; "
            f"resistances must be finite and between {MIN_OHMS:g} and {MAX_OHMS:g} ohm{more}"
        )

