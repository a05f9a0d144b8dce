"""RunWriter in one process: what it writes, what it refuses, how it ends and resumes a run."""

import json
import logging
import sqlite3
import subprocess
import sys
import tomllib

import numpy as np
import pytest

from hwlearn.runstore import (
    DuplicateStepError,
    RunBusyError,
    RunExistsError,
    RunReader,
    RunStoreError,
    RunWriter,
)

CONFIG = {"rule": {"name": "omega", "learning_rate": 0.05}, "task": {"name": "xor", "samples": 4},
          "seeds": {"init": 7}}


def make_run(path, steps=0, **kwargs):
    writer = RunWriter.create(path, CONFIG, {"seeds": {"init": 7}}, **kwargs)
    for step in range(steps):
        writer.record_step(step, step // 3, {"train_loss": 1.0 / (step + 1)}, {"r": np.full(4, float(step))})
    return writer


def test_create_writes_config_metadata_database_log_and_checkpoint_folder(tmp_path):
    run = tmp_path / "run"
    make_run(run).close()
    assert {"checkpoints", "config.toml", "log.txt", "metadata.json", "run.sqlite", "writer.lock"} <= {
        p.name for p in run.iterdir()}
    assert tomllib.loads((run / "config.toml").read_text()) == CONFIG
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["hwlearn"] and meta["python"] and meta["host"] and meta["pid"] > 0
    assert set(meta["packages"]) == {"numpy", "scipy", "pyvisa", "pyserial", "PySide6"}
    assert meta["packages"]["numpy"] == np.__version__
    assert meta["created"].endswith("Z") and meta["seeds"] == {"init": 7}
    assert "git_commit" in meta and isinstance(meta["command_line"], list)
    with RunReader(run) as reader:
        assert reader.config() == CONFIG
        assert reader.config_text() == (run / "config.toml").read_text()
        assert reader.metadata() == meta
    assert "run created" in (run / "log.txt").read_text()


def test_database_is_in_wal_mode(tmp_path):
    make_run(tmp_path / "run").close()
    conn = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_create_refuses_a_non_empty_folder_and_accepts_an_empty_one(tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("x")
    with pytest.raises(RunExistsError, match=r"used: folder is not empty \(notes.txt\)"):
        RunWriter.create(tmp_path / "used", CONFIG)
    (tmp_path / "empty").mkdir()
    RunWriter.create(tmp_path / "empty", CONFIG).close()


def test_config_that_toml_cannot_hold_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(RunStoreError, match=r"config value rule.momentum is None"):
        RunWriter.create(tmp_path / "run", {"rule": {"name": "omega", "momentum": None}})
    assert not (tmp_path / "run").exists()


def test_numpy_values_in_config_become_plain_toml(tmp_path):
    config = {"rule": {"name": "ep", "beta": np.float64(0.1), "sizes": np.array([2, 3])}}
    make_run_dir = tmp_path / "run"
    RunWriter.create(make_run_dir, config).close()
    with RunReader(make_run_dir) as reader:
        assert reader.config() == {"rule": {"name": "ep", "beta": 0.1, "sizes": [2, 3]}}


def test_recording_a_step_twice_or_out_of_order_is_refused(tmp_path):
    with make_run(tmp_path / "run", steps=3) as writer:
        with pytest.raises(DuplicateStepError, match="step 2 recorded after step 2"):
            writer.record_step(2, 0, {"train_loss": 0.0})
        with pytest.raises(DuplicateStepError, match="step 1 recorded after step 2"):
            writer.record_step(1, 0, {"train_loss": 0.0})
        writer.record_step(10, 3, {"train_loss": 0.0})  # gaps are allowed
    with RunReader(tmp_path / "run") as reader:
        assert reader.steps().step.tolist() == [0, 1, 2, 10]


def test_bad_step_values_and_names_are_refused_with_the_value(tmp_path):
    with make_run(tmp_path / "run") as writer:
        with pytest.raises(RunStoreError, match=r"step is -1; step is an integer >= 0"):
            writer.record_step(-1, 0, {})
        with pytest.raises(RunStoreError, match=r"step is 1.0 \(float\)"):
            writer.record_step(1.0, 0, {})
        with pytest.raises(RunStoreError, match=r"scalar 'loss' is 'high' \(str\)"):
            writer.record_step(0, 0, {"loss": "high"})
        with pytest.raises(RunStoreError, match=r"scalar name 'a b' is not allowed"):
            writer.record_step(0, 0, {"a b": 1.0})
        with pytest.raises(RunStoreError, match=r"scalar name 'step' is reserved"):
            writer.record_step(0, 0, {"step": 1.0})
        with pytest.raises(RunStoreError, match=r"array 'x' has dtype object"):
            writer.record_step(0, 0, {}, {"x": np.array([None])})
        # None of the refused steps left a trace.
        writer.record_step(0, 0, {"loss": 1.0})


def test_an_array_keeps_its_dtype_and_shape(tmp_path):
    with make_run(tmp_path / "run", steps=1) as writer:
        with pytest.raises(RunStoreError, match=r"array 'r' has dtype <f8 and shape \[5\], earlier steps "
                                                r"recorded dtype <f8 and shape \[4\]"):
            writer.record_step(1, 0, {}, {"r": np.zeros(5)})


def test_nan_and_infinite_scalars_are_stored(tmp_path):
    with make_run(tmp_path / "run") as writer:
        writer.record_step(0, 0, {"a": float("nan"), "b": np.inf, "c": np.float32(2.5), "d": 3})
    with RunReader(tmp_path / "run") as reader:
        values = {name: v[0] for name, (s, v) in reader.scalars().items()}
        assert np.isnan(values["a"]) and values["b"] == np.inf and values["c"] == 2.5 and values["d"] == 3.0
        assert np.isnan(reader.last_scalar("a")[1])


def test_events_summary_and_status_history(tmp_path):
    with make_run(tmp_path / "run", steps=2) as writer:
        first = writer.event("calibration", "offsets measured", data={"offsets_volts": np.array([1e-3, 2e-3])})
        writer.event("limit", "current near compliance", level="warning", step=1)
        writer.set_summary(epochs_done=1, linear_ceiling_accuracy=np.float64(0.75))
        writer.set_summary(epochs_done=2)
        writer.set_status("paused", "operator")
        with RunReader(tmp_path / "run") as reader:
            assert reader.status().status == "paused" and reader.status().detail == "operator"
        writer.set_status("running")
        with pytest.raises(RunStoreError, match="a final status is recorded by close"):
            writer.set_status("done")
        with pytest.raises(RunStoreError, match="level 'fatal' is not one of debug, info, warning, error"):
            writer.event("x", "y", level="fatal")
    with RunReader(tmp_path / "run") as reader:
        events = reader.events()
        assert [e["kind"] for e in events] == ["calibration", "limit"]
        assert events[0]["data"] == {"offsets_volts": [1e-3, 2e-3]}
        assert events[1]["step"] == 1 and events[1]["level"] == "warning"
        assert [e["kind"] for e in reader.events(since_id=first)] == ["limit"]
        assert reader.last_event("warning")["message"] == "current near compliance"
        assert reader.summary() == {"epochs_done": 2, "linear_ceiling_accuracy": 0.75}
        assert reader.status().status == "done"
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "WARNING limit: current near compliance (step 1)" in log and "status done" in log


def test_context_manager_records_failed_with_the_error(tmp_path):
    with pytest.raises(ValueError):
        with make_run(tmp_path / "run", steps=1):
            raise ValueError("bench voltage 12 V above limit 10 V")
    with RunReader(tmp_path / "run") as reader:
        status = reader.status()
        assert status.status == "failed"
        assert status.detail == "ValueError: bench voltage 12 V above limit 10 V"
        error = reader.last_event("error")
        assert error["kind"] == "exception" and "Traceback" in error["data"]["traceback"]


def test_context_manager_records_stopped_on_keyboard_interrupt(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with make_run(tmp_path / "run", steps=1):
            raise KeyboardInterrupt
    with RunReader(tmp_path / "run") as reader:
        assert reader.status().status == "stopped"


def test_closed_writer_refuses_writes_and_close_twice_is_harmless(tmp_path):
    writer = make_run(tmp_path / "run", steps=1)
    writer.close("aborted", "user abort")
    writer.close()
    with pytest.raises(RunStoreError, match="writer is closed"):
        writer.record_step(5, 0, {})
    with RunReader(tmp_path / "run") as reader:
        assert (reader.status().status, reader.status().detail) == ("aborted", "user abort")


def test_close_refuses_an_active_status(tmp_path):
    with make_run(tmp_path / "run") as writer:
        with pytest.raises(RunStoreError, match="close\\('paused'\\): allowed are done, stopped, aborted, failed"):
            writer.close("paused")


def test_log_handler_appends_to_the_run_log(tmp_path):
    with make_run(tmp_path / "run") as writer:
        logger = logging.getLogger("hwlearn.test.bench")
        handler = writer.log_handler()
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            logger.info("source meter ready")
        finally:
            logger.removeHandler(handler)
    assert "INFO    hwlearn.test.bench: source meter ready" in (tmp_path / "run" / "log.txt").read_text()


def test_update_metadata_adds_instrument_identities(tmp_path):
    with make_run(tmp_path / "run") as writer:
        writer.update_metadata(instruments={"smu1": "KEITHLEY,2450,123,1.7"})
    meta = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert meta["instruments"] == {"smu1": "KEITHLEY,2450,123,1.7"} and meta["seeds"] == {"init": 7}
    with RunReader(tmp_path / "run") as reader:
        assert reader.metadata() == meta


def test_checkpoint_round_trips_arrays_and_rng_state(tmp_path):
    rng = np.random.default_rng(123)
    rng.normal(size=5)
    weights = np.linspace(1e3, 2e3, 12).reshape(3, 4)
    with make_run(tmp_path / "run", steps=4) as writer:
        writer.checkpoint(3, 1, {"resistances_ohms": weights, "mask": weights > 1.5e3, "file": np.arange(2)},
                          {"rng": rng.bit_generator.state, "samples_seen": 12})
        cp = writer.latest_checkpoint()
    assert (cp.step, cp.epoch, cp.state["samples_seen"]) == (3, 1, 12)
    np.testing.assert_array_equal(cp.arrays["resistances_ohms"], weights)
    assert cp.arrays["mask"].dtype == bool and cp.arrays["file"].tolist() == [0, 1]
    restored = np.random.default_rng()
    restored.bit_generator.state = cp.state["rng"]
    np.testing.assert_array_equal(restored.normal(size=3), rng.normal(size=3))


def test_checkpoint_of_an_unrecorded_step_is_refused(tmp_path):
    with make_run(tmp_path / "run", steps=2) as writer:
        with pytest.raises(RunStoreError, match=r"step 5 is not recorded yet \(last recorded step: 1\)"):
            writer.checkpoint(5, 0, {}, {})


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    with make_run(tmp_path / "run", steps=5) as writer:
        for step in range(5):
            writer.checkpoint(step, 0, {"x": np.array([step])}, {})
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["ckpt-000004", "ckpt-000005"]
    with RunReader(tmp_path / "run") as reader:
        assert reader.latest_checkpoint().step == 4


def test_resume_truncates_to_the_checkpoint_and_continues(tmp_path):
    run = tmp_path / "run"
    writer = make_run(run, steps=6)
    writer.checkpoint(3, 1, {"r": np.full(4, 3.0)}, {"next": 4})
    writer.close("stopped", "operator stop")
    with RunWriter.resume(run) as writer:
        assert writer.resumed_from.step == 3 and writer.resumed_from.state == {"next": 4}
        assert writer.last_step == 3
        with pytest.raises(DuplicateStepError):
            writer.record_step(3, 1, {"train_loss": 0.0})
        with pytest.raises(RunStoreError, match="earlier steps recorded dtype <f8 and shape \\[4\\]"):
            writer.record_step(4, 1, {}, {"r": np.zeros(3)})
        for step in range(4, 8):
            writer.record_step(step, step // 3, {"train_loss": -1.0}, {"r": np.full(4, -1.0)})
    with RunReader(run) as reader:
        assert reader.steps().step.tolist() == list(range(8))
        _, loss = reader.scalars(["train_loss"])["train_loss"]
        assert loss.tolist() == [1.0, 1 / 2, 1 / 3, 1 / 4, -1.0, -1.0, -1.0, -1.0]
        resumed = reader.last_event()
        assert resumed["kind"] == "resumed" and "resumed from step 3" in resumed["message"]
        assert resumed["data"]["discarded_steps"] == 2
        assert reader.status().status == "done" and reader.status().session == 2


def test_resume_without_checkpoint_starts_over(tmp_path):
    run = tmp_path / "run"
    make_run(run, steps=3).close("failed", "bench lost")
    with RunWriter.resume(run) as writer:
        assert writer.resumed_from is None and writer.last_step is None
        writer.record_step(0, 0, {"train_loss": 5.0})
    with RunReader(run) as reader:
        assert reader.steps().step.tolist() == [0]


def test_resume_refuses_finished_runs(tmp_path):
    make_run(tmp_path / "run", steps=1).close("done")
    with pytest.raises(RunStoreError, match="status is 'done'.*only runs that are crashed, stopped, aborted, failed"):
        RunWriter.resume(tmp_path / "run")


def test_an_aborted_run_can_be_resumed_from_its_checkpoint(tmp_path):
    writer = make_run(tmp_path / "run", steps=2)
    writer.checkpoint(1, 0, {"r": np.ones(2)}, {"k": 1})
    writer.close("aborted", "operator abort")
    with RunWriter.resume(tmp_path / "run") as again:
        assert again.resumed_from.step == 1


def test_resume_refuses_a_run_whose_writer_is_alive(tmp_path):
    with make_run(tmp_path / "run", steps=1):
        with pytest.raises(RunBusyError, match="being written by another live process"):
            RunWriter.resume(tmp_path / "run")


def test_resume_of_a_folder_that_is_not_a_run_names_it(tmp_path):
    with pytest.raises(RunStoreError, match=f"{tmp_path} is not a run folder: it has no run.sqlite"):
        RunWriter.resume(tmp_path)


def test_synchronous_normal_runs_and_checkpoints(tmp_path):
    with make_run(tmp_path / "run", steps=3, synchronous="NORMAL") as writer:
        writer.checkpoint(2, 0, {"r": np.zeros(2)}, {})
    with RunReader(tmp_path / "run") as reader:
        assert reader.step_count() == 3 and reader.latest_checkpoint().step == 2
    with pytest.raises(RunStoreError, match="synchronous='OFF' is not allowed; use one of"):
        RunWriter.create(tmp_path / "other", CONFIG, synchronous="OFF")
    assert not (tmp_path / "other").exists()


def test_a_create_that_fails_half_way_leaves_the_folder_empty(tmp_path, monkeypatch):
    import hwlearn.runstore.writer as writer_module

    def no_identity():
        raise OSError("hostname lookup failed")

    monkeypatch.setattr(writer_module, "current_identity", no_identity)
    (tmp_path / "run").mkdir()
    with pytest.raises(RunStoreError, match="cannot create the run folder \\(hostname lookup failed\\)"):
        RunWriter.create(tmp_path / "run", CONFIG)
    assert list((tmp_path / "run").iterdir()) == []
    assert list(tmp_path.iterdir()) == [tmp_path / "run"]  # no staging folder left either
    monkeypatch.undo()
    RunWriter.create(tmp_path / "run", CONFIG).close()


def test_a_creator_killed_before_its_run_exists_leaves_a_reusable_folder(tmp_path):
    # The child dies (as by SIGKILL) at the last moment of creation, before the rename.
    code = (
        "import os, sys\n"
        "import hwlearn.runstore.writer as w\n"
        "w.os.rename = lambda *a: os._exit(9)\n"
        f"w.RunWriter.create({str(tmp_path / 'run')!r}, {{'name': 'x'}})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    assert not (tmp_path / "run").exists()
    assert [p.name.split(".creating-")[0] for p in tmp_path.iterdir()] == [".run"]  # its staging folder
    RunWriter.create(tmp_path / "run", CONFIG).close()  # the same --out works, and cleans up
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_folder_that_cannot_be_created_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(RunStoreError, match="cannot create the run folder"):
        RunWriter.create(tmp_path / "file" / "run", CONFIG)
