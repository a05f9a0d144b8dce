"""One conformance suite over every driver and its emulator, through the real transports:
pyvisa-py TCPIP SOCKET to the SCPI emulators on loopback, pyserial on a pseudo-terminal to the
resistor board. What every instrument must do: identify itself; refuse a limit violation
without sending a byte; reach a complete safe state, idempotently; never hand out a reading
that is in compliance, overrange, NaN or (for the board) not what was written.

Emulators process lines in order, so "the emulator has seen everything" is established by a
query after the action (``sync``), never by waiting."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from drivers.instruments.errors import ComplianceError, LimitError, ReadingError, VerifyError
from drivers.instruments.keithley24xx import Keithley2400, Keithley2450, SourceLimits
from drivers.instruments.resistor_board import ResistorBoard
from drivers.instruments.scanning_voltmeter import Keysight34970A
from drivers.instruments.transport import SerialTransport, VisaTransport
from simulator.emulators import (
    Keithley2400Emulator,
    Keithley2450Emulator,
    Keysight34970AEmulator,
    ResistorBoardEmulator,
    TcpLineServer,
)
from tests.fake_backend import FakeBackend

TIMEOUT_S = 10.0  # generous: only a dead link may time out, never a slow machine
SMU_LIMITS = SourceLimits(max_volts=10.0, max_amps=0.01, max_watts=0.1, ramp_volts=0.5,
                          ramp_amps=1e-4)


@dataclass
class Pair:
    """A driver wired to its emulator, and what the suite needs to know about the pair."""

    driver: object
    device: object                      # the emulator's LineDevice (state + command log)
    model: str                          # what identify() must report
    activate: Callable[[], None]        # leave the instrument in a non-safe, working state
    violate: Callable[[], None]         # a request beyond the limits
    words: tuple[str, ...]              # what the violation's message must name
    fresh: Callable[[], object]         # a new driver on the same link, knowing nothing yet
    bad_readings: list[tuple[Callable[[], None], type]] = field(default_factory=list)

    def identify(self):
        connect = getattr(self.driver, "connect", None)  # the board's identity check
        return connect() if connect else self.driver.identify()

    def sync(self) -> None:
        self.driver.identify()

    def instrument_errors(self) -> list:
        if hasattr(self.device, "error_queue"):
            return list(self.device.error_queue)
        return [r for r in self.device.received if r.reply and " ERR " in r.reply]


def smu_pair(emulator_cls, driver_cls, model, backend, server_factory) -> Pair:
    device = emulator_cls("smu_in0", backend)
    server = server_factory(device)
    driver = driver_cls(VisaTransport(server.resource, "smu_in0", timeout_s=TIMEOUT_S), SMU_LIMITS)

    def activate():
        driver.reset()
        driver.configure("VOLT", 1e-3)
        driver.output_on()
        driver.set_level(0.8)  # 0.8 mA into 1 kOhm, inside the 1 mA compliance

    def compliance():
        driver.set_level(2.0)  # 2 mA wanted, 1 mA allowed: the unit limits
        driver.measure()

    def nan_reading():
        backend.load_ohms = math.nan
        try:
            driver.measure()
        finally:
            backend.load_ohms = 1000.0

    def prepared(action):
        def run():
            activate()
            action()
        return run

    return Pair(driver, device, model, activate, violate=lambda: driver.set_level(11.0),
                words=("smu_in0", "11 V", "10 V"),
                fresh=lambda: driver_cls(driver.transport, SMU_LIMITS),
                bad_readings=[(prepared(compliance), ComplianceError),
                              (prepared(nan_reading), ReadingError)])


def dmm_pair(backend, server_factory) -> Pair:
    device = Keysight34970AEmulator(backend)
    server = server_factory(device)
    driver = Keysight34970A(VisaTransport(server.resource, "dmm", timeout_s=TIMEOUT_S))
    backend.channel_volts.update({119: math.nan, 120: 1e6})

    def activate():
        driver.reset()
        driver.configure(range(101, 121), 10.0)
        driver.measure([101, 102])
        device.receive("ROUT:CLOS (@105)")  # a relay left closed, e.g. by a crashed session

    def measure(channels):
        def run():
            driver.reset()
            driver.configure(range(101, 121), 10.0)
            driver.measure(channels)
        return run

    return Pair(driver, device, "34970A", activate, violate=lambda: driver.measure([121]),
                words=("dmm", "121", "101-120"), fresh=lambda: Keysight34970A(driver.transport),
                bad_readings=[(measure([101, 120]), ReadingError),
                              (measure([119]), ReadingError)])


def board_pair(backend, emulators) -> Pair:
    emulator = ResistorBoardEmulator(backend).start()
    emulators.append(emulator)
    driver = ResistorBoard(SerialTransport(emulator.path, "board", timeout_s=TIMEOUT_S),
                           allowed={ch: (0, 256) for ch in range(8)})

    def activate():
        driver.connect()
        driver.acknowledge_boot()
        driver.write_codes({0: 10, 5: 200})

    def stuck():
        driver.connect()
        driver.acknowledge_boot()
        backend.stuck[7] = 100
        try:
            driver.write_codes({7: 50})
        finally:
            del backend.stuck[7]

    return Pair(driver, emulator.firmware, "RB8-MCP4251", activate,
                violate=lambda: driver.write_codes({0: 300}),
                words=("board", "channel 0 code 300", "0..256"),
                fresh=lambda: ResistorBoard(driver.transport),
                bad_readings=[(stuck, VerifyError)])


PAIRS = ["keithley2400", "keithley2450", "keysight34970a", "resistor_board"]


@pytest.fixture(params=PAIRS)
def pair(request):
    backend = FakeBackend(load_ohms=1000.0)
    servers, emulators = [], []

    def tcp(device):
        server = TcpLineServer(device).start()
        servers.append(server)
        return server

    if request.param == "keithley2400":
        built = smu_pair(Keithley2400Emulator, Keithley2400, "MODEL 2400", backend, tcp)
    elif request.param == "keithley2450":
        built = smu_pair(Keithley2450Emulator, Keithley2450, "MODEL 2450", backend, tcp)
    elif request.param == "keysight34970a":
        built = dmm_pair(backend, tcp)
    else:
        built = board_pair(backend, emulators)
    yield built
    built.driver.transport.close()
    for server in servers:
        server.stop()
    for emulator in emulators:
        emulator.stop()


def test_identity_is_read(pair):
    identity = pair.identify()
    assert identity.model == pair.model
    assert pair.device.lines()  # it went through the emulator


def test_limit_violation_raises_and_sends_no_byte(pair):
    pair.activate()
    pair.sync()
    before = pair.device.lines()
    with pytest.raises(LimitError) as info:
        pair.violate()
    for word in pair.words:
        assert word in str(info.value), f"{word!r} missing from {info.value}"
    pair.sync()
    after = pair.device.lines()
    sync_lines = len(after) - len(before)
    assert after[:len(before)] == before
    pair.sync()
    assert len(pair.device.lines()) - len(after) == sync_lines, (
        "lines other than the sync query reached the instrument: "
        f"{after[len(before):]}")


def test_safe_state_is_complete(pair):
    pair.activate()
    pair.sync()
    assert not pair.device.is_safe()
    pair.driver.safe_state()
    pair.sync()
    assert pair.device.is_safe()
    assert pair.instrument_errors() == []


def test_safe_state_from_a_driver_that_knows_nothing_then_again_and_again(pair):
    pair.activate()  # e.g. a crashed run left the instrument working; a new process takes over
    pair.sync()
    assert not pair.device.is_safe()
    pair.fresh().safe_state()
    pair.sync()
    assert pair.device.is_safe()
    for _ in range(2):
        pair.driver.safe_state()
        pair.sync()
        assert pair.device.is_safe()
    assert pair.instrument_errors() == []


def test_bad_readings_raise(pair):
    assert pair.bad_readings
    for provoke, error in pair.bad_readings:
        with pytest.raises(error):
            provoke()


def test_a_working_session_leaves_no_instrument_error(pair):
    pair.activate()
    pair.driver.safe_state()
    pair.sync()
    assert pair.instrument_errors() == []
