"""Emulated instruments that speak the real instruments' protocols on loopback.

Each emulator keeps the state the real instrument keeps, answers its real syntax, records every
line it receives (``device.lines()``, ``device.received``), and calls an InstrumentBackend
(simulator/instrument_backend.py) for anything physical.

    from simulator.emulators import Keithley2450Emulator, TcpLineServer
    with TcpLineServer(Keithley2450Emulator("smu_in0", backend)) as server:
        ...  # pyvisa-py opens server.resource

The resistor board is served on a pseudo-terminal instead (ResistorBoardEmulator(...).path).
Run one by hand: ``python -m simulator.emulators --help``.
"""

from simulator.emulators.faults import FaultEvent, FaultLog, FaultPlan, FaultRates
from simulator.emulators.keithley import Keithley2400Emulator, Keithley2450Emulator
from simulator.emulators.resistor_board import BoardFirmware, ResistorBoardEmulator
from simulator.emulators.scanning_voltmeter import Keysight34970AEmulator
from simulator.emulators.server import (
           LineDevice,
           PtyLineServer,
           Received,
           TcpLineServer,
)
from simulator.emulators.switch_matrix import Keithley707BEmulator, ScpiSwitchEmulator, SwitchEvent

__all__ = ["BoardFirmware", "FaultEvent", "FaultLog", "FaultPlan", "FaultRates",
           "Keithley2400Emulator", "Keithley2450Emulator", "Keithley707BEmulator", "ScpiSwitchEmulator", "SwitchEvent",
           "Keysight34970AEmulator", "LineDevice", "PtyLineServer", "Received",
           "ResistorBoardEmulator", "TcpLineServer"]
