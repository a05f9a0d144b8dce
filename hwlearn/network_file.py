"""The network file: a readable JSON document of a Network with its roles.

    {"format": "hwlearn-network", "version": 1, "title": "...", "ground": "0",
     "nodes": ["0", "1", ...],
     "edges": [{"name": "R1", "a": "1", "b": "0", "ohms": 1000.0, "series_volts": 0.0,
                "roles": ["tunable", "readable"]}, ...],
     "vsources": [{"name": "V1", "pos": "1", "neg": "0", "volts": 5.0}, ...],
     "isources": [{"name": "I1", "pos": "0", "neg": "2", "amps": 0.001}, ...]}

``series_volts``, ``roles``, ``vsources`` and ``isources`` are optional. Errors name the file,
the key path and the value.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from hwlearn.errors import NetworkError
from hwlearn.files import read_text
from hwlearn.netlist import parse_netlist
from hwlearn.network import ROLES, Network, SourceSet

FORMAT = "hwlearn-network"
VERSION = 1


def network_to_dict(net: Network) -> dict:
    names = net.node_names
    edges = []
    for k in range(net.n_edges):
        edge = {"name": net.edge_names[k], "a": names[net.edge_a[k]], "b": names[net.edge_b[k]],
                "ohms": float(net.resistance[k])}
        if net.series_volts[k]:
            edge["series_volts"] = float(net.series_volts[k])
        roles = [r for r in ROLES if net.roles[r][k]]
        if roles:
            edge["roles"] = roles
        edges.append(edge)
    doc = {"format": FORMAT, "version": VERSION, "title": net.title, "ground": names[net.ground],
           "nodes": list(names), "edges": edges}
    for key, unit, sources in (("vsources", "volts", net.vsources), ("isources", "amps", net.isources)):
        if len(sources):
            doc[key] = [{"name": sources.names[k], "pos": names[sources.pos[k]],
                         "neg": names[sources.neg[k]], unit: float(sources.values[k])}
                        for k in range(len(sources))]
    return doc


def save_network(net: Network, path: str | Path) -> None:
    Path(path).write_text(json.dumps(network_to_dict(net), indent=1) + "\n")


class _Reader:
    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, value, expected: str):
        raise NetworkError(f"{self.source}: {key}: expected {expected}, got {value!r}")

    def get(self, obj: dict, key: str, where: str, expected: str, optional=False, default=None):
        if not isinstance(obj, dict):
            self.fail(where, obj, "an object")
        if key not in obj:
            if optional:
                return default
            raise NetworkError(f"{self.source}: {where}.{key} is missing ({expected})")
        return obj[key]

    def number(self, value, where: str, positive=False):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(where, value, "a finite number")
        try:
            value = float(value)  # a 400-digit integer does not fit a float
        except OverflowError:
            self.fail(where, f"{str(value)[:12]}... ({len(str(value))} digits)", "a finite number")
        if not math.isfinite(value):
            self.fail(where, value, "a finite number")
        if positive and not value > 0:
            self.fail(where, value, "a number > 0")
        return float(value)

    def string(self, value, where: str):
        if not isinstance(value, str) or not value:
            self.fail(where, value, "a non-empty string")
        return value


def network_from_dict(doc, source: str = "<network>") -> Network:
    rd = _Reader(source)
    if not isinstance(doc, dict):
        rd.fail("document", type(doc).__name__, "a JSON object")
    if doc.get("format") != FORMAT:
        rd.fail("format", doc.get("format"), f"'{FORMAT}'")
    if doc.get("version") != VERSION:
        rd.fail("version", doc.get("version"), f"{VERSION}")
    allowed = {"format", "version", "title", "ground", "nodes", "edges", "vsources", "isources"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        rd.fail(unknown[0], doc[unknown[0]], f"one of the keys {', '.join(sorted(allowed))}")
    nodes = rd.get(doc, "nodes", "document", "a list of node names")
    if not isinstance(nodes, list) or len(nodes) < 2:
        rd.fail("nodes", nodes, "a list of at least 2 node names")
    nodes = [rd.string(n, f"nodes[{i}]") for i, n in enumerate(nodes)]
    index = {name: i for i, name in enumerate(nodes)}
    ground = rd.string(rd.get(doc, "ground", "document", "the ground node's name"), "ground")
    if ground not in index:
        rd.fail("ground", ground, "one of the listed nodes")

    def node(value, where):
        name = rd.string(value, where)
        if name not in index:
            rd.fail(where, name, "a node listed in 'nodes'")
        return index[name]

    edges = rd.get(doc, "edges", "document", "a list of edges")
    if not isinstance(edges, list) or not edges:
        rd.fail("edges", edges, "a non-empty list of edges")
    a, b, ohms, series, names = [], [], [], [], []
    roles: dict[str, list[int]] = {r: [] for r in ROLES}
    edge_keys = {"name", "a", "b", "ohms", "series_volts", "roles"}
    for k, edge in enumerate(edges):
        where = f"edges[{k}]"
        if not isinstance(edge, dict):
            rd.fail(where, edge, "an object")
        extra = sorted(set(edge) - edge_keys)
        if extra:
            rd.fail(f"{where}.{extra[0]}", edge[extra[0]], f"one of the keys {', '.join(sorted(edge_keys))}")
        names.append(rd.string(rd.get(edge, "name", where, "a name"), f"{where}.name"))
        a.append(node(rd.get(edge, "a", where, "a node name"), f"{where}.a"))
        b.append(node(rd.get(edge, "b", where, "a node name"), f"{where}.b"))
        ohms.append(rd.number(rd.get(edge, "ohms", where, "ohms > 0"), f"{where}.ohms", positive=True))
        series.append(rd.number(rd.get(edge, "series_volts", where, "", optional=True, default=0.0),
                                f"{where}.series_volts"))
        edge_roles = rd.get(edge, "roles", where, "", optional=True, default=[])
        if not isinstance(edge_roles, list) or any(r not in ROLES for r in edge_roles):
            rd.fail(f"{where}.roles", edge_roles, f"a list drawn from {', '.join(ROLES)}")
        for r in edge_roles:
            roles[r].append(k)
    source_sets = {}
    for key, unit in (("vsources", "volts"), ("isources", "amps")):
        items = rd.get(doc, key, "document", "", optional=True, default=[])
        if not isinstance(items, list):
            rd.fail(key, items, "a list")
        cols = ([], [], [], [])
        for k, item in enumerate(items):
            where = f"{key}[{k}]"
            cols[0].append(rd.string(rd.get(item, "name", where, "a name"), f"{where}.name"))
            cols[1].append(node(rd.get(item, "pos", where, "a node name"), f"{where}.pos"))
            cols[2].append(node(rd.get(item, "neg", where, "a node name"), f"{where}.neg"))
            cols[3].append(rd.number(rd.get(item, unit, where, f"the value in {unit}"), f"{where}.{unit}"))
        source_sets[key] = SourceSet.build(*cols)
    title = doc.get("title", "")
    try:
        return Network(nodes, a, b, ohms, ground=index[ground], edge_names=names, series_volts=series,
                       roles=roles, vsources=source_sets["vsources"], isources=source_sets["isources"],
                       title=title if isinstance(title, str) else "")
    except NetworkError as exc:
        raise NetworkError(f"{source}: {exc}") from None


def load_network(path: str | Path) -> Network:
    """Read a network file (JSON) or a SPICE netlist, told apart by the first character."""
    path = Path(path)
    text = read_text(path, NetworkError, "network file")
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NetworkError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise NetworkError(f"{path}: nested too deeply to be a network file") from None
        return network_from_dict(doc, str(path))
    return parse_netlist(text, str(path))
