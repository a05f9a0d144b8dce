"""Training on the bench end to end: through the real drivers to the virtual bench.

The instruments are emulated on loopback (pyvisa-py over TCP, pyserial for the board), backed by
one simulated circuit; the emulators' states and command logs are the evidence.
"""

import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from hwlearn.config import load_experiment
from hwlearn.config.bench import load_bench_file
from hwlearn.experiment import build_experiment
from hwlearn.runstore import RunReader
from hwlearn.training.rig_substrate import RigSubstrate
from hwlearn.training.session import settings_from
from hwlearn.training.trainer import Trainer
from simulator.devices import CalibratedDevices
from simulator.rig import SimulatedRig
from tests.bench_helpers import EXAMPLE, served_bench_file, twin_bench
from tests.cli_helpers import ROOT, hwlearn, wait_for_status, wait_for_step


def _experiment(rule, **training):
    config = load_experiment(ROOT / f"examples/bench-teacher-{rule}.toml")
    config["training"].update(training)
    return config, build_experiment(config, network=load_bench_file(EXAMPLE).network)


def _train(substrate, config, exp):
    substrate.program(exp.initial_ohms[exp.learnable])
    trainer = Trainer(substrate, exp.task, exp.rule, settings_from(config), exp.rngs)
    start = trainer.evaluate()["train_loss"]
    return start, trainer.run().metrics["train_loss"]


@pytest.mark.parametrize("rule", ["omega", "ep", "coupled"])
def test_training_through_the_virtual_bench_equals_the_simulated_rig(rule):
    bench_config = load_bench_file(EXAMPLE)
    config, exp = _experiment(rule, epochs=6)
    with twin_bench(bench_config) as (vb, bench):
        start, final = _train(RigSubstrate(bench, exp.ports, exp.learnable, exp.rule, bounds=(100.0, 8900.0)),
                              config, exp)
        on_bench = bench.resistances()
    assert final < 0.1 * start, (start, final)
    calibrations = [bench_config.calibration[w.board][w.channel]
                    for w in sorted(bench_config.board_wiring, key=lambda w: w.edge)]
    config, exp = _experiment(rule, epochs=6)
    rig = SimulatedRig(bench_config.network, CalibratedDevices(calibrations, r_min=100.0, r_max=8900.0),
                       exp.rngs["device"], exp.initial_ohms)
    _train(RigSubstrate(rig, exp.ports, exp.learnable, exp.rule, bounds=(100.0, 8900.0)), config, exp)
    assert np.max(np.abs(rig.resistances() - on_bench) / on_bench) <= 1e-9


def test_dry_run_executes_the_plan_on_the_simulated_twin():
    out = hwlearn("run", "examples/bench-teacher-omega.toml", "--bench", EXAMPLE, "--dry-run").stdout
    assert "every command passed the limits" in out and "ended safe: True" in out
    assert "per training sample" in out


@pytest.fixture
def served_bench(tmp_path):
    """The example bench served in this process on free fixed ports, and its bench file."""
    with served_bench_file(tmp_path) as (vb, path):
        yield vb, path


