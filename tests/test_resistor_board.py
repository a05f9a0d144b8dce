"""The resistor board driver against the emulated board on a pseudo-terminal: the watchdog as
the host sees it, the heartbeat thread, and the lock that keeps the heartbeat from interleaving
with a run's requests. The board's clock is a fake one the test advances, so nothing here waits
for wall time to pass; where the emulator's loop must notice a change, the test polls with a
generous deadline."""

import time

import pytest

from drivers.instruments.errors import LimitError, ProtocolError, WatchdogTripped
from drivers.instruments.resistor_board import ResistorBoard
from drivers.instruments.transport import SerialTransport
from simulator.emulators import ResistorBoardEmulator
from tests.fake_backend import FakeBackend

TIMEOUT_S = 10.0


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def wait_until(condition, what, deadline_s=20.0):
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.005)


@pytest.fixture
def rig():
    backend, clock = FakeBackend(), FakeClock()
    emulator = ResistorBoardEmulator(backend, watchdog_s=2.0, clock=clock).start()
    transport = SerialTransport(emulator.path, "board", timeout_s=TIMEOUT_S)
    board = ResistorBoard(transport)
    board.connect()
    board.acknowledge_boot()  # the fresh board holds the safe code: it may take codes now
    yield board, emulator.firmware, clock
    board.close()
    transport.close()
    emulator.stop()


def test_watchdog_trip_is_seen_by_the_host_and_set_is_refused_until_cleared(rig):
    board, firmware, clock = rig
    board.write_codes({0: 10, 1: 20})
    clock.now += 2.5  # no request for longer than the 2 s timeout
    wait_until(lambda: firmware.tripped, "the watchdog to trip")
    assert firmware.is_safe()
    status = board.status()
    assert status.tripped and not status.armed
    with pytest.raises(WatchdogTripped):
        board.write_codes({0: 10})
    board.clear_watchdog()
    board.write_codes({0: 10})
    assert board.read_codes([0]) == {0: 10}


def test_explicit_heartbeats_keep_the_codes(rig):
    board, firmware, clock = rig
    board.write_codes({3: 99})
    for _ in range(5):
        clock.now += 1.5
        board.heartbeat()
    assert not board.status().tripped
    assert board.read_codes([3]) == {3: 99}


def test_heartbeat_thread_beats_until_stopped(rig):
    board, firmware, clock = rig
    board.start_heartbeat(period_s=0.01)
    wait_until(lambda: sum(" HB*" in line for line in firmware.lines()) >= 3, "three heartbeats")
    board.stop_heartbeat()
    beats = [line for line in firmware.lines() if " HB*" in line]
    board.identify()  # any line still in flight has arrived once this answer is back
    assert [line for line in firmware.lines() if " HB*" in line] == beats


def test_heartbeat_thread_never_interleaves_with_requests(rig):
    board, firmware, clock = rig
    board.start_heartbeat(period_s=0.001)
    try:
        for k in range(30):
            board.write_codes({k % 8: k})
            assert board.read_codes([k % 8]) == {k % 8: k}
    finally:
        board.stop_heartbeat()
    assert not any(" ERR " in (r.reply or "") for r in firmware.received)


def test_heartbeat_period_must_be_shorter_than_the_watchdog(rig):
    board, _, _ = rig
    with pytest.raises(LimitError, match="2 s"):
        board.start_heartbeat(period_s=3.0)


def test_a_board_speaking_another_protocol_major_version_is_refused():
    backend = FakeBackend()
    with ResistorBoardEmulator(backend) as emulator:
        emulator.firmware.identity = "HWLEARN,RB8-MCP4251,RB0009,3.1.0,3.1"
        with SerialTransport(emulator.path, "board", timeout_s=TIMEOUT_S) as transport:
            with pytest.raises(ProtocolError, match="protocol 3.1"):
                ResistorBoard(transport).connect()


def test_close_stops_the_heartbeat_thread(rig):
    board, _, _ = rig
    board.start_heartbeat(period_s=0.01)
    thread = board._heartbeat
    board.close()
    assert not thread.is_alive()
