"""The virtual bench: every instrument of a bench file emulated on loopback, one circuit behind.

    config = load_bench_file("examples/virtual-bench.toml")
    with VirtualBench(config, twin=True) as vb:          # ephemeral ports
        bench = Bench.open(vb.bench_config())            # the real drivers, over real sockets
        ...
        vb.emulators["smu_in0"].is_safe()                # instrument state and command log

SCPI instruments (Keithley 2400/2450, Keysight 34970A) listen on the TCP port of their resource
string (``TCPIP0::127.0.0.1::PORT::SOCKET``); the resistor board's firmware logic listens on the
port of its pyserial URL (``socket://127.0.0.1:PORT``), which pyserial opens like a serial port.
With ``twin=True`` every SCPI instrument takes an ephemeral port instead (port 0) and the board
a pseudo-terminal (pyserial opens it as a serial device, and closing it costs nothing, where
pyserial's socket:// waits 0.3 s), whatever the resources say, so a dry run can mirror a real
bench (GPIB, USB, /dev/tty...) on this machine; ``bench_config()`` is then the bench file with
the twin's resources. Servers bind 127.0.0.1 only.

A board served on socket:// restarts whenever a client connects, as an Arduino does when its USB
port opens (its bootloader then ignores input for ``boot_s`` = 0.1 s before the boot
announcement). A pty has no DTR line: a twin's board does not restart, and ``bench_config()``
says so (``boot_wait_s = 0``), so that opening it does not wait for an announcement that never
comes.

The config is a hwlearn.config.bench.BenchConfig, used by attribute only (the simulator does not
import the drivers).
"""

from __future__ import annotations

import dataclasses
import logging

from simulator.emulators import (
    BoardFirmware,
    Keithley2400Emulator,
    Keithley2450Emulator,
    Keysight34970AEmulator,
    PtyLineServer,
    TcpLineServer,
)
from simulator.virtual_circuit import VirtualCircuit

log = logging.getLogger("hwlearn.virtual_bench")

SMU_EMULATORS = {"keithley2400": Keithley2400Emulator, "keithley2450": Keithley2450Emulator}
BOOT_S = 0.1  # an emulated Arduino's bootloader time after its port opens (a real one: ~1 s)


class VirtualBench:
    """Emulators of every instrument of ``config`` on loopback, backed by one VirtualCircuit.

    latency_s        : delay before every reply (a slow link).
    read_noise_volts : Gaussian noise on every multiplexer reading.
    twin             : ephemeral ports for every instrument (see the module docstring).
    watchdog_s       : the emulated board's watchdog timeout.
    drivers          : instrument name -> emulated driver kind, to serve another model than the
                       bench file names (tests of the identity check).
    """

    def __init__(self, config, *, latency_s: float = 0.0, read_noise_volts: float = 0.0,
                 seed: int = 0, twin: bool = False, watchdog_s: float = 2.0,
                 drivers: dict[str, str] | None = None, truth=None):
        self.config = config
        self.latency_s = float(latency_s)
        self.twin = twin
        self.watchdog_s = watchdog_s
        self.drivers = {name: inst.driver for name, inst in config.instruments.items()}
        self.drivers.update(drivers or {})
        self.circuit = VirtualCircuit(config, read_noise_volts=read_noise_volts, seed=seed,
                                      truth=truth)
        self.emulators: dict[str, object] = {}
        self.servers: dict[str, TcpLineServer | PtyLineServer] = {}
        self._started = False

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> VirtualBench:
        if self._started:
            return self
        try:
            for name, inst in self.config.instruments.items():
                device = self._emulator(name, inst)
                self.emulators[name] = device
                if self.twin and inst.kind == "board":
                    server = PtyLineServer(device, latency_s=self.latency_s)
                else:
                    port = 0 if self.twin else self._fixed_port(inst)
                    server = TcpLineServer(device, port, latency_s=self.latency_s)
                try:
                    self.servers[name] = server.start()
                except OSError as exc:
                    where = f"127.0.0.1:{port}" if isinstance(server, TcpLineServer) else "a pty"
                    raise OSError(exc.errno, f"{name}: cannot listen on {where}: "
                                             f"{exc.strerror}") from exc
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        """Stop every server (idempotent); their ports are closed when this returns."""
        for server in self.servers.values():
            try:
                server.stop()
            except Exception as exc:  # stopping must go on for the others
                log.warning("stopping %s failed: %s", server, exc)
        self.servers.clear()
        self._started = False

    def __enter__(self) -> VirtualBench:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what clients need ------------------------------------------------------------------
    @property
    def resources(self) -> dict[str, str]:
        """Instrument name -> the resource string its emulator answers at."""
        found = {}
        for name, server in self.servers.items():
            if isinstance(server, PtyLineServer):
                found[name] = server.path
            elif self.config.instruments[name].kind == "board":
                found[name] = f"socket://127.0.0.1:{server.port}"
            else:
                found[name] = f"TCPIP0::127.0.0.1::{server.port}::SOCKET"
        return found

    def bench_config(self):
        """The bench file with this virtual bench's resources (equal to it unless twin), and
        ``boot_wait_s = 0`` for boards on a pty (they do not restart when opened)."""
        config = self.config.with_resources(self.resources)
        instruments = dict(config.instruments)
        for name, server in self.servers.items():
            inst = instruments[name]
            if isinstance(server, PtyLineServer) and inst.kind == "board":
                instruments[name] = dataclasses.replace(
                    inst, settings={**inst.settings, "boot_wait_s": 0.0})
        return dataclasses.replace(config, instruments=instruments)

    def set_latency(self, latency_s: float) -> None:
        for server in self.servers.values():
            server.latency_s = float(latency_s)
        self.latency_s = float(latency_s)

    def is_safe(self) -> dict[str, bool]:
        """Per instrument: output off at level 0, no relay closed, every code at the safe one."""
        return {name: device.is_safe() for name, device in self.emulators.items()}

    # -- internals ----------------------------------------------------------------------------
    def _emulator(self, name: str, inst):
        driver = self.drivers[name]
        serial = inst.serial or f"VB{list(self.config.instruments).index(name):04d}"
        if driver in SMU_EMULATORS:
            return SMU_EMULATORS[driver](name, self.circuit, serial=serial)
        if driver == "keysight34970a":
            cards = inst["cards"] if inst.kind == "dmm" else {1: "34901A"}
            return Keysight34970AEmulator(self.circuit, cards=cards, serial=serial)
        if driver == "resistor_board":
            channels = inst["channels"] if inst.kind == "board" else 8
            model = (inst["model"] if inst.kind == "board" else None) or f"RB{channels}-MCP4251"
            on_socket = not self.twin and inst.kind == "board"
            return BoardFirmware(self.circuit.board(name), channels=channels, model=model,
                                 serial=serial, watchdog_s=self.watchdog_s, auto_reset=on_socket,
                                 boot_s=BOOT_S if on_socket else 0.0)
        raise ValueError(f"{name}: no emulator for driver {driver!r}")

    def _fixed_port(self, inst) -> int:
        link = inst.link
        if link.port is None or link.host is None or link.is_remote:
            raise ValueError(f"{inst.name}: resource {inst.resource!r} is not a loopback TCP port "
                             "an emulator can listen on; start the virtual bench as a twin "
                             "(twin=True, hwlearn virtual-bench --twin)")
        if inst.kind == "board" and not inst.resource.startswith("socket://"):
            raise ValueError(f"{inst.name}: resource {inst.resource!r}: the emulated board "
                             "serves pyserial's socket:// protocol only; use a twin")
        return link.port
