"""The [network] table of both files: one set of topology keys, one set of bounds, one builder.

An experiment file and a bench file describe a network the same way: ``builder`` and the keys of
that builder (below), with the same names, bounds and meaning. Each file adds the keys of its own
role (``network_section``): the experiment its ports, initial values and which edges are tunable
and readable; the bench its per-edge nominal values and the counts an experiment takes from
elsewhere (a crossbar's line counts come from the task, a random graph's seed from [seeds]).
``build_network`` makes the network from a validated table, for both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwlearn import builders
from hwlearn.config.schema import REQUIRED, Field, Section
from hwlearn.errors import ConfigError, HwlearnError
from hwlearn.network import Network
from hwlearn.network_file import load_network

BUILDERS = ("lattice", "crossbar", "random", "file")


def _positive(doc: str, default=REQUIRED) -> Field:
    return Field("float", default, doc, minimum=0.0, exclusive_minimum=True)


# The topology keys, their bounds and (for an experiment) their defaults.
TOPOLOGY: dict[str, Field] = {
    "builder": Field("str", "crossbar", "how the network is made", choices=BUILDERS),
    "rows": Field("int", 6, "lattice: rows of nodes (rows x cols >= 2)", minimum=1),
    "cols": Field("int", 6, "lattice: columns of nodes", minimum=1),
    "inputs": Field("int", REQUIRED, "crossbar: input lines", minimum=1, maximum=10_000),
    "outputs": Field("int", REQUIRED, "crossbar: output lines", minimum=1, maximum=10_000),
    "hidden": Field("list[int]", [], "crossbar: lines of each hidden layer", minimum=1, maximum=100_000),
    "ohms": _positive("lattice: nominal resistance of every edge; crossbar: of every crosspoint", 10_000.0),
    "source_ohms": _positive("crossbar: resistance of each input line's source edge", 100.0),
    "load_ohms": _positive("crossbar: resistance of each output line's load edge (the outputs)", 1000.0),
    "wire_ohms": Field("float", 0.0, "crossbar: resistance of each line segment between neighbouring crosspoints "
                       "(0: ideal lines)", minimum=0.0, maximum=1e6),
    "selector_ohms": Field("float", 0.0, "crossbar: on-resistance of a selector in series with every crosspoint "
                           "(0: none)", minimum=0.0, maximum=1e9),
    "nodes": Field("int", 20, "random: node count", minimum=2, maximum=4_000_000),
    "edges": Field("int", 50, "random: edge count", minimum=1, maximum=4_000_000),
    "seed": Field("int", REQUIRED, "random: the graph's seed", minimum=0),
    "ohms_min": _positive("random: lowest nominal resistance (log-uniform)", 100.0),
    "ohms_max": _positive("random: highest nominal resistance", 10_000.0),
    "path": Field("str", REQUIRED, "file: a network file (.json) or SPICE netlist, relative to the file "
                  "that names it"),
}

VARIANTS: dict[str, tuple[str, ...]] = {
    "lattice": ("rows", "cols", "ohms"),
    "crossbar": ("inputs", "outputs", "hidden", "ohms", "source_ohms", "load_ohms", "wire_ohms", "selector_ohms"),
    "random": ("nodes", "edges", "seed", "ohms_min", "ohms_max"),
    "file": ("path",),
}

# Keys of earlier bench files, refused with the name that replaced them.
RENAMED = {"resistance_ohms": "ohms", "cross_ohms": "ohms"}


def network_section(doc: str, *, role_fields: Mapping[str, Field], defaults: Mapping[str, Any] | None = None,
                    derived: tuple[str, ...] = (), required: bool = False) -> Section:
    """The [network] section of one file: the topology keys (minus ``derived``, the keys this file
    takes from elsewhere), ``role_fields`` allowed with every builder, and ``defaults`` replacing
    topology defaults: a value, REQUIRED (the file must state the key) or (None, words) for a
    default computed from other keys."""
    fields = {key: f for key, f in TOPOLOGY.items() if key not in derived}
    for key, default in (defaults or {}).items():
        words = ""
        if isinstance(default, tuple):
            default, words = default
        fields[key] = dataclasses.replace(fields[key], default=default, default_doc=words)
    fields.update(role_fields)
    variants = {name: tuple(k for k in keys if k not in derived) for name, keys in VARIANTS.items()}
    variants["*"] = tuple(role_fields)
    return Section(fields, doc=doc, variant_key="builder", variants=variants, required=required,
                   renamed=RENAMED)


# The largest network a simulated run takes: a 1e6-edge lattice needs about 1 GiB and 1 s per
# gradient (docs/performance.md); memory grows faster than the edge count past that.
MAX_EDGES = 4_000_000


def _check_size(cfg: Mapping[str, Any], source: str) -> None:
    """Refuse, before minutes of building, a network no machine of ours can solve, saying why."""
    kind = cfg["builder"]
    if kind == "lattice":
        rows, cols = cfg["rows"], cfg["cols"]
        edges, what = rows * (cols - 1) + cols * (rows - 1), f"network.rows x network.cols = {rows} x {cols}"
    elif kind == "crossbar":
        lines = [cfg["inputs"], *cfg["hidden"], cfg["outputs"]]
        cells = sum(a * b for a, b in zip(lines, lines[1:]))
        # every cell adds two line segments with wires and one selector with selectors
        edges = cells * (1 + 2 * (cfg.get("wire_ohms", 0.0) > 0) + (cfg.get("selector_ohms", 0.0) > 0))
        what = f"network.hidden = {cfg['hidden']}"
    elif kind == "random":
        edges, what = cfg["edges"], f"network.edges = {cfg['edges']}"
    else:
        return
    if edges > MAX_EDGES:
        gib = edges / 1e6 * 1.1
        raise ConfigError(f"{source}: {what} makes about {edges:,} edges; hwlearn takes at most "
                          f"{MAX_EDGES:,} (this one would need roughly {gib:.0f} GiB and {edges / 1e6:.0f} s "
                          "per gradient; docs/performance.md)")


def build_network(spec: Mapping[str, Any], source: str, *, base_dir: Path = Path("."),
                  inputs=None, outputs=None) -> Network:
    """The network of a validated [network] table (with the derived keys filled in).

    base_dir        : what a relative ``path`` is relative to (the directory of the file).
    inputs, outputs : the input and output edges of builders that place them: the lattice (a
                      count placed as spec["placement"] says, default on the left / right boundary,
                      or edge names) and the random graph (a count of random edges); None: none.
                      A crossbar's are its lines; a file's its own.
    Errors name the file and the builder.
    """
    kind = spec["builder"]
    _check_size(spec, source)
    try:
        if kind == "lattice":
            if spec["rows"] * spec["cols"] < 2:
                raise ConfigError(f"{source}: network.rows = {spec['rows']!r}, network.cols = {spec['cols']!r}: "
                                  "a lattice needs at least 2 nodes")
            return builders.lattice(spec["rows"], spec["cols"], resistance=spec["ohms"], inputs=inputs,
                                    outputs=outputs, placement=spec.get("placement", "sides"))
        if kind == "crossbar":
            return builders.crossbar(spec["inputs"], spec["outputs"], hidden=spec["hidden"], cross_ohms=spec["ohms"],
                                     source_ohms=spec["source_ohms"], load_ohms=spec["load_ohms"],
                                     wire_ohms=spec["wire_ohms"], selector_ohms=spec["selector_ohms"])
        if kind == "random":
            if spec["ohms_min"] >= spec["ohms_max"]:
                raise ConfigError(f"{source}: network.ohms_min = {spec['ohms_min']!r}: must be below "
                                  f"network.ohms_max = {spec['ohms_max']!r}")
            return builders.random_graph(spec["nodes"], spec["edges"], seed=spec["seed"],
                                         ohms_range=(spec["ohms_min"], spec["ohms_max"]),
                                         inputs=inputs or 0, outputs=outputs or 0)
        return load_network(str(base_dir / spec["path"]))
    except ConfigError:
        raise
    except HwlearnError as exc:
        raise ConfigError(f"{source}: [network] builder = {kind!r}: {exc}") from None
