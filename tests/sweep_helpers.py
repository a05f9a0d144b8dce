"""Sweep files for the tests, and the checks every sweep test makes on a finished sweep folder."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from pathlib import Path

from hwlearn.app.sweep import read_index
from hwlearn.runstore import RunReader
from tests.cli_helpers import hwlearn

# Iris one sample per step: 105 steps per epoch, about a millisecond each, so a point takes a
# second or two and a kill lands inside one.
SLOW_EXPERIMENT = """
name = "sweep-test"
[task]
name = "iris"
[training]
batch_size = 1
epochs = 8
[record]
checkpoint_every = 25
array_every = 50
"""
STEPS_PER_POINT = 8 * 105

SLOW_SWEEP = """
experiment = "experiment.toml"
seeds = [0, 1]
retries = {retries}
[grid]
"training.learning_rate" = [10.0, 30.0]
"""


def write_sweep(folder: Path, retries: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "experiment.toml").write_text(SLOW_EXPERIMENT)
    path = folder / "sweep.toml"
    path.write_text(SLOW_SWEEP.format(retries=retries))
    return path


def table(sweep_dir: Path) -> list[tuple]:
    """(name, params, seed, state, metrics) of every point, from `hwlearn sweep show --json`."""
    doc = json.loads(hwlearn("sweep", "show", sweep_dir, "--json").stdout)
    return [(p["name"], p["params"], p["seed"], p["state"], p["metrics"]) for p in doc["points"]]


def point_dirs(sweep_dir: Path) -> list[Path]:
    return sorted((Path(sweep_dir) / "points").iterdir())


def assert_every_point_trained_to_completion_once(sweep_dir: Path) -> None:
    """Checked in the index (one 'done' attempt per point) and in each run folder (one 'done' in
    its status history, every step recorded once)."""
    snapshot = read_index(sweep_dir)
    assert [p.state for p in snapshot.points] == ["done"] * len(snapshot.points), snapshot.points
    done = Counter(a["point"] for a in snapshot.attempts if a["outcome"] == "done")
    assert all(done[p.id] == 1 for p in snapshot.points), (done, snapshot.attempts)
    folders = point_dirs(sweep_dir)
    assert [f.name for f in folders] == [p.name for p in snapshot.points]
    for folder in folders:
        with sqlite3.connect(folder / "run.sqlite") as db:
            closes = db.execute("SELECT COUNT(*) FROM status WHERE status = 'done'").fetchone()[0]
            steps = [row[0] for row in db.execute("SELECT step FROM steps ORDER BY step")]
        assert closes == 1, f"{folder}: closed as done {closes} times"
        assert steps == list(range(STEPS_PER_POINT + 1)), f"{folder}: steps {steps[:3]}...{steps[-3:]}"


def wait_for_point_step(sweep_dir: Path, step: int, proc, timeout: float = 120.0) -> Path:
    """Wait until some point of the sweep has recorded ``step``; returns its run folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        points = Path(sweep_dir) / "points"
        for folder in sorted(points.iterdir()) if points.is_dir() else []:
            try:
                with RunReader(folder) as reader:
                    last = reader.last_step()
            except Exception:  # still being created
                continue
            if last is not None and last.step >= step:
                return folder
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no point of {sweep_dir} reached step {step}")


def wait_until_no_point_is_written(sweep_dir: Path, timeout: float = 60.0) -> None:
    """After the client died its workers stop their runs; wait until no run has a live writer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = []
        for folder in point_dirs(sweep_dir):
            with RunReader(folder) as reader:
                statuses.append(reader.status())
        if not any(s.active for s in statuses):
            return
        time.sleep(0.05)
    raise AssertionError(f"runs of {sweep_dir} still written after {timeout} s: {statuses}")
