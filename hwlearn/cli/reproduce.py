"""hwlearn reproduce [--quick] OUT_DIR: the paper's findings, as figures and a JSON table."""

from __future__ import annotations

import sys
from pathlib import Path

from hwlearn.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="reproduce the paper's findings (figures and a JSON table)",
                       description="Iris parity of the rules, gradient bias under noisy targets, and partial "
                       "updates, over several seeds (docs/reproduction.md).")
    p.add_argument("out_dir", help="folder for the PNG figures and results.json")
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
    table = reproduce(out, quick=args.quick, progress=lambda line: print(line, file=sys.stderr, flush=True),
                      workers=args.workers, scheduler=args.scheduler)
    iris = table["iris"]
    print(f"wrote {', '.join(table['figures'])} and results.json to {out} in {table['elapsed_seconds']} s")
    print(f"Iris test accuracy ({table['seeds']} seeds; linear ceiling "
          f"{iris['ceiling_test_accuracy']['mean']:.3f}):")
    for rule, finals in iris["rules"].items():
        acc = finals["test_accuracy"]
        print(f"  {rule:<14} {acc['mean']:.3f} +- {acc['std']:.3f}")
    return 0
