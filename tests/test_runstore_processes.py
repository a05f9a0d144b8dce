"""Runs written by another process: live reading, SIGKILL of the writer, SIGKILL during checkpoints.

This file is also the writer program the tests start: ``python test_runstore_processes.py MODE ...``."""

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    sys.path.insert(0, str(REPO))

from hwlearn.runstore import RunReader, RunWriter  # noqa: E402
from hwlearn.runstore import checkpoint as checkpoint_module  # noqa: E402

TRAJECTORY_SEED = 91
WIDTH = 16
CHECKPOINT_EVERY = 7
SCALAR_NAMES = ["loss", "mean", "step_echo"]
ARRAY_NAMES = ["image", "weights"]
FOREVER = 10**9
HANG_GUARD_S = 120.0  # only to turn a hang into a failure; nothing asserts on time


# ---- the writer programs (run in a child process) ---------------------------------------------

def advance(weights, rng, step):
    """One deterministic 'training' step: a random walk with decay, and what a step records."""
    weights = 0.99 * weights + 0.01 * rng.normal(size=weights.shape)
    scalars = {"loss": float(weights @ weights), "mean": float(weights.mean()), "step_echo": float(step)}
    arrays = {"weights": weights.copy(), "image": np.full((32, 32), step, dtype=np.int32)}
    return weights, scalars, arrays


def reference_trajectory(total_steps):
    rng, weights, out = np.random.default_rng(TRAJECTORY_SEED), np.ones(WIDTH), []
    for step in range(total_steps):
        weights, scalars, _ = advance(weights, rng, step)
        out.append((scalars["loss"], weights.copy()))
    return out


