"""A crossbar's geometry, read back from a network that hwlearn.builders.crossbar made.

Lines are the crossbar's wires: ``in{i}`` (the input lines), ``h{l}_{k}`` (hidden layers) and
``out{j}`` (the output lines); each line is one terminal node, where sources, loads and
voltmeters attach (with line resistance, taps along it carry the crosspoints). A crosspoint
``Rx{l}_{i}_{j}`` joins line i of line layer l (its ``a`` side) to line j of layer l+1 (its
``b`` side). What an instrument can see of a crosspoint is the difference of its two lines'
terminal voltages: exactly its voltage on ideal lines without selectors, otherwise that voltage
plus the drops along the wires and across the selector (docs/crossbar.md, "What is measured").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from hwlearn.errors import NetworkError
from hwlearn.network import Network

CROSSPOINT = re.compile(r"Rx(\d+)_(\d+)_(\d+)$")


def crossbar_line_name(layer: int, index: int, last_layer: int) -> str:
    """The terminal node of line ``index`` of line layer ``layer`` (0: inputs, ``last_layer``:
    outputs, between them the hidden layers): ``in{i}``, ``h{layer}_{k}``, ``out{j}``."""
    if layer == 0:
        return f"in{index}"
    if layer == last_layer:
        return f"out{index}"
    return f"h{layer}_{index}"


@dataclass(frozen=True)
class Line:
    """One line: its name (= its terminal node's), line layer and index within the layer."""

    name: str
    layer: int
    index: int
    node: int   # index of the terminal node in the network


@dataclass(frozen=True)
class Crosspoint:
    """A device edge between two lines: ``a_line`` on its a side, ``b_line`` on its b side."""

    edge: int
    name: str
    layer: int
    a_line: str
    b_line: str


class CrossbarLayout:
    """Lines and crosspoints of a crossbar network (``CrossbarLayout.of(network)``)."""

    def __init__(self, network: Network, lines: dict[str, Line], crosspoints: dict[int, Crosspoint]):
        self.network = network
        self.lines = lines
        self.crosspoints = crosspoints

    @classmethod
    def of(cls, network: Network) -> CrossbarLayout:
        """The layout of ``network``; NetworkError if it has no crosspoint ``Rx{l}_{i}_{j}`` or a
        crosspoint's line node is missing (not a network of hwlearn.builders.crossbar)."""
        parsed = {}
        for k, name in enumerate(network.edge_names):
            match = CROSSPOINT.match(name)
            if match:
                parsed[k] = tuple(int(g) for g in match.groups())
        if not parsed:
            raise NetworkError(f"network {network.title!r} has no crosspoint edges (Rx<layer>_<i>_<j>): it is "
                               "not a crossbar")
        last = 1 + max(layer for layer, _, _ in parsed.values())
        nodes = {name: k for k, name in enumerate(network.node_names)}
        lines: dict[str, Line] = {}
        crosspoints: dict[int, Crosspoint] = {}

        def line(layer: int, index: int) -> str:
            name = crossbar_line_name(layer, index, last)
            if name not in lines:
                if name not in nodes:
                    raise NetworkError(f"network {network.title!r}: crosspoints name line {name}, but the network "
                                       "has no such node")
                lines[name] = Line(name, layer, index, nodes[name])
            return name

        for k, (layer, i, j) in sorted(parsed.items()):
            crosspoints[k] = Crosspoint(k, network.edge_names[k], layer, line(layer, i), line(layer + 1, j))
        ordered = dict(sorted(lines.items(), key=lambda item: (item[1].layer, item[1].index)))
        return cls(network, ordered, crosspoints)

    @property
    def layers(self) -> int:
        """Line layers (inputs, hidden layers, outputs)."""
        return 1 + max(line.layer for line in self.lines.values())

    @cached_property
    def by_line(self) -> dict[str, tuple[int, ...]]:
        """Line name -> the crosspoint edges on it."""
        found: dict[str, list[int]] = {name: [] for name in self.lines}
        for point in self.crosspoints.values():
            found[point.a_line].append(point.edge)
            found[point.b_line].append(point.edge)
        return {name: tuple(edges) for name, edges in found.items()}

    def line_of_node(self, node: int) -> str | None:
        """The line whose terminal is ``node``, or None."""
        for line in self.lines.values():
            if line.node == node:
                return line.name
        return None

    def sensed_nodes(self, edge: int) -> tuple[str | None, str | None]:
        """The two lines whose terminal voltages' difference is what instruments see of
        ``edge`` (None where an end is ground). A crosspoint: its two lines; any other edge
        whose ends are line terminals or ground (a load ``Rout{j}``): those; otherwise
        NetworkError (a wire segment, a selector, an input edge's resistor behind its source)."""
        if edge in self.crosspoints:
            point = self.crosspoints[edge]
            return point.a_line, point.b_line
        net = self.network
        if net.series_volts[edge] != 0 or edge in set(net.inputs.tolist()):
            raise NetworkError(f"edge {net.edge_names[edge]}: its resistor sits behind a source, no line "
                               "voltage shows its drop")
        ends = []
        for node in (int(net.edge_a[edge]), int(net.edge_b[edge])):
            if node == net.ground:
                ends.append(None)
                continue
            line = self.line_of_node(node)
            if line is None:
                raise NetworkError(f"edge {net.edge_names[edge]}: node {net.node_names[node]} is not a line terminal "
                                   "(a tap along a line or a cell's middle node): no instrument reaches it")
            ends.append(line)
        return ends[0], ends[1]
