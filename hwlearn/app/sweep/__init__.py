"""Sweeps: many simulated runs from one file, on this machine or a Dask cluster, resumable, and
compared in one table (docs/sweeps.md, docs/scaling.md).

    spec = load_sweep("lr.toml")                 # the file, validated
    points = expand(spec)                        # every point resolved and built: errors name the point
    with SweepIndex.create(out, spec, points, executor.description) as index:
        counts = run_sweep(index, executor)      # or SweepIndex.open(out, ...) to resume
    doc = sweep_document(out)                    # the table (hwlearn.sweep.show/1)
"""

from hwlearn.app.sweep.index import SweepError, SweepIndex, is_sweep_dir, read_index
from hwlearn.app.sweep.points import Point, expand
from hwlearn.app.sweep.runner import SweepCounts, run_sweep
from hwlearn.app.sweep.spec import SweepSpec, load_sweep
from hwlearn.app.sweep.table import sweep_document

__all__ = ["Point", "SweepCounts", "SweepError", "SweepIndex", "SweepSpec", "expand", "is_sweep_dir", "load_sweep",
           "read_index", "run_sweep", "sweep_document"]
