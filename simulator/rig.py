"""The in-process simulated rig: the Rig interface on a SimulatedCircuit.

Ideal instruments: input sources in series with the input edges, output drives beside the
output resistors, a voltmeter on every readable edge. Its devices follow the device model.
"""

from __future__ import annotations

import numpy as np

from hwlearn.network import Network
from hwlearn.rig import OUTPUT_MODES, Capabilities, Rig, RigError
from hwlearn.rules import LinearResponse
from hwlearn.solver import Excitation
from simulator.circuit import SimulatedCircuit
from simulator.devices import DeviceModel


class SimulatedRig(Rig):
    def __init__(self, network: Network, device: DeviceModel, rng: np.random.Generator,
                 initial_ohms: np.ndarray | None = None, backend: str = "auto", nonlinearity=None):
        """nonlinearity: simulator.nonlinear.VoltageDependentEdges, for tests only."""
        self.network = network
        self.circuit = SimulatedCircuit(network, device, rng, initial_ohms, backend, nonlinearity)
        self.capabilities = Capabilities(
            output_modes=frozenset(OUTPUT_MODES),
            readable=np.union1d(network.role("readable"), network.outputs),
            tunable=network.role("tunable"),
        )
        self._inputs = np.zeros(network.inputs.size)
        self._drive: tuple[str, np.ndarray | None] = ("open", None)
        self.operations = {"set_inputs": 0, "drive_outputs": 0, "measure": 0, "program": 0, "safe_state": 0}

    def resistances(self) -> np.ndarray:
        return self.circuit.known_resistances()

    def set_inputs(self, volts) -> None:
        self.operations["set_inputs"] += 1
        volts = np.zeros(self.network.inputs.size) if volts is None else np.asarray(volts, dtype=float)
        if volts.shape != (self.network.inputs.size,) or not np.all(np.isfinite(volts)):
            raise RigError(f"set_inputs: expected {self.network.inputs.size} finite volts, got {volts!r}")
        self._inputs = volts.copy()

    def drive_outputs(self, mode: str, values=None) -> None:
        self.operations["drive_outputs"] += 1
        if mode not in OUTPUT_MODES:
            raise RigError(f"drive_outputs: mode '{mode}' is unknown; allowed: {', '.join(OUTPUT_MODES)}")
        if mode == "open":
            self._drive = ("open", None)
            return
        values = np.asarray(values, dtype=float)
        if values.shape != (self.network.outputs.size,) or not np.all(np.isfinite(values)):
            raise RigError(f"drive_outputs: expected {self.network.outputs.size} finite values, got {values!r}")
        self._drive = (mode, values.copy())

    def _excitation(self) -> Excitation:
        net = self.network
        mode, values = self._drive
        return Excitation(
            series=(net.inputs, self._inputs[:, None]),
            parallel=(net.outputs, values[:, None]) if mode == "current" else None,
            clamp=(net.outputs, values[:, None]) if mode == "clamp" else None,
        )

    def measure(self, edges) -> np.ndarray:
        self.operations["measure"] += 1
        edges = np.asarray(edges, dtype=np.int64)
        unreadable = np.setdiff1d(edges, self.capabilities.readable)
        if unreadable.size:
            names = ", ".join(self.network.edge_names[k] for k in unreadable)
            raise RigError(f"measure: edges {names} are not readable on this rig")
        volts = self.circuit.solve(self._excitation()).edge_voltages(edges)[:, 0]
        return self.circuit.read(volts)

    def program(self, edges, ohms) -> np.ndarray:
        self.operations["program"] += 1
        try:
            return self.circuit.program(edges, ohms)
        except ValueError as exc:
            raise RigError(f"program: {exc}") from None

    def safe_state(self) -> list[str]:
        self.operations["safe_state"] += 1
        self._inputs = np.zeros(self.network.inputs.size)
        self._drive = ("open", None)
        return []

    def snapshot(self) -> dict[str, np.ndarray]:
        """The circuit's whole state, the device model's hidden state included: exact resumes."""
        return self.circuit.state()

    def restore(self, snapshot: dict[str, np.ndarray], reprogram: bool = True) -> None:
        self.circuit.restore(snapshot)

    def exact_gradient(self, ports, edges, x, y) -> np.ndarray:
        return LinearResponse(self.circuit.factorization(), ports, edges).exact_gradient(x, y)

    def describe(self) -> dict:
        return {"kind": "simulated", "description": f"simulated rig ({self.circuit.solver.backend} solver, "
                                                    f"{self.circuit.device.name} devices)"}

