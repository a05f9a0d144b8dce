"""RunReader and list_runs: reading runs, telling crashed runs apart, and refusing non-runs."""

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hwlearn.runstore import (
    NotARunError,
    RunReader,
    RunStoreError,
    RunWriter,
    list_runs,
)

REPO = Path(__file__).resolve().parents[1]


def write_run(path, steps=3, close=True):
    writer = RunWriter.create(path, {"rule": {"name": "omega"}}, {"seeds": {"init": 1}})
    for step in range(steps):
        writer.record_step(step, step, {"train_loss": float(step), "test_accuracy": 0.5},
                           {"r": np.arange(3.0) + step, "flags": np.array([True, step % 2 == 0])})
    if close:
        writer.close()
    return writer


def edit_database(run, sql, *params):
    conn = sqlite3.connect(run / "run.sqlite")
    with conn:
        conn.execute(sql, params)
    conn.close()


def test_reader_returns_steps_scalars_and_arrays(tmp_path):
    write_run(tmp_path / "run", steps=4)
    with RunReader(tmp_path / "run") as reader:
        steps = reader.steps()
        assert steps.step.tolist() == [0, 1, 2, 3] and steps.epoch.tolist() == [0, 1, 2, 3]
        assert np.all(np.diff(steps.time) >= 0)
        assert reader.scalar_names() == ["test_accuracy", "train_loss"]
        assert reader.array_names() == ["flags", "r"]
        s, v = reader.scalars(["train_loss"], since_step=1)["train_loss"]
        assert s.tolist() == [2, 3] and v.tolist() == [2.0, 3.0]
        assert reader.scalars(["not_yet"])["not_yet"][0].size == 0
        s, r = reader.arrays("r", since_step=2)
        assert s.tolist() == [3] and r.shape == (1, 3) and r[0].tolist() == [3.0, 4.0, 5.0]
        s, flags = reader.arrays("flags")
        assert flags.dtype == bool and flags.shape == (4, 2)
        empty_steps, empty = reader.arrays("r", since_step=10)
        assert empty_steps.size == 0 and empty.shape == (0, 3)
        step, latest = reader.latest_array("r")
        assert step == 3 and latest.tolist() == [3.0, 4.0, 5.0]
        assert reader.latest_array("nothing") is None
        assert reader.array_at("r", 1).tolist() == [1.0, 2.0, 3.0]
        assert reader.last_step().step == 3 and reader.step_count() == 4
        with pytest.raises(RunStoreError, match="no array named 'w' is recorded; recorded arrays: flags, r"):
            reader.arrays("w")


def test_folder_without_database_is_not_a_run(tmp_path):
    (tmp_path / "config.toml").write_text("")
    with pytest.raises(NotARunError, match=f"{tmp_path} is not a run folder: it has no run.sqlite"):
        RunReader(tmp_path)
    with pytest.raises(NotARunError, match="no such folder"):
        RunReader(tmp_path / "missing")


def test_database_that_is_not_a_run_database_is_refused(tmp_path):
    (tmp_path / "run.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(NotARunError, match=f"{tmp_path} is not a readable run folder"):
        RunReader(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    sqlite3.connect(other / "run.sqlite").execute("CREATE TABLE t(x)").connection.close()
    with pytest.raises(NotARunError, match="has no hwlearn run tables"):
        RunReader(other)


def test_a_run_left_running_by_an_exited_process_reads_crashed(tmp_path):
    run = tmp_path / "run"
    code = ("import sys; from hwlearn.runstore import RunWriter; "
            "w = RunWriter.create(sys.argv[1], {}, {}); w.record_step(0, 0, {'x': 1.0})")
    subprocess.run([sys.executable, "-c", code, str(run)], check=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                   timeout=60)
    with RunReader(run) as reader:
        status = reader.status()
    assert status.status == "crashed" and status.recorded == "running" and status.writer_alive is False
    assert "is gone; its last status was 'running'" in status.detail and status.resumable


def test_a_live_writer_reads_running(tmp_path):
    writer = write_run(tmp_path / "run", close=False)
    with RunReader(tmp_path / "run") as reader:
        status = reader.status()
    assert (status.status, status.writer_alive, status.writer_pid) == ("running", True, os.getpid())
    writer.close()


def test_a_reused_pid_is_not_mistaken_for_the_writer(tmp_path):
    writer = write_run(tmp_path / "run", close=False)
    # Same pid, different process start time: what a recycled pid looks like.
    edit_database(tmp_path / "run", "UPDATE writer_sessions SET pid_start = '1'")
    if not Path(f"/proc/{os.getpid()}/stat").exists():
        pytest.skip("needs /proc")
    with RunReader(tmp_path / "run") as reader:
        assert reader.status().status == "crashed"
    writer.close()


def test_a_writer_on_another_host_is_crashed_only_after_its_heartbeat_goes_stale(tmp_path):
    writer = write_run(tmp_path / "run", close=False)
    edit_database(tmp_path / "run", "UPDATE writer_sessions SET host = 'bench-pc-7'")
    with RunReader(tmp_path / "run", stale_after_s=600) as reader:
        status = reader.status()
        assert (status.status, status.writer_alive) == ("running", None)
    edit_database(tmp_path / "run", "UPDATE writer_sessions SET heartbeat = ?", time.time() - 3600)
    with RunReader(tmp_path / "run", stale_after_s=600) as reader:
        status = reader.status()
        assert status.status == "crashed" and "no write from the writer (pid" in status.detail
        assert "on bench-pc-7" in status.detail
    writer.close()


def test_reader_never_writes_the_run_folder(tmp_path):
    write_run(tmp_path / "run")
    db = tmp_path / "run" / "run.sqlite"
    before = db.read_bytes()
    with RunReader(tmp_path / "run") as reader:
        reader.scalars()
        reader.status()
        with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
            reader._conn.execute("INSERT INTO summary VALUES ('x', '1')")
    assert db.read_bytes() == before


def test_list_runs_finds_runs_one_level_down_newest_first(tmp_path):
    write_run(tmp_path / "runs" / "first", steps=1)
    write_run(tmp_path / "runs" / "sweep" / "second", steps=1)
    write_run(tmp_path / "runs" / "third", steps=1)
    (tmp_path / "runs" / "notes").mkdir()
    (tmp_path / "runs" / "sweep" / "plots").mkdir()
    found = list_runs(tmp_path / "runs")
    assert [p.name for p in found] == ["third", "second", "first"]
    assert list_runs(tmp_path / "runs" / "first") == [tmp_path / "runs" / "first"]
    with pytest.raises(RunStoreError, match="no such folder"):
        list_runs(tmp_path / "nowhere")
