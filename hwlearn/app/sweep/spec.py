"""The sweep file: a base experiment file, the axes to vary (by dotted key), and the seeds.

    experiment = "iris-omega.toml"          # relative to the sweep file
    name = "lr-scan"                        # default: the file name without .toml
    seeds = [0, 1, 2]                       # or a count (seeds = 3 is 0, 1, 2); default: the experiment's
    retries = 2                             # further attempts after a point fails

    [grid]                                  # every combination of these values
    "training.learning_rate" = [10.0, 30.0]
    rule.eta = [1e-3, 1e-2]                 # unquoted dotted keys work too

    [random]                                # `draws` joint draws, each combined with every grid point
    draws = 4
    seed = 0
    "network.initial_spread" = { uniform = [0.0, 0.5] }
    "rule.eta" = { log_uniform = [1e-4, 1e-2] }
    "training.batch_size" = { choice = [8, 16, 32] }
    "training.epochs" = { int_uniform = [20, 60] }   # both ends included

Every key is checked against the experiment schema (hwlearn/config/experiment.py) before anything
runs; docs/sweeps.md describes the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hwlearn.config import EXPERIMENT
from hwlearn.config.schema import Field, Section, Validator, load_toml
from hwlearn.errors import ConfigError

TOP_LEVEL = ("experiment", "name", "seeds", "retries", "grid", "random")
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")
RANDOM_SETTINGS = ("draws", "seed")


@dataclass(frozen=True)
class RandomAxis:
    key: str
    distribution: str
    arguments: list


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file. ``grid``: dotted key -> values, in file order; ``random``: the
    distributions drawn ``draws`` times from ``random_seed``; ``seeds``: None = the experiment's."""

    path: Path
    text: str
    name: str
    experiment_path: Path
    experiment_text: str
    experiment_doc: dict
    seeds: list[int] | None
    retries: int
    grid: dict[str, list]
    random: list[RandomAxis]
    draws: int
    random_seed: int

    @property
    def axes(self) -> list[str]:
        return [*self.grid, *(axis.key for axis in self.random)]


def _child(section: Section, key: str) -> Field | Section | None:
    """A key of ``section``, also one that only some variants have (a rule's parameters: each
    point's own validation then checks it against the variant it selects)."""
    if key in section.fields:
        return section.fields[key]
    return next((fields[key] for fields in section.variant_fields.values() if key in fields), None)


def experiment_field(key: str, where: str) -> Field:
    """The experiment schema's field at dotted ``key``; ConfigError naming ``where`` otherwise."""
    node: Field | Section = EXPERIMENT
    parts = key.split(".")
    for depth, part in enumerate(parts):
        table = ".".join(parts[:depth])
        if not isinstance(node, Section):
            raise ConfigError(f"{where}: '{key}': {table} is a value, not a table")
        child = _child(node, part)
        if child is None:
            inside = f"[{table}]" if table else "the top level of an experiment"
            variant_only = {name for fields in node.variant_fields.values() for name in fields}
            raise ConfigError(f"{where}: unknown key '{key}': no '{part}' in {inside}; allowed: "
                              f"{', '.join(sorted({*node.fields, *variant_only}))}")
        node = child
    if isinstance(node, Section):
        raise ConfigError(f"{where}: '{key}' is the table [{key}], not a value; sweep one of its keys: "
                          f"{', '.join(f'{key}.{k}' for k in node.fields)}")
    if parts[0] == "seeds":
        raise ConfigError(f"{where}: '{key}': seeds are swept with the top-level key `seeds = [...]`, which sets "
                          "every random stream of a point from one base seed")
    return node


def _flatten(table: dict, prefix: str = "", is_leaf=lambda path, value: not isinstance(value, dict)) -> dict:
    """{"rule": {"eta": [..]}} and {"rule.eta": [..]} both become {"rule.eta": [..]}."""
    out = {}
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if is_leaf(path, value):
            out[path] = value
        else:
            out.update(_flatten(value, path, is_leaf))
    return out


def _names_value(path: str) -> bool:
    node = EXPERIMENT
    for part in path.split("."):
        if not isinstance(node, Section) or _child(node, part) is None:
            return False
        node = _child(node, part)
    return isinstance(node, Field)


def _is_distribution(path: str, value) -> bool:
    """Where a [random] entry stops: at a value's key, or at a table of distribution names."""
    return not isinstance(value, dict) or _names_value(path) or (bool(value) and set(value) <= set(DISTRIBUTIONS))


