"""Ports: which sources carry the input vector x and which edges are read as outputs.

An input drives one source with ``gain * x_j``: the series source of an input edge (the paper's
s = gamma P_i x), or one of a netlist's ideal V or I sources. Outputs are resistor voltages of
output edges, in the order of the targets. Output drives for the later phases (current
sources or voltage clamps beside the output resistors) are added by ``excitation``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hwlearn.errors import NetworkError
from hwlearn.network import Network
from hwlearn.solver import Excitation

SERIES, VSOURCE, ISOURCE = "series", "vsource", "isource"


@dataclass(frozen=True)
class Ports:
    network: Network
    input_names: tuple[str, ...]
    input_kind: tuple[str, ...]
    input_index: np.ndarray
    outputs: np.ndarray
    gain: float = 1.0

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    @property
    def n_outputs(self) -> int:
        return int(self.outputs.size)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.network.edge_names[k] for k in self.outputs)

    @classmethod
    def from_roles(cls, network: Network, inputs=None, outputs=None, gain: float = 1.0) -> Ports:
        """Inputs are series sources on input edges; both lists default to the network's roles."""
        inp = network.inputs if inputs is None else network.edge_indices(inputs, "inputs")
        out = network.outputs if outputs is None else network.edge_indices(outputs, "outputs")
        _check_disjoint(network, inp, out)
        names = tuple(network.edge_names[k] for k in inp)
        return cls(network, names, (SERIES,) * len(inp), np.asarray(inp), _check_outputs(network, out), gain)

    @classmethod
    def from_sources(cls, network: Network, sources=None, outputs=None, gain: float = 1.0) -> Ports:
        """Inputs are named sources: V or I elements, or edges with a series source.

        Default: every source of the network (input edges and edges with a non-zero series
        source, then V sources, then I sources), driven at the values stored in the network.
        """
        if sources is None:
            series = np.flatnonzero(network.roles["input"] | (network.series_volts != 0))
            sources = ([network.edge_names[k] for k in series] + list(network.vsources.names)
                       + list(network.isources.names))
        lookup = {}
        for kind, names in ((VSOURCE, network.vsources.names), (ISOURCE, network.isources.names)):
            lookup.update({name.lower(): (kind, k) for k, name in enumerate(names)})
        kinds, index, names = [], [], []
        for name in sources:
            if name.lower() in lookup:
                kind, k = lookup[name.lower()]
            else:
                try:
                    kind, k = SERIES, int(network.edge_indices([name], "inputs")[0])
                except NetworkError:
                    raise NetworkError(
                        f"inputs: no source or edge named '{name}' (sources: "
                        f"{', '.join(list(network.vsources.names) + list(network.isources.names)) or 'none'})"
                    ) from None
            kinds.append(kind)
            index.append(k)
            names.append(name)
        if len(set(n.lower() for n in names)) != len(names):
            raise NetworkError(f"inputs: a source is named twice in {', '.join(names)}")
        out = network.outputs if outputs is None else network.edge_indices(outputs, "outputs")
        series = [k for kind, k in zip(kinds, index) if kind == SERIES]
        _check_disjoint(network, np.asarray(series, dtype=np.int64), out)
        return cls(network, tuple(names), tuple(kinds), np.asarray(index, dtype=np.int64),
                   _check_outputs(network, out), gain)

    @cached_property
    def _rows_of_kind(self) -> dict[str, np.ndarray]:
        """Input rows of each source kind present, in the order series, V sources, I sources."""
        kinds = np.asarray(self.input_kind)
        found = {kind: np.flatnonzero(kinds == kind) for kind in (SERIES, VSOURCE, ISOURCE)}
        return {kind: rows for kind, rows in found.items() if rows.size}

    def stored_inputs(self) -> np.ndarray:
        """(d_in,) input vector that reproduces the source values stored in the network."""
        net = self.network
        values = {SERIES: net.series_volts, VSOURCE: net.vsources.values, ISOURCE: net.isources.values}
        return np.array([values[kind][k] for kind, k in zip(self.input_kind, self.input_index)]) / self.gain

    def excitation(self, x=None, *, drive: tuple[str, np.ndarray] | None = None) -> Excitation:
        """Sources for inputs x (d_in, B) (None: inputs off) plus an optional output drive.

        drive: ('current', amps (d_out, B)) current sources beside the output resistors, or
        ('clamp', volts (d_out, B)) voltage sources holding the output voltages.
        """
        if x is not None:
            x = np.asarray(x, dtype=float)
            x = x[:, None] if x.ndim == 1 else x
            if x.shape[0] != self.n_inputs:
                raise NetworkError(f"input vector has {x.shape[0]} rows, the ports have {self.n_inputs} inputs")
            x = self.gain * x
        return self.sources(x, drive=drive)

    def sources(self, values=None, *, drive: tuple[str, np.ndarray] | None = None) -> Excitation:
        """As ``excitation``, for source values already scaled by the gain (what a plan's
        set_inputs carries): volts (d_in, B), amps for a netlist's current sources; None: off."""
        series = vsource = isource = None
        if values is not None:
            scaled = np.asarray(values, dtype=float)
            scaled = scaled[:, None] if scaled.ndim == 1 else scaled
            if scaled.shape[0] != self.n_inputs:
                raise NetworkError(f"input vector has {scaled.shape[0]} rows, the ports have {self.n_inputs} inputs")
            for kind, rows in self._rows_of_kind.items():
                if kind == SERIES:
                    series = (self.input_index[rows], scaled[rows])
                else:
                    count = len(self.network.vsources if kind == VSOURCE else self.network.isources)
                    full = np.zeros((count, scaled.shape[1]))
                    full[self.input_index[rows]] = scaled[rows]
                    if kind == VSOURCE:
                        vsource = full
                    else:
                        isource = full
        parallel = clamp = None
        if drive is not None:
            mode, amounts = drive
            if mode in ("current", "clamp"):
                amounts = np.asarray(amounts, dtype=float)
                amounts = amounts[:, None] if amounts.ndim == 1 else amounts
            if mode == "current":
                parallel = (self.outputs, amounts)
            elif mode == "clamp":
                clamp = (self.outputs, amounts)
            elif mode != "open":
                raise NetworkError(f"output drive mode '{mode}' is unknown; allowed: open, current, clamp")
        # Sources not driven here are off: V sources act as shorts, I sources as opens.
        return Excitation(series=series, parallel=parallel, clamp=clamp, vsource=vsource, isource=isource)


def _check_outputs(network: Network, out: np.ndarray) -> np.ndarray:
    if out.size == 0:
        raise NetworkError("no output edges: name them (--outputs, or the 'output' role)")
    if len(set(out.tolist())) != out.size:
        raise NetworkError("outputs: an edge is named twice")
    return np.asarray(out, dtype=np.int64)


def _check_disjoint(network: Network, inputs: np.ndarray, outputs: np.ndarray) -> None:
    both = sorted(set(np.asarray(inputs).tolist()) & set(np.asarray(outputs).tolist()))
    if both:
        raise NetworkError("edges cannot be both input and output: "
                           + ", ".join(network.edge_names[k] for k in both))
