"""hwlearn sweep as a user runs it: the local pool, a Dask cluster (in this process and as separate
`dask scheduler` / `dask worker` processes), SIGKILL of the client or of a worker, Ctrl-C, and
--resume; every way gives the uninterrupted local table to the last bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwlearn.app.sweep import read_index
from hwlearn.runstore import RunReader
from tests.cli_helpers import ROOT, hwlearn, start
from tests.sweep_helpers import (
    assert_every_point_trained_to_completion_once,
    point_dirs,
    table,
    wait_for_point_step,
    wait_until_no_point_is_written,
    write_sweep,
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sweep run once, uninterrupted, on the local pool of 2 workers."""
    folder = tmp_path_factory.mktemp("reference")
    sweep = write_sweep(folder)
    out = hwlearn("sweep", sweep, "--out", folder / "out", "--workers", "2").stdout
    assert "4 of 4 points done" in out
    return folder / "out", table(folder / "out")


def test_a_local_sweep_records_every_point_once_with_its_metrics(reference, tmp_path):
    out, rows = reference
    assert_every_point_trained_to_completion_once(out)
    assert [(r[1]["training.learning_rate"], r[2]) for r in rows] == [(10.0, 0), (10.0, 1), (30.0, 0), (30.0, 1)]
    assert all(set(r[4]) == {"train_loss", "test_loss", "train_accuracy", "test_accuracy"} for r in rows)
    assert rows[0][4] != rows[1][4]  # the seeds differ
    with RunReader(point_dirs(out)[3]) as reader:
        assert reader.config()["training"]["learning_rate"] == 30.0 and reader.config()["seeds"]["base"] == 1
    text = hwlearn("sweep", "show", out).stdout
    assert "over seeds, per setting:" in text and "2/2" in text and "+-" in text
    doc = json.loads(hwlearn("sweep", "show", out, "--json").stdout)
    lr10 = [s for s in doc["settings"] if s["params"]["training.learning_rate"] == 10.0][0]
    accuracies = [r[4]["test_accuracy"] for r in rows[:2]]
    assert lr10["metrics"]["test_accuracy"]["mean"] == pytest.approx(sum(accuracies) / 2, abs=1e-15)
    png = tmp_path / "plot.png"
    hwlearn("sweep", "plot", out, "--x", "learning_rate", "--y", "test_loss", "--out", png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_sigkill_of_the_client_then_resume_completes_every_point_once(reference, tmp_path):
    sweep = write_sweep(tmp_path)
    out = tmp_path / "out"
    proc = start("sweep", sweep, "--out", out, "--workers", "2", "--quiet")
    wait_for_point_step(out, 300, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    wait_until_no_point_is_written(out)  # the workers saw their pipes close and stopped
    assert "running" in [p.state for p in read_index(out).points]
    assert json.loads(hwlearn("sweep", "show", out, "--json").stdout)["counts"]["interrupted"] >= 1
    hwlearn("sweep", sweep, "--out", out, "--resume", "--workers", "2")
    assert_every_point_trained_to_completion_once(out)
    assert any(a["resumed"] for a in read_index(out).attempts)  # a run continued from its checkpoint
    assert table(out) == reference[1]


def test_sigkill_of_a_worker_fails_its_point_and_resume_completes_it(reference, tmp_path):
    sweep = write_sweep(tmp_path, retries=0)
    out = tmp_path / "out"
    proc = start("sweep", sweep, "--out", out, "--workers", "2", "--quiet")
    victim = wait_for_point_step(out, 300, proc)
    with RunReader(victim) as reader:
        os.kill(reader.status().writer_pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "3 of 4 points done, 1 failed" in stdout, stderr
    failed = [p for p in read_index(out).points if p.state == "failed"]
    assert [p.name for p in failed] == [victim.name] and "killed by SIGKILL" in failed[0].error
    hwlearn("sweep", sweep, "--out", out, "--resume", "--workers", "2")
    assert_every_point_trained_to_completion_once(out)
    attempts = [a for a in read_index(out).attempts if a["point"] == failed[0].id]
    assert [(a["outcome"], a["resumed"]) for a in attempts] == [("failed", 0), ("done", 1)]
    assert table(out) == reference[1]


def test_ctrl_c_stops_every_point_resumably_and_resume_gives_the_same_table(reference, tmp_path):
    sweep = write_sweep(tmp_path)
    out = tmp_path / "out"
    proc = start("sweep", sweep, "--out", out, "--workers", "2", "--quiet")
    wait_for_point_step(out, 300, proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"hwlearn sweep {sweep} --out {out} --resume" in stdout
    states = [p.state for p in read_index(out).points]
    assert "running" not in states and "stopped" in states, states
    for folder in point_dirs(out):
        with RunReader(folder) as reader:
            assert reader.status().status in ("stopped", "done")
    hwlearn("sweep", sweep, "--out", out, "--resume", "--workers", "2")
    assert_every_point_trained_to_completion_once(out)
    assert table(out) == reference[1]


# ------------------------------------------------------------------------------------ Dask


def test_a_sweep_on_a_local_dask_cluster_gives_the_local_table(reference, tmp_path):
    distributed = pytest.importorskip("distributed", reason="the optional extra hwlearn[dask] is not installed")
    from hwlearn.app.executors.dask_cluster import DaskExecutor
    from hwlearn.app.sweep import SweepIndex, expand, load_sweep, run_sweep

    spec = load_sweep(write_sweep(tmp_path))
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with DaskExecutor(cluster.scheduler_address) as executor:
            assert executor.slots == 2
            with SweepIndex.create(out, spec, expand(spec), executor.description) as index:
                counts = run_sweep(index, executor)
    assert counts.done == 4
    assert_every_point_trained_to_completion_once(out)
    assert table(out) == reference[1]


def _start(*args: str, log: Path) -> subprocess.Popen:
    with open(log, "w") as stream:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=ROOT, stdout=stream,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the nanny and its worker
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_a_sweep_through_dask_scheduler_and_worker_processes_gives_the_local_table(reference, tmp_path):
    distributed = pytest.importorskip("distributed", reason="the optional extra hwlearn[dask] is not installed")
    scheduler_file = tmp_path / "scheduler.json"
    procs = [_start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(scheduler_file), log=tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            assert procs[0].poll() is None and time.monotonic() < deadline, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.05)
        address = json.loads(scheduler_file.read_text())["address"]
        for n in range(2):
            procs.append(_start("worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
                                "--death-timeout", "60", log=tmp_path / f"worker{n}.log"))
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=90)
        sweep = write_sweep(tmp_path)
        out = tmp_path / "out"
        stdout = hwlearn("sweep", sweep, "--out", out, "--scheduler", address).stdout
        assert "4 of 4 points done" in stdout
        assert_every_point_trained_to_completion_once(out)
        assert table(out) == reference[1]
        assert read_index(out).client["executor"].startswith(f"Dask cluster at {address}: 2 workers")
    finally:
        for proc in reversed(procs):
            _end(proc)


def test_without_the_dask_extra_scheduler_names_the_extra(tmp_path):
    sweep = write_sweep(tmp_path)
    code = ("import sys; sys.modules['distributed'] = None; from hwlearn.cli import main; "
            f"sys.exit(main(['sweep', {str(sweep)!r}, '--out', {str(tmp_path / 'out')!r}, "
            "'--scheduler', 'tcp://127.0.0.1:1']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "pip install 'hwlearn[dask]'" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
