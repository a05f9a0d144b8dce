"""hwlearn export RUN_DIR --format csv|npz [--out PATH] [--force]: a run's steps, scalars and
arrays as CSV files or one .npz (docs/run-store.md describes both; the code is
hwlearn.runstore.export, shared with the GUI)."""

from __future__ import annotations

from pathlib import Path

from hwlearn.runstore import RunReader
from hwlearn.runstore.export import default_export_path, export_csv, export_npz


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a run's scalars and arrays as CSV or .npz",
                       description="csv: a folder with scalars.csv (step, epoch, time, one column per scalar) "
                       "and arrays/NAME.csv (step, then the flattened values). npz: one file with steps, "
                       "scalars and stacked arrays. A run being written is exported up to its last step.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder")
    p.add_argument("--format", required=True, choices=["csv", "npz"], help="output format")
    p.add_argument("--out", help="output folder (csv) or file (npz); default ./RUN-csv or ./RUN.npz")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.set_defaults(run=run)


def run(args) -> int:
    run_dir = Path(args.run_dir)
    out = Path(args.out) if args.out else default_export_path(run_dir, args.format)
    with RunReader(run_dir) as reader:
        written = (export_csv if args.format == "csv" else export_npz)(reader, out, args.force)
    print(f"exported {run_dir} to {written}")
    return 0
