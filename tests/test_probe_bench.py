"""The probe plan on the virtual bench: the real drivers over loopback to emulated instruments.

Pinned here: full-batch training with probes ends at the per-sample plan's resistances for
Omega, two-phase EP and Coupled Learning, in far fewer exchanges; a voltage-dependent device
trips the linearity check, which pauses the run with the residual recorded and nothing
programmed from the step; a headless run refuses a pause nobody could lift; the run folder, the
dry run and `hwlearn show` say which plan measured the run.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from hwlearn.app.sessions import bench_substrate, probe_settings
from hwlearn.cli.show import show_document
from hwlearn.config import load_experiment
from hwlearn.config.bench import load_bench_file
from hwlearn.experiment import build_experiment
from hwlearn.runstore import RunReader
from hwlearn.training.session import TrainingSession, settings_from
from hwlearn.training.trainer import Trainer
from simulator.nonlinear import VoltageDependentEdges
from tests.bench_helpers import EXAMPLE, board_lines, twin_bench
from tests.cli_helpers import ROOT, hwlearn

BENCH = load_bench_file(EXAMPLE)


def _experiment(rule, **changes):
    config = load_experiment(ROOT / f"examples/bench-teacher-{rule}.toml")
    for section, values in changes.items():
        if isinstance(values, dict):
            config[section].update(values)
        else:
            config[section] = values
    return config, build_experiment(config, "exp.toml", network=BENCH.network)


@pytest.mark.parametrize("rule", ["omega", "ep", "coupled"])
def test_full_batch_training_by_probes_ends_at_the_per_sample_plans_resistances(rule):
    ends, trips = {}, {}
    for plan in ("per-sample", "probe"):
        config, exp = _experiment(rule, plan=plan, training={"batch_size": 40, "epochs": 3})
        with twin_bench(BENCH) as (vb, bench):
            substrate = bench_substrate(bench, exp)
            assert substrate.probe.plan == plan
            substrate.start()
            start = bench.resistances()
            Trainer(substrate, exp.task, exp.rule, settings_from(config), exp.rngs).run()
            ends[plan], trips[plan] = bench.resistances(), bench.round_trips.total
    assert np.max(np.abs(np.log(ends["probe"] / start))) > 0.05, "the run must move the resistances"
    np.testing.assert_allclose(ends["probe"], ends["per-sample"], rtol=1e-9, atol=0)
    assert trips["probe"] < trips["per-sample"] / 5, trips


def _wait(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.02)


def test_a_nonlinear_device_pauses_the_run_with_the_residual_and_nothing_programmed_from_the_step(tmp_path):
    # Three samples: the evaluations measure them one by one, so the first probe is the first step's.
    config, exp = _experiment("omega", plan="probe", probe={"on_nonlinear": "pause"},
                              task={"train_samples": 3, "test_samples": 3}, training={"batch_size": 3})
    memristors = VoltageDependentEdges(tuple(w.edge for w in BENCH.board_wiring), knee_volts=2.0)
    with twin_bench(BENCH, nonlinearity=memristors) as (vb, bench):
        session = TrainingSession(exp, bench_substrate(bench, exp), tmp_path / "run")
        session.start()
        try:
            def recorded(status):
                with RunReader(tmp_path / "run") as reader:
                    return reader.status().recorded == status
            _wait(lambda: session.engine.state == "paused" and recorded("paused"), "the linearity pause")
            board = vb.emulators["board"]
            writes = [line for line in board_lines(board) if " SET " in line]
            assert len(writes) == 1, "only the initial resistances were written: " + "; ".join(writes)
            with RunReader(tmp_path / "run") as reader:
                status = reader.status()
                errors = [e for e in reader.events() if e["kind"] == "linearity" and e["level"] == "error"]
                steps = reader.step_count()
            assert "linearity check failed at step 1" in status.detail and "residual" in status.detail
            assert len(errors) == 1 and errors[0]["step"] == 1
            data = errors[0]["data"]
            assert not data["passed"] and data["max_ratio"] > 1.0
            assert len(data["residual_volts_all"]) == len(data["edges"]) == len(data["bound_volts_all"])
            assert steps == 1, "only step 0 (the initial evaluation) is recorded"
            session.engine.stop()  # during the pause: the step is given up
            result = session.engine.join(30)
        finally:
            session.engine.abort()
            session.engine.join(30)
        assert result.status == "stopped" and result.position.step == 0
        assert [line for line in board_lines(board) if " SET " in line] == writes
        assert all(vb.is_safe().values()), vb.is_safe()
    with RunReader(tmp_path / "run") as reader:
        assert reader.status().status == "stopped"
        assert reader.latest_checkpoint(load_arrays=False).step == 0


def test_a_headless_run_refuses_a_pause_nobody_could_lift(tmp_path):
    experiment = tmp_path / "pause.toml"
    experiment.write_text((ROOT / "examples/bench-teacher-omega.toml").read_text()
                          + '\n[probe]\non_nonlinear = "pause"\n')
    out = hwlearn("run", experiment, "--bench", EXAMPLE, "--dry-run", check=False)
    assert out.returncode != 0
    assert "probe.on_nonlinear = 'pause'" in out.stderr and "headless" in out.stderr


def test_the_dry_run_and_the_run_folder_say_which_plan_measured_the_run(tmp_path):
    out = hwlearn("run", "examples/bench-teacher-coupled.toml", "--bench", EXAMPLE, "--dry-run").stdout
    assert "plan probe: plan = 'auto'" in out and "linearity check on the twin" in out and "passed" in out
    config, exp = _experiment("omega", training={"epochs": 1})
    with twin_bench(BENCH) as (vb, bench):
        settings = probe_settings(exp, BENCH)
        TrainingSession(exp, bench_substrate(bench, exp, settings), tmp_path / "run").run(signals=False)
    doc = show_document(str(tmp_path / "run"))
    assert doc["measurement"]["plan"] == "probe" and "auto" in doc["measurement"]["why"]
    assert "linearity_ratio" in doc["scalar_names"]
    text = hwlearn("show", tmp_path / "run").stdout
    assert any(line.startswith("plan") and "probe" in line for line in text.splitlines())


def test_the_iris_bench_serves_a_9_by_3_crossbar_that_the_probe_plan_measures():
    bench_config = load_bench_file(ROOT / "examples/virtual-bench-iris.toml")
    config = load_experiment(ROOT / "examples/bench-iris-omega.toml")
    config["plan"] = "probe"
    exp = build_experiment(config, "bench-iris-omega.toml", network=bench_config.network)
    assert (exp.ports.n_inputs, exp.ports.n_outputs, exp.learnable.size) == (9, 3, 27)
    x, y = exp.task.train.x[:, :12], exp.task.train.y[:, :12]
    with twin_bench(bench_config) as (vb, bench):
        substrate = bench_substrate(bench, exp)
        substrate.start()
        gradient, outputs = substrate.gradient(exp.rule, x, y)
        scans = substrate.engine.counts["measure"]
        per_sample, measured = exp.rule.rig_gradient(substrate.run, exp.ports, exp.learnable, x, y,
                                                     substrate.resistances())
    assert scans == 9 + 3 + 1
    # the per-sample plan applies levels rounded to the SMUs' 7 digits; the probes are exact levels
    assert np.max(np.abs(gradient - per_sample)) < 1e-5 * np.max(np.abs(per_sample))
    np.testing.assert_allclose(outputs, measured, rtol=1e-5, atol=1e-8)
    assert all(vb.is_safe().values())