def _grid(table, source: str) -> dict[str, list]:
    check = Validator(source)
    if not isinstance(table, dict):
        check.fail("grid", table, "must be a table of dotted experiment keys and their lists of values")
    grid = {}
    for key, values in _flatten(table).items():
        experiment_field(key, f"{source}: [grid]")
        if not isinstance(values, list):
            check.fail(f"grid.{key}", values, "must be a list of values (an axis), e.g. [0.01, 0.1]")
        if not values:
            check.fail(f"grid.{key}", values, "is an empty axis: give at least one value")
        grid[key] = values
    return grid


def _random_axis(key: str, spec, source: str) -> RandomAxis:
    check = Validator(source)
    path = f"random.{key}"
    experiment_field(key, f"{source}: [random]")
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        check.fail(path, spec, f"must be one distribution: {{ {' | '.join(f'{d} = [...]' for d in DISTRIBUTIONS)} }}")
    (distribution, arguments), = spec.items()
    where = f"{path}.{distribution}"
    if distribution == "choice":
        if not isinstance(arguments, list) or not arguments:
            check.fail(where, arguments, "must be a non-empty list of values to choose from")
        return RandomAxis(key, distribution, arguments)
    kind = "int" if distribution == "int_uniform" else "float"
    if not isinstance(arguments, list) or len(arguments) != 2:
        check.fail(where, arguments, "must be [low, high]")
    low, high = (check.scalar(f"{where}[{i}]", v, kind) for i, v in enumerate(arguments))
    if not low < high:
        check.fail(where, arguments, "needs low < high")
    if distribution == "log_uniform" and low <= 0:
        check.fail(where, arguments, "needs low > 0 (the logarithm is drawn uniformly)")
    return RandomAxis(key, distribution, [low, high])


def _random(table, source: str) -> tuple[list[RandomAxis], int, int]:
    check = Validator(source)
    if not isinstance(table, dict):
        check.fail("random", table, "must be a table: draws, seed and dotted keys with their distributions")
    draws = check.value("random.draws", table.get("draws", 1), Field("int", minimum=1))
    seed = check.value("random.seed", table.get("seed", 0), Field("int", minimum=0))
    axes = [_random_axis(key, spec, source)
            for key, spec in _flatten({k: v for k, v in table.items() if k not in RANDOM_SETTINGS},
                                      is_leaf=_is_distribution).items()]
    if not axes:
        raise ConfigError(f"{source}: [random] names no key to draw; add e.g. "
                          "\"rule.eta\" = { log_uniform = [1e-4, 1e-2] }, or remove the table")
    return axes, draws, seed


def _seeds(value, source: str) -> list[int] | None:
    check = Validator(source)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            check.fail("seeds", value, "a count of seeds must be >= 1")
        return list(range(value))
    if not isinstance(value, list) or not value:
        check.fail("seeds", value, "must be a non-empty list of seeds >= 0, or a count")
    seeds = check.value("seeds", value, Field("list[int]", minimum=0))
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        check.fail("seeds", value, f"seed {repeated[0]} is given twice; each seed makes one point per setting")
    return seeds


def load_sweep(path) -> SweepSpec:
    """Read and validate a sweep file and its base experiment file (the points are checked by
    hwlearn.app.sweep.points.expand)."""
    path = Path(path)
    doc = load_toml(path)
    source = str(path)
    for key in doc:
        if key not in TOP_LEVEL:
            raise ConfigError(f"{source}: unknown key '{key}' at the top level; allowed: {', '.join(TOP_LEVEL)}")
    check = Validator(source)
    if "experiment" not in doc:
        raise ConfigError(f"{source}: missing key 'experiment' (str): the base experiment file, relative to "
                          "the sweep file")
    experiment = check.value("experiment", doc["experiment"], Field("str"))
    experiment_path = (path.parent / experiment) if not Path(experiment).is_absolute() else Path(experiment)
    experiment_doc = load_toml(experiment_path)
    grid = _grid(doc.get("grid", {}), source)
    axes, draws, random_seed = _random(doc["random"], source) if "random" in doc else ([], 1, 0)
    both = sorted(set(grid) & {axis.key for axis in axes})
    if both:
        raise ConfigError(f"{source}: '{both[0]}' is both a [grid] and a [random] axis; keep one")
    name = check.value("name", doc.get("name", path.stem), Field("str"))
    retries = check.value("retries", doc.get("retries", 2), Field("int", minimum=0))
    return SweepSpec(path, path.read_text(encoding="utf-8"), name, experiment_path,
                     experiment_path.read_text(encoding="utf-8"), experiment_doc, _seeds(doc.get("seeds"), source),
                     retries, grid, axes, draws, random_seed)
