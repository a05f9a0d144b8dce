"""hwlearn runs [DIR]: one line per run folder under DIR, newest first."""

from __future__ import annotations

from pathlib import Path

from hwlearn.cli.table import format_table, number
from hwlearn.runstore import RunReader, RunStoreError, list_runs, run_overview

DEFAULT_ROOT = "runs"


def add_parser(sub) -> None:
    p = sub.add_parser("runs", help="list the runs in a folder",
                       description="List the run folders directly under DIR or one level down, newest first: "
                       "status (crashed = the writer died while running), rule, epochs done, final train loss, "
                       "final test accuracy and creation time (UTC).")
    p.add_argument("root", nargs="?", default=DEFAULT_ROOT, metavar="DIR", help="folder of runs (default: ./runs)")
    p.set_defaults(run=run)


def _row(root: Path, run_dir: Path) -> list[str]:
    name = str(run_dir.relative_to(root)) if run_dir != root else str(run_dir)
    try:
        with RunReader(run_dir) as reader:
            o = run_overview(reader)
    except RunStoreError as exc:
        # One damaged folder must not hide the others.
        return [name, "unreadable", str(exc)[:60], "", "", "", ""]
    m = o["metrics"]
    return [name, o["status"], o["rule"] or "-", "-" if o["epochs_done"] is None else str(o["epochs_done"]),
            number(m["train_loss"], 4), number(m["test_accuracy"], 4), o["created"][:19].replace("T", " ")]


def run(args) -> int:
    root = Path(args.root)
    runs = list_runs(root)
    if not runs:
        print(f"no runs under {root}")
        return 0
    rows = [_row(root, run_dir) for run_dir in runs]
    print(format_table(["run", "status", "rule", "epochs", "train_loss", "test_acc", "created (UTC)"], rows))
    return 0
