"""The fast simulated substrate: whole batches through the solver.

Each rule simulates its own estimate (``rule.simulate``): its bench plans executed by the solver
for a whole batch at once, or, for phase-based rules with no read noise, the whole-batch linear
path (one factorisation and d_in + d_out solves per update, whatever the batch size). With read
noise every measurement gets its own noise, as on a bench: sample by sample, or, with
``plan='probe'``, through the probe plan (hwlearn.rules.probe) at the batch's own levels, as a
bench without stated limits would probe.
"""

from __future__ import annotations

import numpy as np

from hwlearn.network import Network
from hwlearn.ports import Ports
from hwlearn.rules import LinearResponse, execute, simulate_phases
from hwlearn.rules.probe import probe_modes, probe_plan, probe_refusal
from hwlearn.rules.probe_design import ReadingAccuracy, design_probes
from simulator.circuit import SimulatedCircuit
from simulator.devices import DeviceModel


class FastSimulation:
    """A simulated network with device models on its tunable edges; updates touch ``learnable``."""

    def __init__(self, network: Network, ports: Ports, learnable: np.ndarray, device: DeviceModel,
                 initial_ohms: np.ndarray, rng: np.random.Generator, backend: str = "auto",
                 plan: str = "per-sample"):
        """plan: 'per-sample' or 'probe': how a noisy measurement is simulated (without read noise
        both equal the whole-batch linear path)."""
        if plan not in ("per-sample", "probe"):
            raise ValueError(f"plan {plan!r}; allowed: per-sample, probe")
        self.plan = plan
        self.network = network
        self.ports = ports
        self.learnable = np.asarray(learnable, dtype=np.int64)
        self.device = device
        self.circuit = SimulatedCircuit(network, device, rng, initial_ohms, backend)
        self.description = f"simulated ({self.circuit.solver.backend} solver, {device.name} devices)"
        self.plan_info = {"plan": plan, "why": "the simulated fast path: " + (
            "the probe plan's readings carry the read noise" if plan == "probe" else
            "every sample's phases carry the read noise" if device.read_noise_volts else
            "noise-free, both plans equal the whole-batch linear path")}
        self._checks = 0

    # The fast path runs no plans: nothing to attach, and no rig for an engine to make safe.
    rig = None

    def attach(self, engine) -> None:
        pass

    def start(self) -> None:
        """The initial resistances were set when the circuit was built."""

    def resistances(self) -> np.ndarray:
        return self.circuit.known_resistances()

    def state(self) -> dict[str, np.ndarray]:
        return self.circuit.state()

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.circuit.restore(state)

    def gradient(self, rule, x, y):
        circuit = self.circuit
        if self.plan == "probe" and self.device.read_noise_volts:
            refusal = probe_refusal(rule)
            if refusal:
                raise ValueError(f"plan = 'probe': {refusal}")
            known = circuit.known_resistances()
            design = design_probes(None, self.ports, known, probe_modes(rule))
            self._checks += 1
            outcome = execute(probe_plan(rule, self.ports, self.learnable, x, y, known, design,
                                         ReadingAccuracy.exact(self.device.read_noise_volts),
                                         np.random.default_rng(self._checks)),
                              circuit.factorization(), self.ports, circuit.read)
            return outcome.gradient, outcome.outputs
        return rule.simulate(circuit.factorization(), self.ports, self.learnable, x, y,
                             known_ohms=circuit.known_resistances(),
                             measure=circuit.read if self.device.read_noise_volts else None)

    def exact_gradient(self, x, y) -> np.ndarray:
        """(k,) the exact gradient at the true resistances, to judge the rule's estimate."""
        return LinearResponse(self.circuit.factorization(), self.ports, self.learnable).exact_gradient(x, y)

    def program(self, ohms: np.ndarray) -> np.ndarray:
        return self.circuit.program(self.learnable, ohms)

    def outputs(self, x) -> np.ndarray:
        return self.circuit.solve(self.ports.excitation(x)).edge_voltages(self.ports.outputs)

    def phase_voltages(self, rule, x, y) -> dict[str, np.ndarray]:
        measured, _ = simulate_phases(self.circuit.factorization(), self.ports, rule, x, y,
                                      np.arange(self.network.n_edges), known_ohms=self.circuit.known_resistances())
        return {name: m.voltages[:, 0] for name, m in measured.items()}
