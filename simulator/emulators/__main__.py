"""Run emulated instruments by hand, each on its own loopback port (or pty for the board):

    python -m simulator.emulators smu2450 --port 5025
    python -m simulator.emulators smu2400 smu2450 dmm board --latency 0.01 -v

Behind them is a toy circuit: every source-measure unit drives its own load resistor
(--load-ohms), every multiplexer channel reads a few millivolts, the board stores its codes.
The line to paste into a driver (a VISA resource or a serial device) is printed for each.
Stop with Ctrl-C. For a driver to talk to one:

    from drivers.instruments.transport import VisaTransport
    from drivers.instruments.keithley24xx import Keithley2450, SourceLimits
    smu = Keithley2450(VisaTransport("TCPIP::127.0.0.1::5025::SOCKET", "smu"),
                       SourceLimits(10, 0.01, 0.1, 0.5, 1e-4))
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import threading

from simulator.emulators import (
    Keithley2400Emulator,
    Keithley2450Emulator,
    Keysight34970AEmulator,
    ResistorBoardEmulator,
    TcpLineServer,
)
from simulator.instrument_backend import SourceReading, SourceSetting

KINDS = ("smu2400", "smu2450", "dmm", "board")


class ToyCircuit:
    """A load resistor per source-measure unit, fixed millivolts on the mux, stored codes."""

    def __init__(self, load_ohms: float):
        self.load_ohms = load_ohms
        self.settings: dict[str, SourceSetting] = {}
        self.codes: dict[int, int] = {}

    def apply_source(self, name, setting):
        self.settings[name] = setting

    def read_source(self, name):
        s = self.settings[name]
        if not s.output_on:
            return SourceReading(0.0, 0.0)
        if s.function == "VOLT":
            amps = s.level / self.load_ohms
            if abs(amps) > s.compliance:
                amps = math.copysign(s.compliance, amps)
                return SourceReading(amps * self.load_ohms, amps, True)
            return SourceReading(s.level, amps)
        volts = s.level * self.load_ohms
        if abs(volts) > s.compliance:
            volts = math.copysign(s.compliance, volts)
            return SourceReading(volts, volts / self.load_ohms, True)
        return SourceReading(volts, s.level)

    def read_channels(self, channels, input_ohms=None):
        return [1e-3 * (ch % 100) for ch in channels]

    def write_codes(self, codes):
        self.codes.update(codes)

    def read_codes(self, channels):
        return {ch: self.codes.get(ch, 128) for ch in channels}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.emulators",
                                     description="Serve emulated instruments on loopback.")
    parser.add_argument("kinds", nargs="+", choices=KINDS, help="which instruments to start")
    parser.add_argument("--port", type=int, default=0,
                        help="first TCP port (0: any free port), the next instruments count up")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--load-ohms", type=float, default=1000.0)
    parser.add_argument("--watchdog", type=float, default=2.0, help="board watchdog, seconds")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every line received")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(message)s")

    circuit = ToyCircuit(args.load_ohms)
    servers = []
    port = args.port
    for index, kind in enumerate(args.kinds):
        if kind == "board":
            board = ResistorBoardEmulator(circuit, latency_s=args.latency,
                                          watchdog_s=args.watchdog).start()
            servers.append(board)
            print(f"board    serial device {board.path}", flush=True)
            continue
        if kind == "dmm":
            device = Keysight34970AEmulator(circuit)
        else:
            emulator = Keithley2400Emulator if kind == "smu2400" else Keithley2450Emulator
            device = emulator(f"smu{index}", circuit)
        server = TcpLineServer(device, port, latency_s=args.latency).start()
        servers.append(server)
        print(f"{kind:8} VISA resource {server.resource}", flush=True)
        if port:
            port += 1

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    for server in servers:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
