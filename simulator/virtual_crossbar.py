"""The physics behind a virtual crossbar bench: the crossbar, its switch matrix and its devices.

A bench file with [crossbar] (hwlearn/config/crossbar.py) describes a crossbar whose lines reach
the instruments through a switch matrix. The circuit here is that bench as built, one network
solved by the VirtualCircuit machinery (compliance, output-off states, read noise):

- the crossbar of the bench file (line resistance and selectors included), its crosspoints
  memristive devices (simulator/memristor.py) whose conductances pulses change;
- every port unit behind its matrix bus: an input unit in series with its edge's resistor, an
  output unit across its load, both on a bus node that a relay joins to the line;
- the programmer (the pulse source) in series with a small path resistance on the programming
  bus, which relays join to the lines wired for it;
- one relay for every crosspoint of the matrix between a wired bus (a row) and a wired pin (a
  column) on the same card: closed, RELAY_OHMS; open, an open branch. Closing a channel the
  wiring never uses really joins that bus to that line (a forbidden channel matters);
- every sensed line read to ground by the voltmeter through a probe branch of OPEN_OHMS.

Sneak paths are physics here, not an error: every crosspoint of the array conducts in every
state, and a pulse reaches every device with the voltage the network gives it. A pulse (the
programmer's reading with source auto clear, ``pulse(name, seconds)``) changes every device by
its own voltage and the pulse's width; steady states (training drives, holds between pulses)
change nothing (the bench keeps them below ``disturb_volts``; docs/crossbar.md says why that is
the model's assumption).

The config is used by attribute only (the simulator does not import the drivers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from hwlearn.crossbar import CrossbarLayout
from hwlearn.network import Network
from simulator.circuit import OPEN_OHMS
from simulator.memristor import DeviceParameters, MemristorArray, Population, PulseKinetics, parameters_from
from simulator.virtual_circuit import VirtualCircuit

RELAY_OHMS = 0.5        # a closed reed relay and its path (7174A: < 1 ohm)
PROGRAMMER_OHMS = 1.0   # the programmer's cable and bus
ROWS = "ABCDEFGH"


@dataclass(frozen=True)
class _Wire:
    """What VirtualCircuit reads of a bench file's source and mux wiring."""

    edge: int
    smu: str
    polarity: int = 1
    channel: int = 0


@dataclass(frozen=True)
class _Physical:
    """The bench as built, in the shape VirtualCircuit reads a bench file."""

    network: Network
    inputs: tuple
    outputs: tuple
    mux: tuple
    instruments: dict
    board_wiring: tuple = ()
    calibration: dict = None


def devices_of(config, count_names: list[str]) -> MemristorArray:
    """The crosspoints' devices: the bench file's [virtual.devices] population (seeded), each
    device replaced by its fitted parameters where the bench's calibration has them (a twin
    uses what characterisation measured)."""
    from_file = dict(config.virtual_devices or {})
    typical = DeviceParameters(from_file.get("g_min", 2e-5), from_file.get("g_max", 2e-4),
                               from_file.get("pulses", 40.0), from_file.get("nu_set", 3.0),
                               from_file.get("nu_reset", 5.0), from_file.get("c2c", 0.005))
    kinetics = PulseKinetics(from_file.get("set_threshold_volts", 1.0), from_file.get("reset_threshold_volts", 1.0),
                             from_file.get("reference_volts", 1.5), from_file.get("reference_width_s", 1e-3),
                             from_file.get("exponent", 2.0))
    population = Population(typical, from_file.get("d2d", 0.1), from_file.get("stuck_fraction", 0.0))
    array = MemristorArray.of(population, len(count_names), kinetics, int(from_file.get("seed", 0)))
    calibration = config.crossbar.calibration or {}
    for k, name in enumerate(count_names):
        fitted = calibration.get(name)
        if fitted is None:
            continue
        if "stuck" in fitted:
            level = fitted["stuck"]
            array.devices[k] = DeviceParameters(level / 2, level * 2, 1.0, 0.0, 0.0, 0.0, "low")
            array.g[k] = level
        else:
            array.devices[k] = parameters_from(fitted)
    initial = float(from_file.get("initial", 0.5))
    array.set_conductance([d.g_min + initial * d.window for d in array.devices])
    return array


