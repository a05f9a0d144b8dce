"""The result of a sweep as one document: every point with its metrics, and per parameter
setting the mean and spread over its seeds (``hwlearn sweep show --json``, docs/sweeps.md)."""

from __future__ import annotations

import json
import math

import numpy as np

from hwlearn.app.sweep.index import STATES, read_index
from hwlearn.app.sweep.points import short_names
from hwlearn.runstore.jsontext import finite_or_null
from hwlearn.runstore.metadata import utc_iso

SCHEMA = "hwlearn.sweep.show/1"
# Reported, never recorded: the index says running but its client is gone (killed); --resume
# looks at the point's run folder and continues it.
INTERRUPTED = "interrupted"


def _key(params: dict) -> str:
    return repr(sorted(params.items()))


def mean_spread(values: list[float]) -> dict:
    """mean, std (sample standard deviation, 0 for one value) and n of the finite values."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(finite.mean()), "std": float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
            "n": int(finite.size)}


def sweep_document(sweep_dir) -> dict:
    snapshot = read_index(sweep_dir)
    facts, points = snapshot.facts, snapshot.points
    axes = json.loads(facts["axes"])
    metric_names = sorted({name for p in points for name in (p.metrics or {})})
    settings: dict[str, dict] = {}
    for p in points:
        group = settings.setdefault(_key(p.params), {"params": p.params, "seeds": [], "done": 0, "values": {}})
        group["seeds"].append(p.seed)
        if p.state == "done" and p.metrics:
            group["done"] += 1
            for name in metric_names:
                group["values"].setdefault(name, []).append(p.metrics.get(name))
    gone = snapshot.client["alive"] is False or snapshot.client["closed"] is not None
    states = {p.id: INTERRUPTED if p.state == "running" and gone else p.state for p in points}
    doc = {
        "schema": SCHEMA,
        "sweep_dir": str(sweep_dir),
        "name": facts["name"],
        "created": utc_iso(float(facts["created"])),
        "experiment": facts["experiment_path"],
        "axes": axes,
        "short_names": short_names(axes),
        "metric_names": metric_names,
        "counts": {state: sum(s == state for s in states.values()) for state in (*STATES, INTERRUPTED)},
        "client": {key: snapshot.client[key] for key in ("host", "pid", "alive", "executor", "session")},
        "points": [{"id": p.id, "name": p.name, "params": p.params, "seed": p.seed, "state": states[p.id],
                    "attempts": p.attempts, "error": p.error, "metrics": p.metrics,
                    "elapsed_seconds": p.elapsed_seconds} for p in points],
        "settings": [{"params": g["params"], "seeds": g["seeds"], "done": g["done"],
                      "metrics": {name: mean_spread(g["values"].get(name, [])) for name in metric_names}}
                     for g in settings.values()],
    }
    return finite_or_null(doc)
