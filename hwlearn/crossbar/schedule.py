"""Which line carries the programming pulses of each crosspoint, and in which order: the fewest
relay operations the wiring allows.

A crosspoint is written by the half-bias (V/2) scheme (docs/crossbar.md, "Programming"): one of
its two lines, the *programming line*, is switched through the matrix onto the programming bus
(the pulse source), the other, the *holding line*, stays on its own port unit, which holds it
at -V/2 during a pulse (and at the read voltage during a read) while every other line's unit
holds 0 V. So a crosspoint can be written on line L when L can reach the bus and the other line's
unit can hold a voltage. Moving a line onto the bus costs one closure, plus one opening when the
line is on a port unit (break before make: the unit's channel opens first); moving it back costs
the same again. A visit to a line serves every crosspoint written on it, so the fewest relay
operations for a set of crosspoints is a minimum-weight vertex cover of the bipartite graph
"lines x crosspoints" (lines of even and odd layers on either side), weights the visits' costs:
König's theorem's weighted form, computed as a minimum cut.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from hwlearn.crossbar.layout import Crosspoint
from hwlearn.errors import HwlearnError


class ScheduleError(HwlearnError):
    """A crosspoint cannot be written with this wiring."""


@dataclass(frozen=True)
class LineAccess:
    """What the wiring lets the bench do with one line.

    prog  : a matrix channel joins the line to the programming bus.
    unit  : the line is on a port unit through a matrix channel (opened while it is on the bus).
    holds : its port unit can hold the line at a voltage (an input unit; an output unit that can
            clamp).
    """

    name: str
    prog: bool
    unit: bool
    holds: bool

    @property
    def visit_cost(self) -> int:
        """Relay operations to move the line onto the programming bus and back."""
        return 2 * (2 if self.unit else 1)


@dataclass(frozen=True)
class Write:
    """One crosspoint written on ``prog_line`` while ``hold_line`` is held. ``sign`` is +1 when the
    programming line is the crosspoint's a side: a device voltage v (a minus b) is then +v/2 on the
    bus and -v/2 on the holding line; -1 mirrors both."""

    edge: int
    prog_line: str
    hold_line: str
    sign: int


@dataclass(frozen=True)
class Visit:
    """One stay of ``line`` on the programming bus and the crosspoints written meanwhile."""

    line: str
    writes: tuple[Write, ...]
    relay_operations: int


def carriers(point: Crosspoint, access: Mapping[str, LineAccess]) -> list[str]:
    """The lines that can carry ``point``'s programming pulses (the other one holding)."""
    found = []
    for line, other in ((point.a_line, point.b_line), (point.b_line, point.a_line)):
        mine, theirs = access.get(line), access.get(other)
        if mine is not None and theirs is not None and mine.prog and theirs.holds:
            found.append(line)
    return found


def _write(point: Crosspoint, line: str) -> Write:
    if line == point.a_line:
        return Write(point.edge, line, point.b_line, +1)
    return Write(point.edge, line, point.a_line, -1)


def schedule(points: Sequence[Crosspoint], access: Mapping[str, LineAccess],
             layers: Mapping[str, int]) -> list[Visit]:
    """The visits that write every crosspoint of ``points`` with the fewest relay operations.

    access : line name -> LineAccess; layers: line name -> its line layer (the bipartition).
    Visits are in line order (layer, then name); writes within a visit in edge order. Raises
    ScheduleError naming a crosspoint no line can carry.
    """
    options = {}
    for point in points:
        lines = carriers(point, access)
        if not lines:
            raise ScheduleError(f"crosspoint {point.name} ({point.a_line} x {point.b_line}) cannot be written: neither "
                                "line can reach the programming bus while the other's unit holds it")
        options[point.edge] = (point, lines)
    cover = _min_weight_cover(options.values(), access, layers)
    visits: dict[str, list[Write]] = {}
    for point, lines in options.values():
        line = next(line for line in lines if line in cover)
        visits.setdefault(line, []).append(_write(point, line))
    order = sorted(visits, key=lambda name: (layers[name], name))
    return [Visit(line, tuple(sorted(visits[line], key=lambda w: w.edge)), access[line].visit_cost) for line in order]


def relay_operations(visits: Iterable[Visit]) -> int:
    return sum(v.relay_operations for v in visits)


def minimum_relay_operations(points: Sequence[Crosspoint], access: Mapping[str, LineAccess],
                             layers: Mapping[str, int]) -> int:
    """The fewest relay operations that write ``points`` (what ``schedule`` achieves)."""
    return relay_operations(schedule(points, access, layers))


def _min_weight_cover(options, access: Mapping[str, LineAccess], layers: Mapping[str, int]) -> set[str]:
    """Lines covering every crosspoint by one of its allowed lines, of least total visit cost."""
    cover: set[str] = set()
    free = []
    for _, lines in options:
        if len(lines) == 1:
            cover.add(lines[0])   # the only line that can carry it: forced
        else:
            free.append(lines)
    rest = [lines for lines in free if not (set(lines) & cover)]
    if not rest:
        return cover
    # Bipartite by layer parity; source -> even lines (capacity: cost), odd lines -> sink (cost),
    # every crosspoint an infinite arc between its two lines. A minimum cut is a minimum cover.
    left = sorted({line for lines in rest for line in lines if layers[line] % 2 == 0})
    right = sorted({line for lines in rest for line in lines if layers[line] % 2 == 1})
    infinite = 1 + sum(access[line].visit_cost for line in left + right)
    graph = _FlowGraph()
    for line in left:
        graph.add("source", ("L", line), access[line].visit_cost)
    for line in right:
        graph.add(("R", line), "sink", access[line].visit_cost)
    for lines in rest:
        even = next(line for line in lines if layers[line] % 2 == 0)
        odd = next(line for line in lines if layers[line] % 2 == 1)
        graph.add(("L", even), ("R", odd), infinite)
    reached = graph.min_cut_source_side("source", "sink")
    cover |= {line for line in left if ("L", line) not in reached}
    cover |= {line for line in right if ("R", line) in reached}
    return cover


class _FlowGraph:
    """Edmonds-Karp maximum flow on a small graph (a crossbar has tens of lines)."""

    def __init__(self):
        self.capacity: dict[object, dict[object, int]] = {}

    def add(self, u, v, capacity: int) -> None:
        self.capacity.setdefault(u, {})
        self.capacity.setdefault(v, {})
        self.capacity[u][v] = self.capacity[u].get(v, 0) + capacity
        self.capacity[v].setdefault(u, 0)

    def _path(self, source, sink) -> dict | None:
        parent = {source: None}
        queue = deque([source])
        while queue:
            u = queue.popleft()
            for v, residual in self.capacity[u].items():
                if residual > 0 and v not in parent:
                    parent[v] = u
                    if v == sink:
                        return parent
                    queue.append(v)
        return None

    def min_cut_source_side(self, source, sink) -> set:
        """Saturate every augmenting path; the nodes still reachable from the source."""
        while (parent := self._path(source, sink)) is not None:
            bottleneck, v = None, sink
            while parent[v] is not None:
                u = parent[v]
                bottleneck = self.capacity[u][v] if bottleneck is None else min(bottleneck, self.capacity[u][v])
                v = u
            v = sink
            while parent[v] is not None:
                u = parent[v]
                self.capacity[u][v] -= bottleneck
                self.capacity[v][u] += bottleneck
                v = u
        reached, queue = {source}, deque([source])
        while queue:
            u = queue.popleft()
            for v, residual in self.capacity[u].items():
                if residual > 0 and v not in reached:
                    reached.add(v)
                    queue.append(v)
        return reached
