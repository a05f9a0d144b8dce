"""What the trainer trains: a simulated network or a bench, behind one small interface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from hwlearn.errors import HwlearnError
from hwlearn.network import Network
from hwlearn.ports import Ports
from hwlearn.rig import Rig

if TYPE_CHECKING:
    from hwlearn.engine import RunEngine


class StepDiscarded(HwlearnError):
    """A step was given up before anything was programmed (a stop asked for while the step waited
    for an operator): the trainer ends the run at the step's start, checkpointed, as a stop."""


class Substrate(Protocol):
    """A trainable network. ``learnable`` are the edges updates may touch (readable, tunable and
    not frozen by the mask); every array over them follows that order."""

    network: Network
    ports: Ports
    learnable: np.ndarray
    description: str
    rig: Rig | None  # what an engine makes safe and runs plans on; None for the fast path

    def attach(self, engine: RunEngine) -> None:
        """Run plans through ``engine`` from now on (a substrate without plans ignores it)."""

    def start(self) -> None:
        """A run begins from the experiment's initial state (new, or resumed with no checkpoint)."""

    def resistances(self) -> np.ndarray:
        """(m,) the resistances the host knows (calibration or read-back), ohms."""

    def gradient(self, rule, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(batch-mean gradient estimate on ``learnable`` (k,), measured free outputs (d_out, B))."""

    def exact_gradient(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """(k,) the exact batch-mean gradient on ``learnable``, where the substrate can compute
        it (simulations); None otherwise."""

    def program(self, ohms: np.ndarray) -> np.ndarray:
        """Write ``ohms`` (k,) to the learnable edges; returns what the host now knows they hold."""

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """(d_out, B) free-phase outputs, for evaluation."""

    def phase_voltages(self, rule, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """Resistor voltages of every edge in each of the rule's phases for ONE sample (m,)."""

    def state(self) -> dict[str, np.ndarray]:
        """Arrays that, with ``restore``, put the substrate back exactly (checkpoints)."""

    def restore(self, state: dict[str, np.ndarray]) -> None: ...
