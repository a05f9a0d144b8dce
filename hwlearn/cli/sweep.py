"""hwlearn sweep [run] SWEEP.toml | show DIR | plot DIR: many runs from one file (docs/sweeps.md).

``hwlearn sweep SWEEP.toml`` is short for ``hwlearn sweep run SWEEP.toml``: a first word that is
not one of the verbs run, show, plot is taken as the sweep file (a file literally named like a
verb is given as ``hwlearn sweep run show``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from pathlib import Path

VERBS = ("run", "show", "plot")
DEFAULT_VERB = "run"
DEFAULT_ROOT = Path("sweeps")


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run many trainings from one sweep file; show and plot their table",
                       description="hwlearn sweep SWEEP.toml runs a sweep (short for 'hwlearn sweep run'); "
                       "'show' prints its table, 'plot' draws a metric against an axis. docs/sweeps.md "
                       "describes the sweep file, docs/scaling.md the executors.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    run_p = verbs.add_parser("run", help="run (or with --resume continue) a sweep",
                             description="Validate every point, then train them on a local pool of worker "
                             "processes or a Dask cluster, each into its own run folder under DIR/points/. "
                             "Ctrl-C stops at the next step of every running point; --resume continues.")
    run_p.add_argument("sweep_file", metavar="SWEEP.toml")
    run_p.add_argument("--out", metavar="DIR", help="sweep folder (default: sweeps/<name>)")
    where = run_p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: one per core)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on the Dask cluster of this scheduler (tcp://HOST:PORT; needs hwlearn[dask])")
    run_p.add_argument("--resume", action="store_true",
                       help="continue the sweep in DIR: skip finished points, resume interrupted runs, run the rest")
    run_p.add_argument("--quiet", action="store_true", help="no progress line")
    run_p.set_defaults(run=run)
    show = verbs.add_parser("show", help="the table of a sweep's points and its mean +- std over seeds")
    show.add_argument("sweep_dir", metavar="DIR")
    show.add_argument("--json", action="store_true", help="print the hwlearn.sweep.show/1 document (docs/sweeps.md)")
    show.set_defaults(run=run_show)
    plot = verbs.add_parser("plot", help="a metric against an axis, error bars over seeds (PNG)")
    plot.add_argument("sweep_dir", metavar="DIR")
    plot.add_argument("--x", required=True, metavar="KEY", help="an axis: its dotted key or its short name")
    plot.add_argument("--y", required=True, metavar="METRIC", help="a metric, e.g. test_accuracy")
    plot.add_argument("--out", metavar="PNG", help="image file (default: DIR/<x>-<y>.png)")
    plot.add_argument("--log-x", action=argparse.BooleanOptionalAction, default=None,
                      help="logarithmic x axis (default: when the values span 100x or more)")
    plot.set_defaults(run=run_plot)


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)


def _check_unchanged(snapshot, spec) -> None:
    from hwlearn.app.sweep import SweepError

    for fact, text, path in (("sweep_toml", spec.text, spec.path),
                             ("experiment_toml", spec.experiment_text, spec.experiment_path)):
        if snapshot.facts[fact] != text:
            raise SweepError(f"{path} changed since the sweep in {snapshot.facts.get('sweep_path')} started; "
                             "--resume runs the points it recorded: restore the file, or start a new sweep with "
                             "another --out")


def run(args) -> int:
    from hwlearn.app.executors import make_executor
    from hwlearn.app.sweep import SweepIndex, expand, load_sweep, read_index, run_sweep
    from hwlearn.app.sweep.progress import SweepProgress
    from hwlearn.signals import stop_on_signals

    spec = load_sweep(args.sweep_file)
    out = Path(args.out) if args.out else DEFAULT_ROOT / _folder_name(spec.name)
    if args.resume:
        snapshot = read_index(out)
        _check_unchanged(snapshot, spec)
        total = len(snapshot.points)
    else:
        points = expand(spec)  # everything is checked before a worker or a folder is made
        total = len(points)
    executor = make_executor(args.workers, args.scheduler)
    stop = threading.Event()
    with executor:
        index = SweepIndex.open(out, executor.description) if args.resume else \
            SweepIndex.create(out, spec, points, executor.description)
        with index:
            print(f"sweep {spec.name}: {total} points in {out} on a {executor.description}", file=sys.stderr)
            progress = None if args.quiet else SweepProgress(executor.slots)
            with stop_on_signals(stop):
                counts = run_sweep(index, executor, progress=progress, stop=stop)
    print(f"{counts.done} of {counts.total} points done" + (f", {counts.failed} failed" if counts.failed else "")
          + (f", {counts.stopped + counts.pending} left" if counts.done + counts.failed < counts.total else ""))
    print(f"table     hwlearn sweep show {out}")
    if counts.done + counts.failed < counts.total or counts.failed:
        print(f"resume    hwlearn sweep {args.sweep_file} --out {out} --resume")
    if stop.is_set():
        return 130
    return 0 if counts.done == counts.total else 1


def run_show(args) -> int:
    from hwlearn.app.sweep import sweep_document

    doc = sweep_document(args.sweep_dir)
    print(json.dumps(doc, indent=2) if args.json else render(doc))
    return 0


def run_plot(args) -> int:
    from hwlearn.app.sweep import sweep_document
    from hwlearn.app.sweep.plot import axis_key, plot_sweep

    doc = sweep_document(args.sweep_dir)
    key = axis_key(doc, args.x)
    out = Path(args.out) if args.out else Path(args.sweep_dir) / f"{_folder_name(key)}-{_folder_name(args.y)}.png"
    print(f"wrote {plot_sweep(doc, key, args.y, out, log_x=args.log_x)}")
    return 0


def _number(value) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def render(doc: dict) -> str:
    """The two tables of `hwlearn sweep show`: the points, then per setting mean +- std over seeds."""
    from hwlearn.app.sweep.points import format_value
    from hwlearn.cli.table import format_table

    axes, short, metrics = doc["axes"], doc["short_names"], doc["metric_names"]
    live = " (its client is running)" if doc["client"]["alive"] else ""
    head = [f"sweep     {doc['name']}  ({doc['sweep_dir']}){live}",
            f"points    {len(doc['points'])}: " + ", ".join(f"{n} {s}" for s, n in doc["counts"].items() if n)]
    rows = [[p["name"].split("_", 1)[0], *(format_value(p["params"][a]) for a in axes), str(p["seed"]), p["state"],
             *(_number((p["metrics"] or {}).get(m)) for m in metrics)] for p in doc["points"]]
    groups = [[*(format_value(g["params"][a]) for a in axes), f"{g['done']}/{len(g['seeds'])}",
               *(f"{_number(g['metrics'][m]['mean'])} +- {_number(g['metrics'][m]['std'])}" for m in metrics)]
              for g in doc["settings"]]
    parts = ["\n".join(head),
             format_table(["point", *(short[a] for a in axes), "seed", "state", *metrics], rows),
             "over seeds, per setting:",
             format_table([*(short[a] for a in axes), "seeds done", *(f"{m} (mean +- std)" for m in metrics)], groups)]
    errors = [f"point {p['name']}: {p['error']}" for p in doc["points"] if p["state"] == "failed" and p["error"]]
    if errors:
        parts.append("errors:\n" + "\n".join(errors))
    return "\n\n".join(parts)
