"""hwlearn reproduce [--profile crossbar|paper] [--quick] OUT_DIR: the paper's findings, as figures
and a JSON table."""

from __future__ import annotations

import sys
from pathlib import Path

from hwlearn.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="reproduce the paper's findings (figures and a JSON table)",
                       description="The paper's findings over several seeds (docs/reproduction.md): on the Iris "
                       "crossbar (profile crossbar: parity of the rules, gradient bias under noisy targets, partial "
                       "updates), or in the paper's own setting (profile paper: a lattice with trained output "
                       "edges, teacher and Iris, stability, output-edge conditions, noise, nudge strength, partial "
                       "updates, and the orders of the GEP members).")
    p.add_argument("out_dir", help="folder for the PNG figures and results.json")
    p.add_argument("--profile", choices=("crossbar", "paper"), default="crossbar",
                   help="which study (default crossbar)")
    p.add_argument("--quick", action="store_true", help="fewer seeds, epochs and points (under 2 minutes)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: one per core)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="train on the Dask cluster of this scheduler (tcp://HOST:PORT; needs hwlearn[dask])")
    p.set_defaults(run=run)


def run(args) -> int:
    from hwlearn.app.reproduce import reproduce

    out = Path(args.out_dir)
    # Checked before minutes of training: a folder we can write into.
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder; give a folder for the figures and results.json")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".hwlearn-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write there ({exc.strerror or exc})") from None

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.profile == "paper":
        from hwlearn.app.reproduce.paper import reproduce_paper

        table = reproduce_paper(out, quick=args.quick, progress=progress, workers=args.workers,
                                scheduler=args.scheduler)
        print(f"wrote {', '.join(table['figures'])} and results.json to {out} in {table['elapsed_seconds']} s")
        _print_paper(table)
        return 0
    table = reproduce(out, quick=args.quick, progress=progress, workers=args.workers, scheduler=args.scheduler)
    iris = table["iris"]
    print(f"wrote {', '.join(table['figures'])} and results.json to {out} in {table['elapsed_seconds']} s")
    print(f"Iris test accuracy ({table['seeds']} seeds; linear ceiling "
          f"{iris['ceiling_test_accuracy']['mean']:.3f}):")
    for rule, finals in iris["rules"].items():
        acc = finals["test_accuracy"]
        print(f"  {rule:<14} {acc['mean']:.3f} +- {acc['std']:.3f}")
    return 0


def _print_paper(table: dict) -> None:
    """The headline numbers: per task and output condition, each rule's final loss and divergences."""
    for task, by_condition in table["trainings"]["results"].items():
        print(f"{task} ({table['seeds']} seeds): log10(final / initial train loss) +- s.e.m., divergences")
        for condition, by_rule in by_condition.items():
            cells = []
            for rule, stats in by_rule.items():
                loss, div = stats["log10_final_over_initial"], stats["divergence"]
                cells.append(f"{rule} {loss['mean']:+.2f} +- {loss['sem']:.2f} ({div['count']}/{div['n']})")
            print(f"  {condition:<15} " + "; ".join(cells))
    for label, slope in table["gep"]["slopes"].items():
        order = "exact" if slope["predicted"] is None else f"slope {slope['fitted']:.3f}"
        print(f"  {label:<22} -> grad {slope['objective']}: {order} (max error {slope['max_error']:.1e})")
