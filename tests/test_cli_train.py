"""hwlearn train as a user runs it: summary, run folder, Ctrl-C, SIGKILL and resume."""

import json
import signal
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from hwlearn.runstore import RunReader
from tests.cli_helpers import hwlearn, start, wait_for_step

SLOW_CONFIG = """
name = "kill-test"
[task]
name = "iris"
[training]
batch_size = 1
epochs = 12
[record]
checkpoint_every = 25
array_every = 7
"""


def final_ohms(run_dir: Path) -> np.ndarray:
    with RunReader(run_dir) as reader:
        return reader.latest_checkpoint().arrays["true_ohms"]


def test_train_prints_the_summary_and_records_a_complete_run(tmp_path):
    out = hwlearn("train", "examples/iris-omega.toml", "--out", tmp_path / "run", "--quiet").stdout
    assert "(done)" in out and "linear least-squares ceiling" in out and "accuracy  test" in out
    doc = json.loads(hwlearn("show", tmp_path / "run", "--json").stdout)
    assert doc["status"] == "done" and doc["rule"] == "omega" and doc["epochs_done"] == 100
    assert set(doc["metrics"]) >= {"train_loss", "test_loss", "test_accuracy", "linear_ceiling_accuracy"}
    assert doc["metrics"]["linear_ceiling_accuracy"] - doc["metrics"]["test_accuracy"] < 0.1


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_result(tmp_path):
    config = tmp_path / "slow.toml"
    config.write_text(SLOW_CONFIG)
    hwlearn("train", config, "--seed", "3", "--out", tmp_path / "whole", "--quiet")
    killed = tmp_path / "killed"
    proc = start("train", config, "--seed", "3", "--out", killed, "--quiet")
    wait_for_step(killed, 160, proc)  # well into the second epoch (105 steps each)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with RunReader(killed) as reader:
        assert reader.status().status == "crashed"
        checkpoint_step = reader.latest_checkpoint(load_arrays=False).step
        killed_at = reader.last_step().step
    assert killed_at % 105 != 0 and killed_at < 12 * 105  # killed inside an epoch, before the end
    assert checkpoint_step <= killed_at  # the steps after the checkpoint are recomputed on resume
    hwlearn("train", "--resume", killed, "--quiet")
    assert np.abs(final_ohms(killed) - final_ohms(tmp_path / "whole")).max() <= 1e-12 * final_ohms(killed).max()
    with sqlite3.connect(killed / "run.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        steps = [row[0] for row in db.execute("SELECT step FROM steps ORDER BY step")]
    assert steps == list(range(12 * 105 + 1))  # nothing lost, nothing twice
    with RunReader(killed) as reader, RunReader(tmp_path / "whole") as whole:
        assert reader.status().status == "done"
        ours = reader.scalars(["train_loss"])["train_loss"]
        theirs = whole.scalars(["train_loss"])["train_loss"]
    assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1])


def test_ctrl_c_stops_cleanly_and_the_run_resumes_to_the_same_end(tmp_path):
    config = tmp_path / "slow.toml"
    config.write_text(SLOW_CONFIG.replace("epochs = 12", "epochs = 3"))
    hwlearn("train", config, "--out", tmp_path / "whole", "--quiet")
    run = tmp_path / "stopped"
    proc = start("train", config, "--out", run)
    wait_for_step(run, 50, proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "(stopped)" in stdout and f"hwlearn train --resume {run}" in stdout
    with RunReader(run) as reader:
        assert reader.status().status == "stopped"
    hwlearn("train", "--resume", run, "--quiet")
    assert np.array_equal(final_ohms(run), final_ohms(tmp_path / "whole"))


@pytest.mark.parametrize("args, message", [
    ([], "give either an experiment file or --resume RUN_DIR"),
    (["examples/iris-omega.toml", "--resume", "x"], "give either an experiment file or --resume RUN_DIR"),
    (["examples/nope.toml"], "cannot read examples/nope.toml"),
    (["--resume", "examples"], "examples"),
])
def test_train_refuses_bad_invocations_clearly(args, message):
    proc = hwlearn("train", *args, check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_a_finished_run_cannot_be_resumed_or_overwritten(tmp_path):
    hwlearn("train", "examples/teacher-omega.toml", "--out", tmp_path / "run", "--quiet")
    proc = hwlearn("train", "--resume", tmp_path / "run", check=False)
    assert proc.returncode == 2 and "status is 'done'" in proc.stderr
    proc = hwlearn("train", "examples/teacher-omega.toml", "--out", tmp_path / "run", check=False)
    assert proc.returncode == 2 and "not empty" in proc.stderr
