"""A link that drops in the middle of a bench run: never an update made from part of a step's
readings. When the link stays down the run ends safe and failed, naming the instrument, with the
board still holding the last recorded step's codes; when it comes back at once the run goes on
and ends where a fault-free run ends; when it comes back after the run failed, ``hwlearn run
--resume`` finishes it where the uninterrupted run ends.

The example bench is served on fixed loopback ports (a resume reaches the same instruments); a
link drops when its server stops (a pulled cable), mid-step, with some of the step's readings
taken (tests/exit_paths.py: MidStep)."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.bench import Bench
from hwlearn.app.sessions import bench_metadata, bench_substrate
from hwlearn.cli import main as hwlearn_main
from hwlearn.config.bench import load_bench_file
from hwlearn.experiment import build_experiment
from hwlearn.runstore import RunReader
from hwlearn.training.session import TrainingSession
from tests.bench_helpers import served_bench_file
from tests.exit_paths import TRIGGER_STEP, MidStep, drop_link, experiment_config, restore_link


def _config() -> dict:
    # Short (3 epochs of 4 steps), resistances recorded at every step (compared with the board).
    config = experiment_config(epochs=3, batch_size=10)
    config["record"]["array_every"] = 1
    return config


def _train(bench_file, run_dir, action=None) -> tuple[str, BaseException | None]:
    """A run of _config() on the bench of ``bench_file``, as ``hwlearn run`` makes it; ``action``
    is called mid-step (MidStep). Returns (the error that ended it, or None)."""
    bench_config = load_bench_file(bench_file)
    experiment = build_experiment(_config(), network=bench_config.network)
    with Bench.open(bench_config) as bench:
        views = (MidStep(bench, action),) if action else ()
        session = TrainingSession(experiment, bench_substrate(bench, experiment), run_dir,
                                  metadata=bench_metadata(bench_config, bench_file, bench), synchronous="FULL",
                                  views=views)
        try:
            session.run(signals=False)
        except Exception as exc:  # the ending under test; the run recorded it
            return exc
    return None


def _final(run_dir):
    with RunReader(run_dir) as reader:
        steps = [int(s) for s in reader.steps().step]
        resistances = reader.arrays("resistances")[1]
        status = reader.status()
        faults = [(e["data"]["kind"], e["data"]["instrument"]) for e in reader.events() if e["kind"] == "fault"]
        checkpoint = reader.latest_checkpoint()
    return steps, resistances, status, faults, checkpoint


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The fault-free run's steps and resistances (ideal devices: every run of it is the same)."""
    folder = tmp_path_factory.mktemp("reference")
    with served_bench_file(folder) as (vb, bench_file):
        assert _train(bench_file, folder / "run") is None
    steps, resistances, status, faults, _ = _final(folder / "run")
    assert status.status == "done" and not faults
    return steps, resistances


def _codes_when_the_safe_state_began(firmware) -> dict:
    """Wraps the emulated board: returns a dict that holds, from each SAFE request that finds the
    board away from its safe code, the codes it held then (at the end: what the run had
    programmed last)."""
    held = {}
    handle = firmware.handle

    def handle_and_note(line: str):
        words = line.split()
        if len(words) > 1 and words[1].split("*")[0] == "SAFE" and not firmware.is_safe():
            held.update(firmware.codes())
        return handle(line)
    firmware.handle = handle_and_note
    return held


@pytest.mark.parametrize("name", ["dmm", "smu_out1"])
def test_a_link_that_stays_down_ends_the_run_safe_with_the_board_at_the_last_recorded_step(tmp_path, name):
    with served_bench_file(tmp_path) as (vb, bench_file):
        held = _codes_when_the_safe_state_began(vb.emulators["board"])
        error = _train(bench_file, tmp_path / "run", lambda: drop_link(vb, name))
        safe = vb.is_safe()
        config = load_bench_file(bench_file)
    steps, resistances, status, faults, checkpoint = _final(tmp_path / "run")
    assert error is not None and status.status == "failed", (error, status)
    assert f"{name}:" in status.detail and "reconnecting failed" in status.detail, status.detail
    assert ("disconnect", name) in faults and ("reconnect", name) in faults, faults
    assert all(v for n, v in safe.items() if n != name), safe
    # The interrupted step left no trace: neither a record nor a code on the board.
    assert steps == list(range(TRIGGER_STEP)), steps
    assert held, "the board never received the safe state"
    for wire in config.board_wiring:
        ohms = config.calibration[wire.board][wire.channel].ohms_of(held[wire.channel])
        assert ohms == resistances[-1][wire.edge], (wire.edge_name, ohms, resistances[-1][wire.edge])
    assert checkpoint.step <= steps[-1]


def test_a_link_that_comes_back_at_once_is_verified_and_the_run_ends_as_the_fault_free_one(tmp_path, reference):
    with served_bench_file(tmp_path) as (vb, bench_file):
        error = _train(bench_file, tmp_path / "run", lambda: restore_link(vb, "dmm", drop_link(vb, "dmm")))
        assert all(vb.is_safe().values()), vb.is_safe()
    steps, resistances, status, faults, _ = _final(tmp_path / "run")
    assert error is None and status.status == "done", (error, status)
    assert ("disconnect", "dmm") in faults and ("reconnect", "dmm") in faults, faults
    assert steps == reference[0]
    np.testing.assert_array_equal(resistances, reference[1])  # every step, not only the last


def test_a_link_back_after_the_run_failed_lets_hwlearn_run_resume_finish_it(tmp_path, reference, capsys):
    run = tmp_path / "run"
    with served_bench_file(tmp_path) as (vb, bench_file):
        ports = {}
        error = _train(bench_file, run, lambda: ports.setdefault("dmm", drop_link(vb, "dmm")))
        assert error is not None and _final(run)[2].status == "failed"
        restore_link(vb, "dmm", ports["dmm"])
        code = hwlearn_main(["run", "--resume", str(run), "--bench", str(bench_file), "--quiet"])
        assert code == 0, capsys.readouterr().err
        assert all(vb.is_safe().values()), vb.is_safe()
    steps, resistances, status, _, _ = _final(run)
    assert status.status == "done"
    assert steps == reference[0]  # each step once: none lost, none recorded twice
    np.testing.assert_allclose(resistances[-1], reference[1][-1], rtol=1e-12, atol=0.0)
