"""Import and export of a SPICE netlist subset: R, V and I elements with DC values.

Read as SPICE reads it: the first line is the title; ``*`` starts a comment line and ``;`` an
inline comment; ``+`` continues the previous line; ``.end`` ends the deck; names and values are
case-insensitive; node ``0`` is ground. Values take the SI suffixes f p n u m k meg g t and may
carry trailing unit letters (``4.7kOhm``, ``5V``). Anything else (other elements, analyses,
models, AC or transient specifications) raises NetlistError naming the line and its text.
"""

from __future__ import annotations

import re
from pathlib import Path

from hwlearn.errors import NetlistError, NetworkError
from hwlearn.files import read_text
from hwlearn.network import Network, SourceSet

_SUFFIX = {"f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3,
           "meg": 1e6, "g": 1e9, "t": 1e12}
_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)(meg|[fpnumkgt])?([a-z]*)$")
_IGNORED_DIRECTIVES = {".op", ".title"}  # harmless: the DC operating point is what we compute


def parse_value(token: str) -> float:
    """A SPICE number: '4.7k' -> 4700.0, '1meg' -> 1e6, '10mA' -> 0.01. Raises ValueError."""
    match = _NUMBER.match(token.lower())
    if not match:
        raise ValueError(f"'{token}' is not a number (SI suffixes: f p n u m k meg g t)")
    mantissa, suffix, _units = match.groups()
    return float(mantissa) * (_SUFFIX[suffix] if suffix else 1.0)


def _logical_lines(text: str, source: str):
    """(line number, text) of each logical line after the title, continuations joined."""
    lines = text.splitlines()
    current: list | None = None
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.split(";", 1)[0].strip()
        if not line or line.startswith("*"):
            continue
        if line.startswith("+"):
            if current is None:
                raise NetlistError(f"{source}, line {number}: continuation with nothing to continue: {raw.strip()!r}")
            current[1] += " " + line[1:].strip()
            current[2] += " " + raw.strip()
            continue
        if current is not None:
            yield tuple(current)
        current = [number, line, raw.strip()]
    if current is not None:
        yield tuple(current)


def parse_netlist(text: str, source: str = "<netlist>") -> Network:
    """Parse netlist text into a Network (resistors are edges, V and I are ideal sources)."""
    nodes = {"0": 0}
    order = ["0"]
    edges: list[tuple[str, int, int, float]] = []
    sources = {"v": ([], [], [], []), "i": ([], [], [], [])}
    seen_names: dict[str, int] = {}

    def node(name: str) -> int:
        if name not in nodes:
            nodes[name] = len(order)
            order.append(name)
        return nodes[name]

    for number, line, raw in _logical_lines(text, source):
        where = f"{source}, line {number}"
        tokens = line.lower().split()
        head = tokens[0]
        if head.startswith("."):
            if head == ".end":
                break
            if head in _IGNORED_DIRECTIVES:
                continue
            raise NetlistError(f"{where}: unsupported directive '{tokens[0]}' (supported: .end, .op, "
                               f".title): {raw!r}")
        kind = head[0]
        if kind not in "rvi":
            raise NetlistError(f"{where}: unsupported element '{line.split()[0]}' (supported: R, V, I "
                               f"with DC values): {raw!r}")
        name = line.split()[0]
        if name.lower() in seen_names:
            raise NetlistError(f"{where}: element '{name}' is already defined on line "
                               f"{seen_names[name.lower()]}: {raw!r}")
        seen_names[name.lower()] = number
        args = tokens[1:]
        if kind != "r" and len(args) == 4 and args[2] == "dc":
            args = args[:2] + args[3:]
        if len(args) != 3:
            form = "R<name> <n1> <n2> <ohms>" if kind == "r" else f"{kind.upper()}<name> <n+> <n-> [DC] <value>"
            raise NetlistError(f"{where}: expected '{form}': {raw!r}")
        try:
            value = parse_value(args[2])
        except ValueError as exc:
            raise NetlistError(f"{where}: {exc}: {raw!r}") from None
        a, b = args[0], args[1]
        if a == b and kind != "i":
            raise NetlistError(f"{where}: {name} connects node '{a}' to itself: {raw!r}")
        if kind == "r":
            if not value > 0:
                raise NetlistError(f"{where}: resistance of {name} must be > 0 ohm, got {value!r}: {raw!r}")
            edges.append((name, node(a), node(b), value))
        else:
            names, pos, neg, vals = sources[kind]
            names.append(name)
            pos.append(node(a))
            neg.append(node(b))
            vals.append(value)
    if not edges:
        raise NetlistError(f"{source}: no resistors found; a network needs at least one R element")
    if len(order) < 2:
        raise NetlistError(f"{source}: only the ground node '0' is used")
    grounded = any(0 in e[1:3] for e in edges) or any(0 in sources[k][1] + sources[k][2] for k in "vi")
    if not grounded:
        raise NetlistError(f"{source}: no element connects to ground node '0'")
    try:
        return Network(
            order,
            [e[1] for e in edges],
            [e[2] for e in edges],
            [e[3] for e in edges],
            ground=0,
            edge_names=[e[0] for e in edges],
            vsources=SourceSet.build(*sources["v"]),
            isources=SourceSet.build(*sources["i"]),
            title=text.splitlines()[0].strip() if text.strip() else "",
        )
    except NetworkError as exc:
        raise NetlistError(f"{source}: {exc}") from None


def read_netlist(path: str | Path) -> Network:
    path = Path(path)
    return parse_netlist(read_text(path, NetlistError, "netlist"), str(path))


def _spice_name(prefix: str, name: str) -> str:
    return name if name[:1].lower() == prefix.lower() else f"{prefix}{name}"


def to_netlist(network: Network) -> str:
    """SPICE text for the network (series edge sources become a V plus an internal node)."""
    def node(k: int) -> str:
        return "0" if k == network.ground else network.node_names[k]

    lines = [f"* {network.title or 'hwlearn network'}"]
    for k in range(network.n_edges):
        a, b = node(network.edge_a[k]), node(network.edge_b[k])
        name = _spice_name("R", network.edge_names[k])
        s = network.series_volts[k]
        if s:
            inner = f"{name}_src"
            lines.append(f"V{name}_src {a} {inner} DC {float(s)!r}")
            a = inner
        lines.append(f"{name} {a} {b} {float(network.resistance[k])!r}")
    for prefix, sources in (("V", network.vsources), ("I", network.isources)):
        for k, label in enumerate(sources.names):
            lines.append(f"{_spice_name(prefix, label)} {node(sources.pos[k])} {node(sources.neg[k])} "
                         f"DC {float(sources.values[k])!r}")
    lines.append(".end")
    return "\n".join(lines) + "\n"