def train(run_dir, total_steps, resume, pause_at=None, go_file=None):
    rng, weights, start = np.random.default_rng(TRAJECTORY_SEED), np.ones(WIDTH), 0
    if resume:
        writer = RunWriter.resume(run_dir)
        if writer.resumed_from is not None:
            weights = writer.resumed_from.arrays["weights"]
            rng.bit_generator.state = writer.resumed_from.state["rng"]
            start = writer.resumed_from.step + 1
    else:
        writer = RunWriter.create(run_dir, {"rule": {"name": "omega"}, "task": {"name": "walk"}},
                                  {"seeds": {"trajectory": TRAJECTORY_SEED}})
    with writer:
        for step in range(start, total_steps):
            if step == pause_at:
                while not Path(go_file).exists():
                    time.sleep(0.01)
            weights, scalars, arrays = advance(weights, rng, step)
            writer.record_step(step, step // 10, scalars, arrays)
            if step % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
                writer.checkpoint(step, step // 10, {"weights": weights}, {"rng": rng.bit_generator.state})


def kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def inject_crash(point, on_checkpoint):
    """SIGKILL this process at ``point`` inside the ``on_checkpoint``-th checkpoint write."""
    count = {"n": 0}
    real_write_npz, real_fsync_dir, real_rmtree = (checkpoint_module.write_npz, checkpoint_module.fsync_dir,
                                                   checkpoint_module.shutil.rmtree)

    def write_npz(*args, **kwargs):
        count["n"] += 1
        real_write_npz(*args, **kwargs)
        if point == "arrays_written" and count["n"] == on_checkpoint:
            kill_self()

    def fsync_dir(path):
        real_fsync_dir(path)
        if count["n"] != on_checkpoint:
            return
        if point == "before_rename" and Path(path).name.startswith(".tmp-"):
            kill_self()
        if point == "after_rename" and Path(path).name == "checkpoints":
            kill_self()

    def rmtree(path, *args, **kwargs):
        if point == "while_discarding" and count["n"] == on_checkpoint and Path(path).name.startswith(".old-"):
            kill_self()
        real_rmtree(path, *args, **kwargs)

    checkpoint_module.write_npz, checkpoint_module.fsync_dir = write_npz, fsync_dir
    checkpoint_module.shutil = type("shutil", (), {"rmtree": staticmethod(rmtree)})


def checkpoint_forever(run_dir, size):
    with RunWriter.create(run_dir, {}, {}) as writer:
        for k in range(FOREVER):
            writer.record_step(k, 0, {"k": float(k)})
            writer.checkpoint(k, 0, {"big": np.full(size, float(k)), "small": np.array([k])}, {"k": k})


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["train", "checkpoints"])
    parser.add_argument("run_dir")
    parser.add_argument("--total", type=int, default=FOREVER)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--pause-at", type=int)
    parser.add_argument("--go-file")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--crash-at")
    parser.add_argument("--crash-on", type=int, default=3)
    args = parser.parse_args(argv)
    if args.mode == "train":
        train(args.run_dir, args.total, args.resume, args.pause_at, args.go_file)
    else:
        if args.crash_at:
            inject_crash(args.crash_at, args.crash_on)
        checkpoint_forever(args.run_dir, args.size)


# ---- helpers for the tests --------------------------------------------------------------------

def start(tmp_path, *args):
    with open(tmp_path / f"child-{time.monotonic_ns()}.stderr", "w") as log:  # the child keeps its own copy
        proc = subprocess.Popen([sys.executable, __file__, *map(str, args)], stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
    proc.log_path = log.name
    return proc


def finish(proc):
    code = proc.wait(timeout=HANG_GUARD_S)
    assert code == 0, f"writer exited with {code}:\n{Path(proc.log_path).read_text()}"


def wait_until(condition, proc, what):
    deadline = time.monotonic() + HANG_GUARD_S
    while True:
        try:
            if condition():
                return
        except Exception:  # the run folder may not exist yet
            pass
        if proc.poll() is not None:
            raise AssertionError(f"writer exited ({proc.returncode}) before {what}:\n{Path(proc.log_path).read_text()}")
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


def step_count(run_dir):
    with RunReader(run_dir) as reader:
        return reader.step_count()


def assert_every_step_complete(reader):
    steps = reader.steps().step.tolist()
    scalars = reader.scalars()
    assert sorted(scalars) == (SCALAR_NAMES if steps else [])
    for name, (s, _) in scalars.items():
        assert s.tolist() == steps, f"scalar {name} recorded at {len(s)} steps, steps table has {len(steps)}"
    for name in reader.array_names():
        assert reader.arrays(name)[0].tolist() == steps, f"array {name} misses steps"
    assert reader.array_names() == (ARRAY_NAMES if steps else [])
    return steps


def integrity(run_dir):
    conn = sqlite3.connect((Path(run_dir) / "run.sqlite").resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


# ---- tests ------------------------------------------------------------------------------------

def test_reader_sees_only_complete_steps_that_only_grow_while_another_process_writes(tmp_path):
    run, go, total, pause_at = tmp_path / "run", tmp_path / "go", 400, 150
    proc = start(tmp_path, "train", run, "--total", total, "--pause-at", pause_at, "--go-file", go)
    wait_until(lambda: step_count(run) == pause_at, proc, f"{pause_at} steps")
    seen_sizes, previous = [], []
    with RunReader(run) as reader:
        assert reader.status().status == "running"
        go.touch()
        while True:
            running = proc.poll() is None
            steps = reader.steps().step.tolist()
            assert steps[:len(previous)] == previous, "steps shrank or changed between two reads"
            scalars = reader.scalars()
            lengths = {name: len(s) for name, (s, v) in scalars.items()}
            assert set(lengths) == set(SCALAR_NAMES)
            reference_steps = scalars["step_echo"][0]
            for _name, (s, _v) in scalars.items():
                assert np.array_equal(s, reference_steps), f"incomplete step seen: {lengths}"
            assert np.array_equal(scalars["step_echo"][1], reference_steps)
            s, image = reader.arrays("image", since_step=len(previous) - 1)
            assert np.all(image == s[:, None, None]), "an array blob belongs to another step"
            seen_sizes.append(len(steps))
            previous = steps
            if not running:
                break
        finish(proc)
        assert reader.status().status == "done"
        assert assert_every_step_complete(reader) == list(range(total))
    assert seen_sizes[0] >= pause_at and seen_sizes[-1] == total
    print(f"{len(set(seen_sizes))} different step counts seen in {len(seen_sizes)} reads")


def test_sigkilled_writer_leaves_a_consistent_run_that_resumes_without_gaps_or_duplicates(tmp_path):
    run = tmp_path / "run"
    kill_points = np.random.default_rng(5).integers(20, 90, size=2)
    for cycle, kill_after in enumerate(kill_points):
        proc = start(tmp_path, "train", run, *(["--resume"] if cycle else []))
        already = step_count(run) if cycle else 0
        wait_until(lambda run=run, goal=already + kill_after: step_count(run) >= goal, proc, f"{kill_after} more steps")
        proc.send_signal(signal.SIGKILL)
        # Wait for the death without reaping it: a zombie must already count as a dead writer.
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        with RunReader(run) as reader:
            assert reader.status().status == "crashed"
        proc.wait(timeout=HANG_GUARD_S)

        assert integrity(run) == [("ok",)]
        with RunReader(run) as reader:
            status = reader.status()
            assert status.status == "crashed" and status.recorded == "running", status
            steps = assert_every_step_complete(reader)
            assert steps == list(range(len(steps))), "a recorded step is missing"
            checkpoint = reader.latest_checkpoint()
            assert checkpoint.step <= steps[-1]

    final_total = step_count(run) + 20
    finish(start(tmp_path, "train", run, "--resume", "--total", final_total))
    assert integrity(run) == [("ok",)]
    expected = reference_trajectory(final_total)
    with RunReader(run) as reader:
        assert reader.status().status == "done" and reader.status().session == 3
        steps = assert_every_step_complete(reader)
        assert steps == list(range(final_total))
        _, loss = reader.scalars(["loss"])["loss"]
        np.testing.assert_array_equal(loss, [e[0] for e in expected])
        _, weights = reader.arrays("weights")
        np.testing.assert_array_equal(weights, np.array([e[1] for e in expected]))
        resumed = [e for e in reader.events() if e["kind"] == "resumed"]
        assert len(resumed) == 2 and all(e["data"]["previous_status"] == "crashed" for e in resumed)


def latest_is_complete(run_dir):
    with RunReader(run_dir) as reader:
        checkpoint = reader.latest_checkpoint()
    assert checkpoint is not None
    k = checkpoint.state["k"]
    assert checkpoint.step == k and checkpoint.arrays["small"].tolist() == [k]
    assert np.all(checkpoint.arrays["big"] == k), "checkpoint arrays come from another checkpoint than its state"
    return checkpoint


def test_sigkill_at_random_moments_of_checkpoint_writing_leaves_a_complete_latest_checkpoint(tmp_path):
    delays = np.random.default_rng(17).uniform(0.0, 0.3, size=4)
    for i, delay in enumerate(delays):
        run = tmp_path / f"run{i}"
        proc = start(tmp_path, "checkpoints", run, "--size", 2_000_000)
        wait_until(lambda run=run: (run / "checkpoints" / "ckpt-000001").is_dir(), proc, "the first checkpoint")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=HANG_GUARD_S)
        checkpoint = latest_is_complete(run)
        with RunWriter.resume(run) as writer:
            assert writer.resumed_from.step == checkpoint.step
            assert writer.last_step == checkpoint.step
        leftovers = [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
        assert leftovers == [], f"resume left {leftovers}"


@pytest.mark.parametrize("point, survivor", [("arrays_written", 1), ("before_rename", 1), ("after_rename", 2),
                                             ("while_discarding", 2)])
def test_sigkill_inside_a_checkpoint_keeps_the_last_complete_one(tmp_path, point, survivor):
    run = tmp_path / "run"
    proc = start(tmp_path, "checkpoints", run, "--size", 1000, "--crash-at", point, "--crash-on", 3)
    assert proc.wait(timeout=HANG_GUARD_S) == -signal.SIGKILL, Path(proc.log_path).read_text()
    assert latest_is_complete(run).step == survivor
    with RunWriter.resume(run) as writer:
        assert writer.resumed_from.step == survivor
        writer.record_step(survivor + 1, 0, {"k": float(survivor + 1)})
        writer.checkpoint(survivor + 1, 0, {"big": np.full(10, float(survivor + 1)), "small": np.array([survivor + 1])},
                          {"k": survivor + 1})
    assert latest_is_complete(run).step == survivor + 1


if __name__ == "__main__":
    main(sys.argv[1:])
