"""The bench when instruments misbehave: frozen, late, disconnected, restarted, left in another
command set, in hardware shutdown, or driven toward a board's ratings. Through the real drivers
to the virtual bench; the emulators' states and the bench's fault reports are the evidence."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from drivers.bench import Bench, BenchError
from hwlearn.rig import RigError
from simulator.emulators import TcpLineServer
from simulator.virtual_bench import VirtualBench
from tests.bench_helpers import board_lines, example_config, twin_bench


def freeze(device) -> None:
    """The instrument hears every line but never answers again (hung firmware, a stopped
    process): its TCP connection stays up."""
    device.handle = lambda line: None


@pytest.fixture
def recorded():
    """(faults seen by the hook, the hook)."""
    seen: list[tuple[str, str, str]] = []
    return seen, lambda kind, instrument, detail: seen.append((kind, instrument, detail))


# ------------------------------------------------------------------------------ safe state
def test_a_frozen_instrument_never_stops_the_others_and_is_named_in_the_report(recorded):
    seen, hook = recorded
    config = example_config(smu_out2={"timeout_s": 0.5, "retries": 1})
    with VirtualBench(config, twin=True) as vb:
        bench = Bench.open(vb.bench_config(), on_fault=hook)
        bench.program(bench.capabilities.learnable, np.full(16, 3000.0))
        bench.set_inputs([0.5, -0.4])
        bench.drive_outputs("current", [1e-4, 1e-4, 1e-4])
        bench.measure(bench.capabilities.readable)
        freeze(vb.emulators["smu_out2"])
        report = bench.safe_state()                          # never raises
        assert not report.ok and [o.instrument for o in report.failures] == ["smu_out2"]
        assert report.describe().startswith("smu_out2: ") and "does not respond" in report.describe()
        assert bench.last_safe_state is report
        assert bench.safe_state_failures == [f"smu_out2: {report.failures[0].detail}"]
        safe = vb.is_safe()
        assert not safe.pop("smu_out2") and all(safe.values()), safe
        assert ("safe_state_failed", "smu_out2") in [(k, i) for k, i, _ in seen]
        print(f"\ntime to safe state with smu_out2 frozen: {report.seconds:.2f} s; "
              + "; ".join(o.describe() for o in report.outcomes))
        bench.close()


def test_safe_state_from_another_thread_while_a_unit_is_frozen_mid_measurement():
    import threading

    config = example_config(smu_in1={"timeout_s": 0.5, "retries": 0})
    with twin_bench(config) as (vb, bench):
        bench.set_inputs([0.5, 0.5])
        bench.drive_outputs("current", [1e-4, 1e-4, 1e-4])
        bench.measure(bench.capabilities.readable)
        freeze(vb.emulators["smu_in1"])
        bench.set_inputs([0.3, 0.2])
        outcome = {}

        def run():
            try:
                outcome["volts"] = bench.measure(bench.capabilities.readable)
            except RigError as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=run)
        worker.start()
        report = bench.safe_state()                           # the E-stop
        worker.join(timeout=60)
        assert "error" in outcome
        assert {o.instrument for o in report.failures} <= {"smu_in1"}
        safe = vb.is_safe()
        assert all(v for name, v in safe.items() if name != "smu_in1"), safe


# ------------------------------------------------------------------------------ late replies
def delay_first(device, marker: str, seconds: float) -> None:
    """The first line containing ``marker`` takes ``seconds`` to answer (a long integration);
    the instrument handles the lines after it only then, as a real one does."""
    original = device.receive
    state = {"done": False}

    def receive(line):
        if not state["done"] and marker in line:
            state["done"] = True
            time.sleep(seconds)
        return original(line)

    device.receive = receive


def test_a_late_reply_is_recovered_reported_and_never_shifts_later_readings(recorded):
    seen, hook = recorded
    config = example_config(smu_in0={"timeout_s": 0.3, "retries": 1})
    with VirtualBench(config, twin=True) as vb:
        with Bench.open(vb.bench_config(), on_fault=hook) as bench:
            bench.set_inputs([0.5, 0.25])
            bench.drive_outputs("open")
            reference = bench.measure(bench.capabilities.readable)
            delay_first(vb.emulators["smu_in0"], "READ?", 0.8)
            bench.set_inputs([0.6, 0.25])
            # The joined line is never resent as it was: the call starts over once the link is
            # re-synchronised (the unit from a switch-off), so its late reply is never taken.
            late = bench.measure(bench.capabilities.readable)
            bench.set_inputs([0.5, 0.25])
            again = bench.measure(bench.capabilities.readable)
            np.testing.assert_allclose(again, reference, atol=2e-9)
            bench.set_inputs([0.6, 0.25])
            np.testing.assert_allclose(late, bench.measure(bench.capabilities.readable), atol=2e-9)
            kinds = [kind for kind, instrument, _ in seen if instrument == "smu_in0"]
            assert "timeout" in kinds and "stale_reply" in kinds, seen
            assert bench.faults.count("stale_reply", "smu_in0") >= 1


# ------------------------------------------------------------------------------ lost links
def test_a_lost_link_is_opened_again_verified_and_the_call_completes(recorded):
    seen, hook = recorded
    with VirtualBench(example_config(), twin=True) as vb:
        with Bench.open(vb.bench_config(), on_fault=hook) as bench:
            bench.set_inputs([0.4, 0.1])
            bench.drive_outputs("current", [1e-4, -1e-4, 5e-5])
            bench.measure(bench.capabilities.readable)
            old = vb.servers["smu_out1"]
            port = old.port
            old.stop()                                        # the cable is pulled...
            vb.servers["smu_out1"] = TcpLineServer(vb.emulators["smu_out1"], port).start()  # ...and back
            bench.drive_outputs("current", [1e-4, -2e-4, 5e-5])  # the next change needs smu_out1
            bench.measure(bench.capabilities.readable)
            assert vb.emulators["smu_out1"].level["CURR"] == -2e-4 and vb.emulators["smu_out1"].output
            kinds = [(kind, instrument) for kind, instrument, _ in seen]
            assert ("disconnect", "smu_out1") in kinds and ("reconnect", "smu_out1") in kinds, seen
        assert all(vb.is_safe().values())


def test_a_link_that_stays_lost_fails_the_call_and_the_rest_goes_safe(recorded):
    seen, hook = recorded
    with VirtualBench(example_config(), twin=True) as vb:
        bench = Bench.open(vb.bench_config(), on_fault=hook)
        bench.set_inputs([0.4, 0.1])
        bench.measure(bench.capabilities.readable)
        vb.servers.pop("smu_out1").stop()
        bench.drive_outputs("current", [1e-4, -2e-4, 5e-5])
        with pytest.raises(RigError, match="smu_out1.*reconnecting failed"):
            bench.measure(bench.capabilities.readable)
        report = bench.safe_state()
        assert [o.instrument for o in report.failures] == ["smu_out1"]
        assert ("reconnect", "smu_out1") in [(k, i) for k, i, _ in seen]
        bench.close()
        safe = vb.is_safe()
        assert all(v for name, v in safe.items() if name != "smu_out1"), safe


# ------------------------------------------------------------------------------ the board
def test_a_board_that_restarts_mid_run_is_verified_and_its_codes_restored(recorded):
    seen, hook = recorded
    with VirtualBench(example_config(), twin=True) as vb:
        with Bench.open(vb.bench_config(), on_fault=hook) as bench:
            learnable = bench.capabilities.learnable
            held = bench.program(learnable, np.linspace(500.0, 8000.0, learnable.size))
            before = vb.emulators["board"].codes()
            vb.emulators["board"].reboot("WDT")                # hung firmware, MCU watchdog
            assert set(vb.emulators["board"].codes().values()) == {256}
            again = bench.program(learnable[:1], [held[0] * 1.2])
            after = vb.emulators["board"].codes()
            assert {ch: c for ch, c in after.items() if ch != 0} == \
                   {ch: c for ch, c in before.items() if ch != 0}   # every other code restored
            np.testing.assert_array_equal(bench.resistances()[learnable[:1]], again)
            assert ("reboot", "board") in [(k, i) for k, i, _ in seen]
            assert "WDT" in next(d for k, i, d in seen if k == "reboot")


def test_a_board_in_hardware_shutdown_fails_the_safe_state_check_and_is_refused_at_open():
    with twin_bench() as (vb, bench):
        vb.emulators["board"].shutdown = True
        problems = bench.verify_safe()
        assert any("board" in p and "SHDN is asserted" in p for p in problems), problems
        report = bench.safe_state()
        assert [o.instrument for o in report.failures] == ["board"]
        assert "hardware shutdown" in report.failures[0].detail
        vb.emulators["board"].shutdown = False
    with VirtualBench(example_config(), twin=True) as vb:
        vb.emulators["board"].shutdown = True
        with pytest.raises(BenchError, match="SHDN is asserted.*release the board's SHDN line"):
            Bench.open(vb.bench_config())


def test_opening_a_board_that_restarts_with_its_port_waits_for_it_and_acknowledges():
    config = example_config()
    with VirtualBench(config) as vb:   # fixed ports: the board on socket://, restarting on connect
        firmware = vb.emulators["board"]
        with Bench.open(vb.bench_config()) as bench:
            assert firmware.reset_cause == "EXT" and not firmware.booted
            bench.program(bench.capabilities.learnable[:2], [2000.0, 3000.0])
        assert firmware.dropped == []          # nothing was sent while its bootloader ran
        assert board_lines(firmware)[0].startswith("1 *IDN?*")


# ------------------------------------------------------------------------------ the 2450
def test_a_2450_left_in_tsp_is_refused_at_open_before_any_command_is_sent():
    with VirtualBench(example_config(), twin=True) as vb:
        vb.emulators["smu_in0"].language = "TSP"
        with pytest.raises(BenchError, match=r"smu_in0 .*'TSP'.*:OUTP OFF.*\*LANG SCPI.*power-cycle"):
            Bench.open(vb.bench_config())
        assert vb.emulators["smu_in0"].lines() == ["*IDN?", "*LANG?"]  # its safe state not tried


# ------------------------------------------------------------------------------ ratings
def test_a_drive_that_would_overload_a_board_channel_is_refused_before_any_byte():
    with twin_bench() as (vb, bench):
        low, _ = bench.ohms_range()
        tunable = bench.capabilities.tunable
        bench.program(tunable, low[tunable])                  # every channel near 75 ohm
        before = {name: dev.lines() for name, dev in vb.emulators.items() if name != "board"}
        with pytest.raises(RigError, match=r"would put .* mA through .*max_terminal_amps = 2.5 mA; "
                                           r"nothing was sent"):
            bench.set_inputs([2.0, -2.0])
        assert {name: dev.lines() for name, dev in vb.emulators.items() if name != "board"} == before
        bench.set_inputs([0.01, 0.0])                          # a small drive is fine
        bench.measure(bench.capabilities.readable)


def test_a_scan_that_measures_a_board_channel_beyond_its_rating_returns_nothing():
    with twin_bench(example_config(board={"max_terminal_volts": 1.0})) as (vb, bench):
        bench.set_inputs([0.1, 0.0])
        bench.measure(bench.capabilities.readable)
        vb.circuit.fault_channels[101] = 1.5                   # Rh0_0, board channel 0
        with pytest.raises(RigError, match=r"the scan measures 1.5 V across Rh0_0 \(board channel 0\)"
                                           r".*max_terminal_volts = 1 V; no value"):
            bench.measure(bench.capabilities.readable)


# ------------------------------------------------------------------------------ VISA library
def test_the_visa_library_is_chosen_by_name_and_a_missing_one_is_a_clear_error():
    with VirtualBench(example_config(), twin=True) as vb:
        with pytest.raises(BenchError, match=r"cannot load the VISA library '@ivi'"):
            Bench.open(vb.bench_config(), visa_library="ni-visa")
        assert not any(dev.lines() for dev in vb.emulators.values() if not hasattr(dev, "firmware"))
        with Bench.open(vb.bench_config(), visa_library="pyvisa-py") as bench:
            assert math.isfinite(bench.measure(bench.capabilities.readable)[0])


def test_a_watchdog_trip_mid_run_is_seen_by_the_heartbeat_and_recovered_before_a_measurement(recorded):
    seen, hook = recorded
    with VirtualBench(example_config(), twin=True) as vb:
        with Bench.open(vb.bench_config(), on_fault=hook) as bench:
            learnable = bench.capabilities.learnable
            bench.program(learnable, np.linspace(500.0, 8000.0, learnable.size))
            bench.set_inputs([0.3, 0.2])
            reference = bench.measure(bench.capabilities.readable)
            firmware = vb.emulators["board"]
            with firmware.lock:                      # the host was silent past the timeout:
                firmware.tick(firmware.clock() + 60)  # the watchdog fires
            assert firmware.tripped and firmware.is_safe()
            tripped_at = time.monotonic()
            deadline = tripped_at + 30
            while not any(r.time > tripped_at and " HB*" in r.line for r in firmware.received):
                assert time.monotonic() < deadline, "no heartbeat after the trip"
                time.sleep(0.01)
            volts = bench.measure(bench.capabilities.readable)   # recovered first
            np.testing.assert_allclose(volts, reference, atol=2e-9)
            assert not firmware.tripped
            assert ("watchdog_tripped", "board") in [(k, i) for k, i, _ in seen]
