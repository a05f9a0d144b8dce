"""Export a run's steps, scalars and arrays as a CSV folder or one .npz file (docs/run-store.md
describes both). Used by ``hwlearn export`` and the GUI's run browser."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np

from hwlearn.errors import HwlearnError
from hwlearn.runstore.checkpoint import fsync_dir, write_npz
from hwlearn.runstore.reader import RunReader

EXPORT_SCHEMA = "hwlearn.export/1"
SCALARS_CSV = "scalars.csv"
ARRAYS_SUBDIR = "arrays"
FORMATS = ("csv", "npz")


class ExportError(HwlearnError):
    """The export cannot be written where asked."""


def default_export_path(run_dir: Path, fmt: str) -> Path:
    """./RUN-csv (a folder) or ./RUN.npz (a file), named after the run folder."""
    name = Path(run_dir).resolve().name
    return Path(f"{name}-csv" if fmt == "csv" else f"{name}.npz")


def _cell(value) -> str:
    """Full precision, round-trips through float()/complex(); booleans as 0/1."""
    if isinstance(value, bool):
        return str(int(value))
    return repr(value) if isinstance(value, (float, complex)) else str(value)


def _column_labels(name: str, shape: tuple[int, ...]) -> list[str]:
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, index))}]" for index in np.ndindex(*shape)]


def _read_run(reader: RunReader) -> dict:
    """Everything up to the last step seen at the start, so a run being written exports
    consistently (every scalar and array belongs to a step in the steps table)."""
    steps = reader.steps()
    upto = int(steps.step[-1]) if len(steps) else -1
    scalars = {name: (s[s <= upto], v[s <= upto]) for name, (s, v) in reader.scalars().items()}
    arrays = {}
    for name in reader.array_names():
        s, values = reader.arrays(name)
        arrays[name] = (s[s <= upto], values[s <= upto])
    return {"steps": steps, "scalars": scalars, "arrays": arrays}


def _looks_like_export(folder: Path) -> bool:
    return (folder / SCALARS_CSV).is_file() and all(
        p.suffix == ".csv" or (p.name == ARRAYS_SUBDIR and p.is_dir()) for p in folder.iterdir())


def _write_csv_folder(data: dict, folder: Path) -> None:
    steps = data["steps"]
    names = sorted(data["scalars"])
    by_step = {name: dict(zip(s.tolist(), v.tolist())) for name, (s, v) in data["scalars"].items()}
    with open(folder / SCALARS_CSV, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["step", "epoch", "time", *names])
        for step, epoch, t in zip(steps.step.tolist(), steps.epoch.tolist(), steps.time.tolist()):
            out.writerow([step, epoch, repr(t), *(_cell(by_step[n][step]) if step in by_step[n] else ""
                                                   for n in names)])
    (folder / ARRAYS_SUBDIR).mkdir()
    for name, (s, values) in data["arrays"].items():
        with open(folder / ARRAYS_SUBDIR / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["step", *_column_labels(name, values.shape[1:])])
            for step, row in zip(s.tolist(), values.reshape(len(s), -1).tolist()):
                out.writerow([step, *map(_cell, row)])


def _refuse_inside_run(reader: RunReader, out: Path) -> None:
    run_dir = reader.run_dir.resolve()
    target = Path(out).resolve()
    if target == run_dir or run_dir in target.parents:
        raise ExportError(f"{out}: inside the run folder {reader.run_dir}; an export never writes into the run it "
                          "reads (it could replace the run's own files); give a path outside it")


def export_csv(reader: RunReader, out: Path, force: bool) -> Path:
    _refuse_inside_run(reader, out)
    if out.exists():
        if not force:
            raise ExportError(f"{out}: already exists; pass --force to replace it")
        if not out.is_dir() or (any(out.iterdir()) and not _looks_like_export(out)):
            raise ExportError(f"{out}: exists and is not an earlier CSV export (no {SCALARS_CSV}, or other "
                              "files); --force only replaces an export folder")
    data = _read_run(reader)
    # Build beside the target and rename into place: an interrupted export leaves no half folder.
    tmp = out.with_name(f".tmp-{out.name}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write_csv_folder(data, tmp)
        if out.exists():
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def export_npz(reader: RunReader, out: Path, force: bool) -> Path:
    _refuse_inside_run(reader, out)
    if out.exists() and not force:
        raise ExportError(f"{out}: already exists; pass --force to replace it")
    if out.is_dir():
        raise ExportError(f"{out}: is a folder; --format npz writes a file")
    data = _read_run(reader)
    steps = data["steps"]
    members = {"schema": np.array(EXPORT_SCHEMA), "steps/step": steps.step, "steps/epoch": steps.epoch,
               "steps/time": steps.time}
    for name, (s, v) in data["scalars"].items():
        members[f"scalars/{name}/step"], members[f"scalars/{name}/value"] = s, v
    for name, (s, v) in data["arrays"].items():
        members[f"arrays/{name}/step"], members[f"arrays/{name}/value"] = s, v
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{out.name}.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write_npz(f, members, str(out))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(out.parent)
    return out
