"""One simulated circuit: a network whose tunable edges are devices, solved under given sources.

Both the in-process simulated rig (simulator.rig) and the virtual bench's instrument backend
solve through this class, so a plan sees the same physics either way. A factorisation is kept
until the resistances or the set of broken (open) edges change.
"""

from __future__ import annotations

import numpy as np

from hwlearn.network import Network
from hwlearn.solver import Excitation, KirchhoffSolver, State
from simulator.devices import DeviceArrays, DeviceModel

# An edge whose series source is switched off (an SMU output off) is an open branch: modelled as
# this resistance, far above any device yet small enough to keep the nodal matrix well posed.
OPEN_OHMS = 1e12


class SimulatedCircuit:
    """The network with device models on its tunable edges."""

    def __init__(self, network: Network, device: DeviceModel, rng: np.random.Generator,
                 initial_ohms: np.ndarray | None = None, backend: str = "auto", nonlinearity=None):
        """nonlinearity: a simulator.nonlinear.VoltageDependentEdges (tests of the linearity
        check), None for the linear circuit every default path uses."""
        self.network = network
        self.nonlinearity = nonlinearity
        self.device = device
        self.rng = rng
        self.tunable = network.role("tunable")
        self.solver = KirchhoffSolver(network, backend=backend)
        self._true = np.array(network.resistance if initial_ohms is None else initial_ohms, dtype=float)
        self._known = self._true.copy()
        device.setup(self.tunable.size, rng)
        self._store(self.tunable, device.program(None, self._true[self.tunable], rng))
        self._cache: tuple | None = None

    def _store(self, edges: np.ndarray, arrays: DeviceArrays) -> None:
        self._true[edges] = arrays.true
        self._known[edges] = arrays.known
        self._cache = None

    def true_resistances(self) -> np.ndarray:
        return self._true.copy()

    def known_resistances(self) -> np.ndarray:
        return self._known.copy()

    def state(self) -> dict[str, np.ndarray]:
        """Arrays that ``restore`` turns back into exactly this circuit (checkpoints)."""
        return {"true_ohms": self._true.copy(), "known_ohms": self._known.copy(),
                **{f"device_{k}": v for k, v in self.device.extra_state().items()}}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self._true = np.array(state["true_ohms"], dtype=float)
        self._known = np.array(state["known_ohms"], dtype=float)
        self.device.restore_extra({k[len("device_"):]: v for k, v in state.items() if k.startswith("device_")})
        self._cache = None

    def program(self, edges: np.ndarray, ohms: np.ndarray) -> np.ndarray:
        """Write tunable ``edges``; returns the ohms the host knows they now hold."""
        edges = np.asarray(edges, dtype=np.int64)
        slot = np.searchsorted(self.tunable, edges)
        if np.any(slot >= self.tunable.size) or np.any(self.tunable[np.minimum(slot, self.tunable.size - 1)] != edges):
            bad = [self.network.edge_names[k] for k in edges if k not in set(self.tunable.tolist())]
            raise ValueError(f"cannot program edges that are not tunable: {', '.join(bad)}")
        current = DeviceArrays(self._true[edges], self._known[edges])
        self._store(edges, self.device.program(current, ohms, self.rng, devices=slot))
        return self._known[edges].copy()

    def set_true(self, edges: np.ndarray, ohms: np.ndarray) -> None:
        """Set the true resistance of ``edges`` directly (a relay that closes, a device whose
        state changed by a pulse); what the host knows is left as it was."""
        self._true[np.asarray(edges, dtype=np.int64)] = np.asarray(ohms, dtype=float)
        self._cache = None

    def scale_true(self, edges: np.ndarray, factors: np.ndarray) -> None:
        """Multiply the true resistance of ``edges`` by ``factors`` (a drifting device); what
        the host knows is left as it was."""
        self._true[np.asarray(edges, dtype=np.int64)] *= np.asarray(factors, dtype=float)
        self._cache = None

    def factorization(self, open_edges: tuple[int, ...] = ()):
        """The factorisation for the current resistances with ``open_edges`` broken."""
        key = tuple(sorted(open_edges))
        if self._cache is None or self._cache[0] != key:
            ohms = self._true.copy()
            if key:
                ohms[list(key)] += OPEN_OHMS
            self._cache = (key, self.solver.factorize(ohms))
        return self._cache[1]

    def solve(self, excitation: Excitation, open_edges: tuple[int, ...] = ()) -> State:
        if self.nonlinearity is None:
            return self.factorization(open_edges).solve(excitation)
        ohms = self._true.copy()
        if open_edges:
            ohms[list(open_edges)] += OPEN_OHMS
        return self.nonlinearity.solve(self.solver.factorize, excitation, ohms)

    def read(self, volts: np.ndarray) -> np.ndarray:
        """Volts as a voltmeter reports them (the device model's read noise)."""
        return self.device.read(volts, self.rng)
