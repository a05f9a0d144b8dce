"""The runs, show and export commands, run as a user runs them, on runs written by RunWriter."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwlearn.runstore import RunWriter

REPO = Path(__file__).resolve().parents[1]
STEPS = 6


def hwlearn(*args, cwd=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "hwlearn", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})
    if check and proc.returncode != 0:
        raise AssertionError(f"hwlearn {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def resistances(step):
    return np.linspace(1e3, 2e3, 4) + step


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "runs"
    config = {"rule": {"name": "omega", "learning_rate": 0.01}, "task": {"name": "iris"}}
    with RunWriter.create(root / "trained", config, {"seeds": {"init": 3, "data": 4}}) as writer:
        for step in range(STEPS):
            scalars = {"train_loss": 1.0 / (step + 1)}
            if step % 2 == 1:
                scalars.update(test_loss=2.0 / (step + 1), test_accuracy=0.5 + step / 20)
            writer.record_step(step, step // 2, scalars,
                               {"resistances_ohms": resistances(step), "confusion": np.eye(2, dtype=np.int64) * step})
        writer.checkpoint(STEPS - 1, (STEPS - 1) // 2, {"resistances_ohms": resistances(STEPS - 1)}, {"rng": 1})
        writer.set_summary(epochs_done=3, linear_ceiling_accuracy=0.9)
    writer = RunWriter.create(root / "sweep" / "diverged", {"rule": {"name": "ep"}}, {})
    writer.record_step(0, 0, {"train_loss": float("nan")})
    writer.close("failed", "loss is NaN")
    return root


def test_runs_lists_every_run_with_status_rule_and_metrics(runs):
    lines = hwlearn("runs", runs).stdout.splitlines()
    assert lines[0].split()[:6] == ["run", "status", "rule", "epochs", "train_loss", "test_acc"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"trained", "sweep/diverged"}
    assert rows["trained"][1:6] == ["done", "omega", "3", "0.1667", "0.75"]
    assert rows["sweep/diverged"][1:3] == ["failed", "ep"]
    assert lines[2].split()[0] == "sweep/diverged", "newest first"


def test_runs_defaults_to_the_runs_folder(runs):
    assert "trained" in hwlearn("runs", cwd=runs.parent).stdout


def test_show_json_has_the_documented_fields(runs):
    doc = json.loads(hwlearn("show", runs / "trained", "--json").stdout)
    assert doc["schema"] == "hwlearn.show/1"
    assert doc["status"] == "done" and doc["rule"] == "omega" and doc["task"] == "iris"
    assert doc["epochs_done"] == 3 and doc["steps_recorded"] == STEPS and doc["last_step"] == STEPS - 1
    assert doc["metrics"] == {"train_loss": 1 / STEPS, "test_loss": 2 / STEPS, "test_accuracy": 0.75,
                              "linear_ceiling_accuracy": 0.9}
    assert doc["seeds"] == {"init": 3, "data": 4}
    assert doc["run_dir"] == str(runs / "trained")
    assert doc["created"].endswith("Z") and doc["last_step_time"].endswith("Z")
    assert doc["checkpoint"]["step"] == STEPS - 1
    assert doc["scalar_names"] == ["test_accuracy", "test_loss", "train_loss"]
    assert doc["array_names"] == ["confusion", "resistances_ohms"]
    assert doc["summary"] == {"epochs_done": 3, "linear_ceiling_accuracy": 0.9}


def test_show_json_writes_nan_as_null_and_missing_metrics_as_null(runs):
    doc = json.loads(hwlearn("show", runs / "sweep" / "diverged", "--json").stdout)
    assert doc["status"] == "failed" and doc["status_detail"] == "loss is NaN"
    assert doc["metrics"] == {"train_loss": None, "test_loss": None, "test_accuracy": None,
                              "linear_ceiling_accuracy": None}
    assert doc["task"] is None and doc["epochs_done"] == 0 and doc["checkpoint"] is None


def test_show_text_is_one_screen(runs):
    out = hwlearn("show", runs / "trained").stdout
    assert len(out.splitlines()) <= 24
    for expected in ("status          done", "omega", "iris", "3 epochs, 6 steps", "0.75", "step 5"):
        assert expected in out, expected


def test_export_csv_writes_wide_scalars_and_one_file_per_array(runs, tmp_path):
    out = tmp_path / "csv"
    hwlearn("export", runs / "trained", "--format", "csv", "--out", out)
    with open(out / "scalars.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "epoch", "time", "test_accuracy", "test_loss", "train_loss"]
    assert [int(r["step"]) for r in rows] == list(range(STEPS))
    assert [int(r["epoch"]) for r in rows] == [s // 2 for s in range(STEPS)]
    assert [float(r["train_loss"]) for r in rows] == [1.0 / (s + 1) for s in range(STEPS)]
    assert [r["test_accuracy"] for r in rows[:2]] == ["", "0.55"]
    with open(out / "arrays" / "resistances_ohms.csv") as f:
        table = list(csv.reader(f))
    assert table[0] == ["step"] + [f"resistances_ohms[{i}]" for i in range(4)]
    for step, row in enumerate(table[1:]):
        assert int(row[0]) == step
        np.testing.assert_array_equal(np.array(row[1:], dtype=float), resistances(step))
    with open(out / "arrays" / "confusion.csv") as f:
        table = list(csv.reader(f))
    assert table[0] == ["step", "confusion[0,0]", "confusion[0,1]", "confusion[1,0]", "confusion[1,1]"]
    assert table[4] == ["3", "3", "0", "0", "3"]


def test_export_npz_holds_scalars_and_stacked_arrays_with_their_steps(runs, tmp_path):
    out = tmp_path / "run.npz"
    hwlearn("export", runs / "trained", "--format", "npz", "--out", out)
    with np.load(out, allow_pickle=False) as npz:
        assert str(npz["schema"]) == "hwlearn.export/1"
        assert npz["steps/step"].tolist() == list(range(STEPS))
        assert npz["scalars/test_accuracy/step"].tolist() == [1, 3, 5]
        np.testing.assert_array_equal(npz["scalars/train_loss/value"], [1.0 / (s + 1) for s in range(STEPS)])
        assert npz["arrays/resistances_ohms/value"].shape == (STEPS, 4)
        np.testing.assert_array_equal(npz["arrays/resistances_ohms/value"][2], resistances(2))
        assert npz["arrays/confusion/value"].dtype == np.int64


def test_export_refuses_to_overwrite_without_force(runs, tmp_path):
    out = tmp_path / "run.npz"
    hwlearn("export", runs / "trained", "--format", "npz", "--out", out)
    proc = hwlearn("export", runs / "trained", "--format", "npz", "--out", out, check=False)
    assert proc.returncode == 2 and "already exists; pass --force" in proc.stderr
    hwlearn("export", runs / "trained", "--format", "npz", "--out", out, "--force")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("x")
    proc = hwlearn("export", runs / "trained", "--format", "csv", "--out", precious, "--force", check=False)
    assert proc.returncode == 2 and "is not an earlier CSV export" in proc.stderr
    assert (precious / "thesis.tex").exists()


@pytest.mark.parametrize("command", [["show"], ["show", "--json"], ["export", "--format", "csv"]])
def test_commands_on_a_folder_that_is_not_a_run_fail_cleanly(tmp_path, command):
    proc = hwlearn(command[0], tmp_path, *command[1:], check=False, cwd=tmp_path)
    assert proc.returncode == 2
    assert "is not a run folder: it has no run.sqlite" in proc.stderr and str(tmp_path) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_runs_on_a_missing_folder_fails_cleanly(tmp_path):
    proc = hwlearn("runs", tmp_path / "nowhere", check=False)
    assert proc.returncode == 2 and "nowhere: no such folder" in proc.stderr
