"""The crossbar bench end to end: a virtual 8x8 crossbar of memristive devices on an emulated
707B switch matrix, trained through the real drivers over loopback; the emulators' logs are the
evidence (no relay switched hot, every relay open and every source off at the end, no pulse
after a safe state), the run store the record (every pulse, the relay operations per step)."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from drivers.bench import CrossbarBench, open_bench
from hwlearn.app.sessions import bench_experiment, bench_substrate
from hwlearn.cli import main
from hwlearn.config import load_experiment
from hwlearn.config.bench import load_bench_file, validate_bench
from hwlearn.config.schema import load_toml
from hwlearn.errors import ConfigError
from hwlearn.rig import RigError
from hwlearn.runstore import RunReader
from hwlearn.training.session import train_in_folder
from simulator.virtual_bench import VirtualBench
from tests.bench_helpers import bench_file_text
from tests.cli_helpers import ROOT, hwlearn

CROSSBAR = ROOT / "examples" / "virtual-crossbar.toml"
EXPERIMENT = ROOT / "examples" / "crossbar-teacher-omega.toml"


def crossbar_config(edit=None, folder: Path | None = None):
    """The example crossbar bench file, optionally with its text edited (written to ``folder``)."""
    if edit is None:
        return load_bench_file(CROSSBAR)
    path = Path(folder) / "crossbar.toml"
    path.write_text(edit(CROSSBAR.read_text()))
    return validate_bench(load_toml(path), str(path), path.parent)


@contextlib.contextmanager
def crossbar_twin(config=None, **virtual):
    config = config or crossbar_config()
    with VirtualBench(config, twin=True, **virtual) as vb:
        bench = open_bench(vb.bench_config())
        try:
            yield vb, bench
        finally:
            bench.close()


def _levels(vb) -> dict[str, float]:
    return {name: s.level for name, s in vb.circuit.settings.items() if s.output_on}


def test_training_a_virtual_8x8_crossbar_lowers_the_loss_and_never_switches_a_relay_hot(tmp_path):
    config = load_experiment(EXPERIMENT)
    config["training"]["epochs"] = 4
    run = tmp_path / "run"
    with VirtualBench(crossbar_config(), twin=True) as vb:
        bench_config = vb.bench_config()
        experiment = bench_experiment(config, str(EXPERIMENT), bench_config)
        with open_bench(bench_config) as bench:
            assert isinstance(bench, CrossbarBench)
            substrate = bench_substrate(bench, experiment)
            result, _ = train_in_folder(experiment, substrate, run)
            operations = bench.health()["matrix"]["relay_operations"]
        matrix = vb.emulators["matrix"]
        switches = matrix.switch_log
        safe = vb.is_safe()
    assert result.status == "done"
    # Relays switched only cold: the emulator logged every change with the sources then on.
    assert switches and all(not event.hot for event in switches), [e for e in switches if e.hot][:3]
    assert all(safe.values()) and not matrix.closed, safe
    with RunReader(run) as reader:
        scalars = reader.scalars()
        losses = scalars["train_loss"][1]
        steps, volts = reader.arrays("pulse_volts")
        _, before = reader.arrays("pulse_g_before_siemens")
        _, after = reader.arrays("pulse_g_after_siemens")
    assert losses[-1] < 0.5 * losses[0], losses
    # The relay operations of every step are recorded, and they are all the matrix made but the
    # closing safe state's openings.
    relay_steps = scalars["relay_operations"][1]
    assert relay_steps.sum() + 16 == operations, (relay_steps, operations)
    assert np.all(relay_steps[1:] == 32), relay_steps   # 8 rows on and off the bus, 2 relays each way
    # Every pulse is in the run: one row per device, amplitudes within the bench's limits.
    assert steps.tolist() == list(range(len(losses)))
    pulses = scalars["pulses"][1]
    assert np.array_equal(np.sum(np.isfinite(volts), axis=(1, 2)), pulses)
    amplitudes = np.abs(volts[np.isfinite(volts)])
    assert amplitudes.min() >= 1.05 - 1e-12 and amplitudes.max() <= 1.8 + 1e-12
    finite = np.isfinite(volts)
    assert np.all(np.isfinite(before[finite]) & np.isfinite(after[finite]))
    # hwlearn export carries them: one row per device, 2 x max_pulses columns per step.
    out = tmp_path / "run.npz"
    assert main(["export", str(run), "--format", "npz", "--out", str(out)]) == 0
    with np.load(out) as data:
        assert data["arrays/pulse_volts/value"].shape == (len(losses), 64, 60)
        assert int(np.isfinite(data["arrays/pulse_volts/value"]).sum()) == int(data["scalars/pulses/value"].sum())


def test_a_target_outside_the_device_window_is_refused_before_any_byte():
    with crossbar_twin() as (vb, bench):
        before = bench.round_trips.total
        edges = bench.capabilities.tunable[:2]
        with pytest.raises(RigError, match="outside the device window .* nothing was sent"):
            bench.program(edges, [10_000.0, 1_000.0])
        assert bench.round_trips.total == before


def test_a_training_drive_that_would_disturb_a_device_is_refused_before_any_byte():
    with crossbar_twin() as (vb, bench):
        bench.set_inputs(np.full(8, 0.4))
        before = {name: list(device.lines()) for name, device in vb.emulators.items()}
        with pytest.raises(RigError, match="disturb_volts"):
            bench.drive_outputs("clamp", np.full(8, -0.9))
        assert {name: list(device.lines()) for name, device in vb.emulators.items()} == before


def test_an_emergency_stop_while_programming_leaves_every_relay_open_and_no_pulse_after_it():
    with crossbar_twin() as (vb, bench):
        circuit = vb.circuit
        fifth = threading.Event()
        count = [0]
        pulse = circuit.pulse

        def counting(name, seconds):
            pulse(name, seconds)
            count[0] += 1
            if count[0] == 5:
                fifth.set()
        circuit.pulse = counting
        failure = []

        def write():
            try:
                bench.program(bench.capabilities.tunable, np.full(64, 7000.0))
            except RigError as exc:
                failure.append(exc)
        worker = threading.Thread(target=write)
        worker.start()
        assert fifth.wait(60)
        report = bench.safe_state()
        seen = circuit.devices.pulses_seen
        state = circuit.devices.g.copy()
        worker.join(60)
        assert not worker.is_alive()
        assert report.ok, report.describe()
        assert failure and "safe_state() was called meanwhile" in str(failure[0])
        assert all(vb.is_safe().values()) and not vb.emulators["matrix"].closed
        assert circuit.devices.pulses_seen == seen and np.array_equal(circuit.devices.g, state)
        assert all(not event.hot for event in vb.emulators["matrix"].switch_log)


def test_a_relay_that_does_not_close_fails_the_write_and_the_bench_ends_safe():
    with crossbar_twin() as (vb, bench):
        relays = vb.emulators["matrix"].relays
        change = relays.change

        def welded_open(verb, channels):   # 1H01 (in0 onto the programming bus) never closes
            change(verb, [c for c in channels if not (verb == "close" and c == "1H01")])
        relays.change = welded_open
        with pytest.raises(RigError, match="1H01"):
            bench.program(bench.capabilities.tunable[:1], [9000.0])
        assert bench.safe_state().ok
        assert all(vb.is_safe().values())


def test_write_and_verify_through_the_matrix_reaches_the_targets_despite_sneak_paths():
    with crossbar_twin() as (vb, bench):
        edges = bench.capabilities.tunable[[0, 9, 18, 27, 36]]
        names = [bench.network.edge_names[e] for e in edges]
        stuck = [n for n, d in vb.circuit.parameters().items() if d.stuck]
        targets = np.array([7000.0, 12000.0, 20000.0, 28000.0, 9000.0])
        achieved = bench.program(edges, targets)
        true = vb.circuit.conductances()
        for name, target, got in zip(names, targets, achieved):
            if name in stuck:
                continue
            tolerance = bench.crossbar.limits.tolerance_siemens
            assert abs(1 / got - 1 / target) <= tolerance * 1.0001, (name, got, target)
            # what the bench read is the device (line resistance aside: 1 ohm segments)
            assert abs(true[name] - 1 / got) <= 0.02 * true[name], (name, true[name], 1 / got)


def test_characterising_the_virtual_crossbar_recovers_its_device_model_within_ten_percent(tmp_path):
    # Ideal lines, so that the pulse the bench applies is the one asked for (line resistance
    # lowers it by the IR drop, docs/crossbar.md); a different device draw from the example's.
    config = crossbar_config(lambda text: text.replace("wire_ohms = 1.0", "wire_ohms = 0.0")
                             .replace("seed = 7", "seed = 11"), tmp_path)
    with VirtualBench(config, twin=True) as vb:
        path = tmp_path / "twin.toml"
        path.write_text(bench_file_text(config, vb.resources, Path(config.source)))
        out = tmp_path / "characterised"
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            assert main(["bench", "characterise", str(path), "--count", "8", "--volts", "1.5", "--pulses", "60",
                         "--out", str(out)]) == 0
        truth = vb.circuit.parameters()
        assert all(vb.is_safe().values())
    calibration = json.loads((out / "calibration.json").read_text())
    assert (out / "characterisation.png").stat().st_size > 10_000
    assert "population: 8 devices" in printed.getvalue()
    devices = calibration["devices"]
    assert {n for n, f in devices.items() if "stuck" in f} == {n for n in devices if truth[n].stuck}
    good = [n for n, f in devices.items() if "stuck" not in f]
    assert len(good) >= 6
    for name in good:   # every device's window
        for key in ("g_min", "g_max"):
            assert abs(devices[name][key] / getattr(truth[name], key) - 1) < 0.05, (name, key)
    population = calibration["population"]
    for key in ("g_min", "g_max", "pulses", "nu_set", "nu_reset", "c2c"):
        true = float(np.median([getattr(truth[n], key) for n in good]))
        assert abs(population[key] / true - 1) < 0.10, (key, population[key], true)
    # The twin of a bench with this calibration emulates the fitted devices.
    text = path.read_text().replace("g_max = 1.5e-4", f"g_max = 1.5e-4\ncalibration = \"{out / 'calibration.json'}\"")
    calibrated = tmp_path / "calibrated.toml"
    calibrated.write_text(text)
    fitted = load_bench_file(calibrated)
    twin = VirtualBench(fitted, twin=True)
    name = good[0]
    assert twin.circuit.parameters()[name].g_max == pytest.approx(devices[name]["g_max"])
    low, high = fitted.crossbar.window(name)
    assert high <= devices[name]["g_max"]


def test_a_bench_file_whose_half_selected_devices_would_switch_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="half the largest pulse, 0.95 V, which must stay below"):
        crossbar_config(lambda text: text.replace("set_volts = [1.05, 1.8]", "set_volts = [1.05, 1.9]"), tmp_path)


@pytest.mark.parametrize("edit, words", [
    (lambda t: t.replace('in3 = { sense = 104, unit = "1D04", prog = "1H04" }',
                         'in3 = { sense = 104, unit = "1D05", prog = "1H04" }'), "must share its column"),
    (lambda t: t.replace('in3 = { sense = 104, unit = "1D04", prog = "1H04" }',
                         'in3 = { sense = 104, unit = "1C04", prog = "1H04" }'), "a matrix row is one bus"),
    (lambda t: t.replace('in3 = { sense = 104, unit = "1D04", prog = "1H04" }',
                         'in3 = { sense = 104, prog = "1H04" }'), "name the matrix channel"),
    (lambda t: t.replace('in3 = { sense = 104, unit = "1D04", prog = "1H04" }',
                         'in3 = { sense = 104, unit = "1D04", prog = "1H12" }'), "forbidden"),
    (lambda t: t.replace('in3 = { sense = 104, unit = "1D04", prog = "1H04" }',
                         'in3 = { sense = 104, unit = "1D04", prog = "1I04" }'), "slot-row-column"),
    (lambda t: t.replace('programmer = "prog"', 'programmer = "smu_out0"'), "wired as a port unit"),
])
def test_wiring_errors_name_the_line_and_the_channel(tmp_path, edit, words):
    with pytest.raises(ConfigError, match=words):
        crossbar_config(edit, tmp_path)


def test_readable_and_tunable_crosspoints_follow_from_the_wiring(tmp_path):
    config = crossbar_config()
    assert len(config.crossbar.tunable) == 64 and len(config.crossbar.readable) == 64
    # A row without its programming channel: its crosspoints cannot be written; one not sensed: not read.
    config = crossbar_config(lambda t: t.replace('in3 = { sense = 104, unit = "1D04", prog = "1H04" }',
                                                 'in3 = { unit = "1D04" }'), tmp_path)
    names = config.network.edge_names
    assert {names[e] for e in set(range(config.network.n_edges)) - set(config.crossbar.tunable)
            if names[e].startswith("Rx0_3_")} == {f"Rx0_3_{j}" for j in range(8)}
    assert not any(names[e].startswith("Rx0_3_") for e in config.crossbar.readable)


def test_bench_check_and_a_dry_run_pass_on_the_crossbar(tmp_path):
    config = crossbar_config()
    with VirtualBench(config, twin=True) as vb:
        path = tmp_path / "twin.toml"
        path.write_text(bench_file_text(config, vb.resources, CROSSBAR))
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            assert main(["bench", "check", str(path)]) == 0
        assert all(vb.is_safe().values())
    out = printed.getvalue()
    assert "result: PASS" in out and "72 channels read finite values" in out
    assert "16 lines, 16 sensed; 64 crosspoints readable, 64 tunable; matrix routing 'measure' with 16 relays" in out
    dry = hwlearn("run", EXPERIMENT, "--bench", CROSSBAR, "--dry-run").stdout
    assert "every command passed the limits" in dry and "ended safe: True" in dry


def test_the_instruments_panel_shows_the_matrix_and_the_programmer_with_their_counters(qtbot):
    from gui.runstate import RunState
    from gui.widgets.instruments import InstrumentsPanel
    from hwlearn.documents import RunEvent, RunStart

    with crossbar_twin() as (vb, bench):
        bench.program(bench.capabilities.tunable[:2], [9000.0, 9000.0])
        rig, health = bench.describe(), bench.health()
    state = RunState()
    state.apply(RunStart({}, rig, {}))
    state.apply(RunEvent("instruments", "instrument status", "debug", health, 1))
    panel = InstrumentsPanel()
    qtbot.addWidget(panel)
    panel.redraw(state)
    table = panel.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    rows = {table.item(r, 0).text(): r for r in range(table.rowCount())}
    assert {"matrix", "prog"} <= set(rows) and {"relay_operations", "pulses", "routing"} <= set(headers)
    assert table.item(rows["matrix"], headers.index("relay_operations")).text() == str(
        health["matrix"]["relay_operations"])
    assert int(table.item(rows["prog"], headers.index("pulses")).text()) > 0


def test_a_resumed_session_writes_the_snapshot_back_and_only_reads_a_stuck_device():
    with VirtualBench(crossbar_config(), twin=True) as vb:
        config = vb.bench_config()
        stuck = [n for n, d in vb.circuit.parameters().items() if d.stuck]
        with open_bench(config) as bench:
            rows = bench.capabilities.tunable[:16]            # rows 0 and 1
            assert "Rx0_1_7" in stuck                         # this example's stuck device is among them
            bench.program(rows, np.full(16, 9000.0))
            snapshot = bench.snapshot()
        with open_bench(config) as bench:                     # another session moves row 0
            bench.program(rows[:8], np.full(8, 15000.0))
        with open_bench(config) as bench:
            bench.restore(snapshot)
            back = bench.resistances()[rows]
        true = vb.circuit.conductances()
    names = [config.network.edge_names[e] for e in rows]
    for name, ohms, wanted in zip(names, back, snapshot["known_ohms"][rows]):
        assert abs(1 / ohms - 1 / wanted) <= config.crossbar.limits.tolerance_siemens, (name, ohms, wanted)
        assert abs(true[name] * ohms - 1) < 0.02, name