def _run(path, experiment, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "hwlearn", "run", experiment, "--bench", path, "--out", out,
                             *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_completed_run_records_and_leaves_the_bench_safe(served_bench, tmp_path):
    vb, path = served_bench
    proc = _run(path, "examples/bench-teacher-omega.toml", tmp_path / "run", "--quiet")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "(done)" in stdout and "instrument round trips" in stdout
    assert all(vb.is_safe().values()), vb.is_safe()
    with RunReader(tmp_path / "run") as reader:
        losses = reader.scalars(["train_loss"])["train_loss"][1]
        assert reader.metadata()["bench"] == "virtual-4x4"
    assert losses[-1] < 0.1 * losses[0]


@pytest.mark.parametrize("signals, status", [([signal.SIGTERM], "stopped"), ([signal.SIGINT], "stopped"),
                                             ([signal.SIGINT, signal.SIGINT], "aborted")],
                         ids=["sigterm", "ctrl-c", "abort"])
def test_every_interruption_leaves_every_source_off_and_the_board_safe(served_bench, tmp_path, signals, status):
    vb, path = served_bench
    # Full batches measured sample by sample: a step lasts long enough (40 samples) for a second
    # signal to arrive inside it.
    experiment = tmp_path / "full-batch.toml"
    text = (ROOT / "examples/bench-teacher-omega.toml").read_text().replace("batch_size = 10", "batch_size = 40")
    experiment.write_text('plan = "per-sample"\n' + text)
    proc = _run(path, experiment, tmp_path / "run", "--quiet")
    wait_for_step(tmp_path / "run", 1, proc)
    proc.send_signal(signals[0])
    if len(signals) > 1:
        # Two signals sent before the first is handled would arrive as one: wait until the run
        # has recorded the first (its stop request), then send the second (the abort).
        wait_for_status(tmp_path / "run", "stopping", proc)
        proc.send_signal(signals[1])
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert all(vb.is_safe().values()), (vb.is_safe(), stderr)
    with RunReader(tmp_path / "run") as reader:
        assert reader.status().status == status, (reader.status().detail, stderr)


def test_a_limit_violation_fails_the_run_before_sending_and_leaves_the_bench_safe(served_bench, tmp_path):
    vb, path = served_bench
    experiment = tmp_path / "loud.toml"
    text = (ROOT / "examples/bench-teacher-omega.toml").read_text()
    experiment.write_text(text.replace("gamma = 0.4", "gamma = 4.0"))
    proc = _run(path, experiment, tmp_path / "run", "--quiet")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "exceeds max_volts = 2 V; nothing was sent" in stderr, stderr
    assert "Traceback" not in stderr
    assert all(vb.is_safe().values()), vb.is_safe()
    sent = [line for name in ("smu_in0", "smu_in1") for line in vb.emulators[name].lines()]
    levels = [float(v) for line in sent for v in re.findall(
        r":SOUR(?:CE)?:VOLT(?:AGE)?(?::LEV(?:EL)?)?(?::IMM(?:EDIATE)?)?\s+([-+0-9.E]+)", line.upper())]
    assert levels and max(abs(v) for v in levels) <= 2.0  # nothing beyond the 2 V limit ever went out
    with RunReader(tmp_path / "run") as reader:
        assert reader.status().status == "failed"


def test_a_rule_the_bench_cannot_run_is_refused_before_any_instrument_is_opened(served_bench, tmp_path):
    vb, path = served_bench
    text = path.read_text()
    no_clamp = tmp_path / "no-clamp.toml"
    # Without a current limit the output units cannot act as clamps.
    clamp_line = "compliance_amps = 0.002        # clamps: a voltage source that stops at 2 mA\n"
    no_clamp.write_text(text.replace(clamp_line, ""))
    proc = hwlearn("run", "examples/bench-teacher-coupled.toml", "--bench", no_clamp, "--out", tmp_path / "r",
                   check=False)
    assert proc.returncode == 2 and "needs voltage clamps across the output edges" in proc.stderr, proc.stderr
    assert not any(device.lines() for device in vb.emulators.values())


def test_hwlearn_run_accepts_the_clear_watchdog_its_refusal_names(served_bench, tmp_path):
    vb, path = served_bench
    vb.emulators["board"].auto_reset = False        # a board wired without DTR auto-reset keeps...
    vb.emulators["board"].tripped = True            # ...its trip: a previous host stopped feeding it
    refused = hwlearn("run", "examples/bench-teacher-omega.toml", "--bench", path, "--out",
                      tmp_path / "refused", "--quiet", check=False)
    assert refused.returncode == 2 and "hwlearn run: --clear-watchdog" in refused.stderr, refused.stderr
    done = hwlearn("run", "examples/bench-teacher-omega.toml", "--bench", path, "--out", tmp_path / "run",
                   "--quiet", "--clear-watchdog", check=False)
    assert done.returncode == 0, done.stderr
    assert not vb.emulators["board"].tripped and all(vb.is_safe().values())
