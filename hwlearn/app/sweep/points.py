"""From a sweep file to its points: every grid combination x every random draw x every seed, each
a fully resolved experiment config (defaults filled, every seed drawn), validated and built
once before anything runs, so a bad value is reported with the point it came from."""

from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass

import numpy as np

from hwlearn.app.sweep.spec import RandomAxis, SweepSpec
from hwlearn.config import resolve
from hwlearn.errors import ConfigError
from hwlearn.experiment import build_experiment

NAME_CHARS = re.compile(r"[^A-Za-z0-9._=,+-]")
MAX_NAME = 120


@dataclass(frozen=True)
class Point:
    """One run of a sweep. ``params``: the axes' values by dotted key; ``seed``: the base seed of
    ``config`` (resolved, every stream drawn); ``name``: its run folder under points/."""

    id: int
    name: str
    params: dict
    seed: int
    config: dict

    @property
    def setting(self) -> tuple:
        """What the point shares with the other seeds of its parameter setting."""
        return tuple((key, _hashable(value)) for key, value in self.params.items())


def _hashable(value):
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def _draw(axis: RandomAxis, rng: np.random.Generator):
    low_high = axis.arguments
    if axis.distribution == "uniform":
        return float(rng.uniform(*low_high))
    if axis.distribution == "log_uniform":
        return float(math.exp(rng.uniform(math.log(low_high[0]), math.log(low_high[1]))))
    if axis.distribution == "int_uniform":
        return int(rng.integers(low_high[0], low_high[1], endpoint=True))
    return axis.arguments[int(rng.integers(len(axis.arguments)))]


def settings(spec: SweepSpec) -> list[dict]:
    """The parameter settings in order: grid combinations (first axis slowest), each with every draw."""
    draws = [{}]
    if spec.random:
        rng = np.random.default_rng(spec.random_seed)
        draws = [{axis.key: _draw(axis, rng) for axis in spec.random} for _ in range(spec.draws)]
    combos = [dict(zip(spec.grid, values)) for values in itertools.product(*spec.grid.values())]
    return [{**combo, **draw} for combo in combos for draw in draws]


def format_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same number
    if isinstance(value, list):
        return ",".join(format_value(v) for v in value)
    return str(value)


def short_names(keys: list[str]) -> dict[str, str]:
    """The last part of each dotted key, or the whole key where two axes share that part."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {key: short if last.count(short) == 1 else key for key, short in zip(keys, last)}


def point_name(number: int, width: int, params: dict, seed: int, short: dict[str, str]) -> str:
    parts = [f"{short[key]}={format_value(value)}" for key, value in params.items()] + [f"seed={seed}"]
    text = NAME_CHARS.sub("-", "_".join(parts))[:MAX_NAME]
    return f"{number:0{width}d}_{text}"  # the number keeps names unique and in sweep order


def _set(doc: dict, key: str, value) -> None:
    *tables, leaf = key.split(".")
    for table in tables:
        doc = doc.setdefault(table, {})
    doc[leaf] = copy.deepcopy(value)


def expand(spec: SweepSpec) -> list[Point]:
    """Every point, resolved and built once (ConfigError names the point and the key)."""
    combos = settings(spec)
    seeds = spec.seeds or [None]
    total = len(combos) * len(seeds)
    width = max(4, len(str(total - 1)))
    short = short_names(spec.axes)
    points = []
    seen: dict[tuple, int] = {}
    for params in combos:
        setting = tuple((key, _hashable(value)) for key, value in params.items())
        if setting in seen:
            raise ConfigError(f"{spec.path}: points {seen[setting] * len(seeds)} and {len(points)} have the same "
                              f"setting ({', '.join(f'{k} = {format_value(v)}' for k, v in params.items())}); "
                              "a repeated grid value or random draw would train the same runs twice")
        seen[setting] = len(points) // len(seeds)
        doc = copy.deepcopy(spec.experiment_doc)
        for key, value in params.items():
            _set(doc, key, value)
        for seed in seeds:
            number = len(points)
            label = ", ".join(f"{k} = {format_value(v)}" for k, v in params.items())
            label = f"{label}, seed {seed}" if seed is not None else label or "the base experiment"
            source = f"{spec.path} point {number} ({label})"
            config = resolve(copy.deepcopy(doc), source, seed=seed)
            build_experiment(config, source)  # the cross-checks that need the network
            base_seed = config["seeds"]["base"]
            points.append(Point(number, point_name(number, width, params, base_seed, short), params, base_seed, config))
    return points