class VirtualCrossbar(VirtualCircuit):
    """The circuit of a crossbar bench (module docstring). ``devices``: the crosspoints'
    MemristorArray in edge order (default: devices_of(config))."""

    def __init__(self, config, *, read_noise_volts: float = 0.0, seed: int = 0, backend: str = "auto",
                 devices: MemristorArray | None = None, clock=time.monotonic):
        xb = config.crossbar
        base = config.network
        self.bench_config = config
        self.layout = CrossbarLayout.of(base)
        self.device_edges = np.array(sorted(self.layout.crosspoints), dtype=np.int64)
        names = [base.edge_names[e] for e in self.device_edges]
        self.devices = devices if devices is not None else devices_of(config, names)
        physical, self.switches = self._build(config)
        super().__init__(physical, read_noise_volts=read_noise_volts, seed=seed, truth={}, backend=backend,
                         clock=clock)
        self.programmer = xb.programmer
        self._m = base.n_edges
        self.circuit.set_true(np.array(list(self.switches.values()), dtype=np.int64),
                              np.full(len(self.switches), OPEN_OHMS))
        self._store_devices()

    # ------------------------------------------------------------------ the bench as built
    def _build(self, config):
        xb, base = config.crossbar, config.network
        nodes = list(base.node_names)
        a, b = base.edge_a.copy(), base.edge_b.copy()
        names, ohms = list(base.edge_names), list(base.resistance)
        index = {name: k for k, name in enumerate(nodes)}

        def node(name: str) -> int:
            if name not in index:
                index[name] = len(nodes)
                nodes.append(name)
            return index[name]

        def edge(u: int, v: int, name: str, r: float) -> int:
            nonlocal a, b
            a, b = np.append(a, u), np.append(b, v)
            names.append(name)
            ohms.append(r)
            return len(names) - 1

        buses: dict[tuple[int, int], int] = {}
        pins: dict[tuple[int, int], int] = {}
        for wire in xb.lines.values():
            for text, bus in ((wire.unit_channel, f"{wire.line}~unit"), (wire.prog_channel, "prog~bus")):
                if text is None:
                    continue
                slot, row, column = int(text[0]), ROWS.index(text[1]) + 1, int(text[2:])
                buses[(slot, row)] = node(bus)
                pins[(slot, column)] = index[wire.line]
            if wire.port_edge is not None:
                # the port's resistor and unit hang on the bus node, not on the line itself
                unit_node = node(f"{wire.line}~unit")
                if a[wire.port_edge] == index[wire.line]:
                    a[wire.port_edge] = unit_node
                else:
                    b[wire.port_edge] = unit_node
        switches = {}
        for (slot, row), bus in sorted(buses.items()):
            for (pin_slot, column), line in sorted(pins.items()):
                if pin_slot == slot:
                    name = f"{slot}{ROWS[row - 1]}{column:02d}"
                    switches[name] = edge(bus, line, f"K{name}", OPEN_OHMS)
        programmer = edge(node("prog~bus"), base.ground, "Rprog", PROGRAMMER_OHMS)
        probes = []
        for wire in xb.lines.values():
            if wire.sense is not None:
                probes.append(_Wire(edge(index[wire.line], base.ground, f"V{wire.line}", OPEN_OHMS), "", 1,
                                    wire.sense))
        net = Network(nodes, a, b, ohms, ground=base.ground, edge_names=names,
                      roles={"input": base.inputs, "output": base.outputs},
                      title=f"{base.title} on its switch matrix")
        inputs = tuple(_Wire(w.edge, w.smu, w.polarity) for w in config.inputs) + (_Wire(programmer, xb.programmer),)
        outputs = tuple(_Wire(w.edge, w.smu, w.polarity) for w in config.outputs)
        return _Physical(net, inputs, outputs, tuple(probes), dict(config.instruments), (), {}), switches

    def _store_devices(self) -> None:
        self.circuit.set_true(self.device_edges, 1.0 / self.devices.g)
        self._settled = None

    # ------------------------------------------------------------------ what emulators call
    def set_relays(self, closed: frozenset[str]) -> None:
        """The matrix's relays now closed (channel names); the others open."""
        with self.lock:
            edges = np.array(list(self.switches.values()), dtype=np.int64)
            ohms = np.array([RELAY_OHMS if name in closed else OPEN_OHMS for name in self.switches])
            self.circuit.set_true(edges, ohms)
            self._settled = None

    def hot_sources(self) -> dict[str, float]:
        """Sources on at a nonzero level now (unit name -> level): what a relay must not see."""
        with self.lock:
            return {name: s.level for name, s in self.settings.items() if s.output_on and s.level != 0.0}

    def pulse(self, name: str, seconds: float) -> None:
        """Unit ``name`` was on at its present setting for ``seconds``: every device sees its
        voltage in the settled circuit for that long."""
        with self.lock:
            volts = self.settle()[1][self.device_edges]
            if np.any(self.devices.pulse(volts, float(seconds)) > 0):
                self._store_devices()

    # ------------------------------------------------------------------ for tests and the twin
    def true_resistances(self) -> np.ndarray:
        """(m,) the bench network's edges as they are (the matrix's own branches left out)."""
        return self.circuit.true_resistances()[:self._m]

    def conductances(self) -> dict[str, float]:
        """Crosspoint name -> its device's conductance now, siemens."""
        names = self.bench_config.network.edge_names
        return {names[e]: float(g) for e, g in zip(self.device_edges, self.devices.g)}

    def device_voltages(self) -> np.ndarray:
        """(crosspoints,) every device's voltage in the settled circuit, edge order."""
        with self.lock:
            return self.settle()[1][self.device_edges].copy()

    def parameters(self) -> dict[str, DeviceParameters]:
        names = self.bench_config.network.edge_names
        return {names[e]: d for e, d in zip(self.device_edges, self.devices.devices)}

