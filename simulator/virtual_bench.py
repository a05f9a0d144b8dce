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

Faults (simulator/emulators/faults.py) are injected at the rates of ``faults`` (a FaultRates;
default: the bench file's [virtual.faults] table, none if it has none), seeded by
``fault_seed`` (default: the table's seed): every server draws per reply from its instrument's
own generator, the board's port draws ``stuck`` at each write and the voltmeter's ``drift`` at
each scan. ``faults_injected()`` counts them per instrument and kind, ``fault_log.events()``
lists them.

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
from collections.abc import Mapping

from simulator.emulators import (
    BoardFirmware,
    FaultLog,
    FaultPlan,
    FaultRates,
    Keithley707BEmulator,
    Keithley2400Emulator,
    Keithley2450Emulator,
    Keysight34970AEmulator,
    PtyLineServer,
    ScpiSwitchEmulator,
    TcpLineServer,
)
from simulator.virtual_circuit import VirtualCircuit
from simulator.virtual_crossbar import VirtualCrossbar

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
    faults           : FaultRates to inject (default: the bench file's [virtual.faults]), or a
                       mapping of instrument name to FaultRates (instruments not named: none),
                       e.g. garbled bytes only on the serial board, where a real link has them.
    fault_seed       : their seed (default: the table's ``seed``, else 0).
    dmm_loading      : model the voltmeter's input resistance on the circuit (default off: the
                       virtual bench is then the simulated rig's exact twin).
    nonlinearity     : simulator.nonlinear.VoltageDependentEdges: edges that stop being ohmic
                       when driven hard (tests of the probe plan's linearity check); default none.
    devices          : a crossbar bench's devices (a simulator.memristor.MemristorArray), instead of
                       those its [virtual.devices] and calibration describe.
    A bench file with [crossbar] gets a VirtualCrossbar (simulator/virtual_crossbar.py): its
    switch matrix emulated too, its crosspoints memristive devices that pulses program.
    """

    def __init__(self, config, *, latency_s: float = 0.0, read_noise_volts: float = 0.0,
                 seed: int = 0, twin: bool = False, watchdog_s: float = 2.0,
                 drivers: dict[str, str] | None = None, truth=None,
                 faults: FaultRates | Mapping[str, FaultRates] | None = None, fault_seed: int | None = None,
                 dmm_loading: bool = False, nonlinearity=None, devices=None):
        self.config = config
        self.latency_s = float(latency_s)
        self.twin = twin
        self.watchdog_s = watchdog_s
        self.drivers = {name: inst.driver for name, inst in config.instruments.items()}
        self.drivers.update(drivers or {})
        if getattr(config, "crossbar", None) is not None:
            self.circuit = VirtualCrossbar(config, read_noise_volts=read_noise_volts, seed=seed, devices=devices)
        else:
            self.circuit = VirtualCircuit(config, read_noise_volts=read_noise_volts, seed=seed,
                                          truth=truth, dmm_loading=dmm_loading, nonlinearity=nonlinearity)
        table = dict(getattr(config, "virtual_faults", None) or {})
        self.fault_seed = int(table.pop("seed", 0) if fault_seed is None else fault_seed)
        table.pop("seed", None)
        self.faults = faults if faults is not None else FaultRates(**table)
        if isinstance(self.faults, Mapping):
            unknown = sorted(set(self.faults) - set(config.instruments))
            if unknown:
                raise ValueError(f"faults for {', '.join(unknown)}: no such instrument in the bench file")
        self.fault_log = FaultLog()
        self.fault_plans: dict[str, FaultPlan] = {}
        self.emulators: dict[str, object] = {}
        self.servers: dict[str, TcpLineServer | PtyLineServer] = {}
        self._started = False

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> VirtualBench:
        if self._started:
            return self
        try:
            for name, inst in self.config.instruments.items():
                plan = None
                rates = self.rates(name)
                if rates.any:
                    plan = FaultPlan(rates, self.fault_seed, name, self.fault_log,
                                     framed=inst.kind == "board")
                    self.fault_plans[name] = plan
                device = self._emulator(name, inst, plan)
                self.emulators[name] = device
                if self.twin and inst.kind == "board":
                    server = PtyLineServer(device, latency_s=self.latency_s, faults=plan)
                else:
                    port = 0 if self.twin else self._fixed_port(inst)
                    server = TcpLineServer(device, port, latency_s=self.latency_s, faults=plan)
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

    def faults_injected(self) -> dict[str, dict[str, int]]:
        """instrument -> fault kind -> how many were injected (kinds that occurred)."""
        return self.fault_log.counts()

    def is_safe(self) -> dict[str, bool]:
        """Per instrument: output off at level 0, no relay closed (the scanner's and a switch
        matrix's), every code at the safe one."""
        return {name: device.is_safe() for name, device in self.emulators.items()}

    # -- internals ----------------------------------------------------------------------------
    def inject(self, active: bool) -> None:
        """Turn fault injection on or off for every instrument (on from start())."""
        for plan in self.fault_plans.values():
            plan.active = active

    def rates(self, name: str) -> FaultRates:
        """The fault rates of instrument ``name``."""
        if isinstance(self.faults, Mapping):
            return self.faults.get(name, FaultRates())
        return self.faults

    def _emulator(self, name: str, inst, plan: FaultPlan | None):
        driver = self.drivers[name]
        serial = inst.serial or f"VB{list(self.config.instruments).index(name):04d}"
        if driver in SMU_EMULATORS:
            return SMU_EMULATORS[driver](name, self.circuit, serial=serial)
        if driver == "keysight34970a":
            cards = inst["cards"] if inst.kind == "dmm" else {1: "34901A"}
            backend = _DriftingScans(self.circuit, plan) if plan and self.rates(name).drift else self.circuit
            return Keysight34970AEmulator(backend, cards=cards, serial=serial)
        if driver == "keithley707b":
            return Keithley707BEmulator(self.circuit, cards=inst["slots"], model=inst["model"] or "707B",
                                        serial=serial)
        if driver == "scpi_switch":
            return ScpiSwitchEmulator(self.circuit, cards=inst["slots"], model=inst["model"] or "SWITCH-MATRIX",
                                      serial=serial)
        if driver == "resistor_board":
            channels = inst["channels"] if inst.kind == "board" else 8
            model = (inst["model"] if inst.kind == "board" else None) or f"RB{channels}-MCP4251"
            on_socket = not self.twin and inst.kind == "board"
            firmware = BoardFirmware(self.circuit.board(name), channels=channels, model=model,
                                     serial=serial, watchdog_s=self.watchdog_s, auto_reset=on_socket,
                                     boot_s=BOOT_S if on_socket else 0.0)
            if plan and self.rates(name).stuck:  # after the power-up, which is no fault's moment
                firmware.backend = _StickingWrites(firmware.backend, plan)
            return firmware
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


class _DriftingScans:
    """The circuit as the voltmeter sees it, drawing the ``drift`` fault at every scan: one
    tunable edge not yet drifting starts to drift."""

    def __init__(self, circuit: VirtualCircuit, plan: FaultPlan):
        self.circuit, self.plan = circuit, plan

    def read_channels(self, channels, input_ohms=None):
        steady = [w.edge for w in self.circuit.config.board_wiring if w.edge not in self.circuit.drifts]
        if steady and self.plan.draw_event("drift", f"scan of {len(channels)} channels"):
            self.circuit.start_drift(self.plan.choose(steady), per_read=self.plan.rates.drift_per_read)
        return self.circuit.read_channels(channels, input_ohms)

    def __getattr__(self, name):
        return getattr(self.circuit, name)


class _StickingWrites:
    """A board's port drawing the ``stuck`` fault at every write: one written channel stops
    following writes, this one included."""

    def __init__(self, port, plan: FaultPlan):
        self.port, self.plan = port, plan

    def write_codes(self, codes):
        free = sorted(ch for ch in codes if (self.port.name, ch) not in self.port.circuit.stuck)
        if free and self.plan.draw_event("stuck", f"write of {len(codes)} channels"):
            self.port.circuit.stuck.add((self.port.name, self.plan.choose(free)))
        self.port.write_codes(codes)

    def __getattr__(self, name):
        return getattr(self.port, name)
