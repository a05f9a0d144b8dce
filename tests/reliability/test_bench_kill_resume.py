"""A bench run killed (SIGKILL) at random moments, then resumed each time, ends exactly where an
uninterrupted run ends; no step is lost or recorded twice, and the database stays intact. And a
resume compares the bench with the checkpoint: a board holding codes nobody wrote is refused,
naming every difference, unless the operator says --reprogram."""

import random
import signal
import sqlite3
import subprocess
import sys

import numpy as np

from hwlearn.runstore import RunReader
from tests.bench_helpers import served_bench_file
from tests.cli_helpers import ROOT, wait_for_step

KILLS = 10


def _experiment(tmp_path):
    # Ideal devices, sample by sample (the slowest plan, so kills land mid-step as often as not).
    path = tmp_path / "experiment.toml"
    text = (ROOT / "examples/bench-teacher-omega.toml").read_text().replace("epochs = 15", "epochs = 6")
    path.write_text('plan = "per-sample"\n' + text)
    return path


def _run(bench, *args):
    return subprocess.Popen([sys.executable, "-m", "hwlearn", "run", *map(str, args), "--bench", str(bench),
                             "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return out


def _final(run_dir):
    with RunReader(run_dir) as reader:
        steps = reader.steps().step
        final = reader.arrays("resistances")[1][-1]
        status = reader.status().status
    return steps, final, status


def test_ten_kills_and_resumes_end_where_the_uninterrupted_run_ends(tmp_path):
    experiment = _experiment(tmp_path)
    with served_bench_file(tmp_path) as (vb, bench):
        _finish(_run(bench, experiment, "--out", tmp_path / "whole"))
        whole_steps, whole, _ = _final(tmp_path / "whole")
        run = tmp_path / "killed"
        rng = random.Random(3)
        proc = _run(bench, experiment, "--out", run)
        kills = 0
        while kills < KILLS:
            with RunReader(run) if (run / "run.sqlite").exists() else _nothing() as reader:
                done = reader.last_step().step if reader is not None and reader.last_step() else 0
            if done >= whole_steps[-1] - 2:
                break
            wait_for_step(run, done + rng.randint(1, 3), proc)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            kills += 1
            # The board's watchdog may have put it at its safe code: acknowledged, and the
            # checkpoint's codes written again (a board at its safe code is expected).
            proc = _run(bench, "--resume", run, "--clear-watchdog")
        _finish(proc)
        assert all(vb.is_safe().values()), vb.is_safe()
    steps, final, status = _final(run)
    assert kills >= 5, kills  # the run was long enough to be killed often
    assert status == "done"
    assert np.array_equal(steps, whole_steps)  # each step recorded once, none lost
    np.testing.assert_allclose(final, whole, rtol=1e-12, atol=0.0)
    with sqlite3.connect(run / "run.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_a_resume_refuses_a_board_that_holds_codes_nobody_wrote_unless_told_to_reprogram(tmp_path):
    experiment = _experiment(tmp_path)
    with served_bench_file(tmp_path) as (vb, bench):
        run = tmp_path / "run"
        proc = _run(bench, experiment, "--out", run)
        wait_for_step(run, 3, proc)
        proc.send_signal(signal.SIGINT)  # a clean stop: the boards end at their safe code
        proc.communicate(timeout=120)
        # Someone changes two potentiometers while the run is stopped (the devices themselves), on a
        # board that keeps its codes when its port is opened again (its auto-reset disabled; one
        # that restarts would be back at its safe code, which a resume expects).
        vb.emulators["board"].auto_reset = False
        vb.emulators["board"].backend.write_codes({0: 17, 5: 200})
        refused = _run(bench, "--resume", run)
        _, err = refused.communicate(timeout=120)
        assert refused.returncode == 2
        for words in ("differs from the run's checkpoint", "holds code 17", "holds code 200", "--reprogram",
                      "Nothing was written"):
            assert words in err, err
        with RunReader(run) as reader:
            assert reader.status().status == "stopped"  # the refusal did not reopen the run
        _finish(_run(bench, "--resume", run, "--reprogram"))
        assert all(vb.is_safe().values())
    with RunReader(run) as reader:
        assert reader.status().status == "done"
