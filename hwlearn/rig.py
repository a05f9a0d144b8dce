"""The seam between learning and hardware: one interface for simulated and real benches.

A Rig speaks the physics of docs/theory.md, not instrument commands (docs/architecture.md).
Calls are per sample: a bench applies one input vector at a time. Edge indices refer to
``rig.network``; voltages are resistor voltages (v = p[a] - p[b] - s, see hwlearn.network), in
volts; currents in amps; resistances in ohms.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hwlearn.errors import HwlearnError
from hwlearn.network import Network

OUTPUT_MODES = ("open", "current", "clamp")


@dataclass(frozen=True)
class Capabilities:
    """What a rig can do.

    output_modes : the output drive modes available ('open' always is).
    readable     : edges whose resistor voltage the rig can measure (outputs included).
    tunable      : edges the rig can program.
    inputs_can_short : inputs can be set to 0 V while staying connected (Omega's adjoint phase).
    """

    output_modes: frozenset[str]
    readable: np.ndarray
    tunable: np.ndarray
    inputs_can_short: bool = True
    notes: tuple[str, ...] = field(default=())

    @property
    def learnable(self) -> np.ndarray:
        """Edges that are both readable and tunable: the only ones a rule can update."""
        return np.intersect1d(self.readable, self.tunable)


class RigError(HwlearnError, RuntimeError):
    """A rig operation failed or was refused (limits, bad reading, lost instrument)."""


class Rig(abc.ABC):
    """A bench, real or simulated. Use as a context manager: leaving it calls safe_state()."""

    network: Network
    capabilities: Capabilities
    # Set by the run engine: called as on_fault(kind, instrument, detail) for every fault of an
    # instrument link the rig met (a timeout, a garbled reply, a lost link), from any thread.
    on_fault: Callable[[str, str, str], None] | None = None

    @abc.abstractmethod
    def resistances(self) -> np.ndarray:
        """(m,) the rig's best knowledge of every edge resistance (calibrated / read back)."""

    @abc.abstractmethod
    def set_inputs(self, volts: np.ndarray | None) -> None:
        """Set the input edges' series sources to ``volts`` (d_in,); None or zeros: inputs
        off (0 V, still connected, so they act as shorts)."""

    @abc.abstractmethod
    def drive_outputs(self, mode: str, values: np.ndarray | None = None) -> None:
        """Drive the output edges: 'open' (voltmeter only), 'current' (amps (d_out,) beside the
        resistor, from a to b), 'clamp' (volts (d_out,) held across the resistor)."""

    @abc.abstractmethod
    def measure(self, edges: np.ndarray) -> np.ndarray:
        """(k,) resistor voltages of ``edges`` in one scan. Raises RigError for a reading that
        is overrange, NaN or taken in compliance: such values never reach a rule."""

    @abc.abstractmethod
    def program(self, edges: np.ndarray, ohms: np.ndarray) -> np.ndarray:
        """Write and verify resistances of tunable ``edges``; returns the achieved ohms
        (quantised, bounded by the device)."""

    @abc.abstractmethod
    def safe_state(self) -> list[str]:
        """Every source to 0 V / 0 A and off, boards to their safe code. Idempotent; never
        raises: returns the failures, one line per instrument that could not be made safe
        (naming it), empty when everything is safe. Callable from another thread while a
        measurement runs (an emergency stop)."""

    def idle(self) -> None:
        """Every source at 0 and off while the programmed resistances stay (a pause). The
        default drives the inputs to 0 V and the outputs open, which is all an ideal rig has."""
        self.set_inputs(None)
        self.drive_outputs("open")

    def ohms_range(self) -> tuple[np.ndarray, np.ndarray]:
        """(lowest, highest) ohms program() can reach per edge, (m,) each; updates are clipped
        to them. The default knows no bound of its own: (0, inf)."""
        m = self.network.n_edges
        return np.zeros(m), np.full(m, np.inf)

    def snapshot(self) -> dict[str, np.ndarray]:
        """Arrays that restore() turns back into this rig's state (checkpoints, dry runs). The
        default is what a bench can know: the resistances it holds."""
        return {"known_ohms": self.resistances()}

    def restore(self, snapshot: dict[str, np.ndarray], reprogram: bool = True) -> None:
        """Back to a snapshot: the default programs the tunable edges to the snapshot's
        resistances and verifies what they hold, naming every edge that cannot return. A rig that
        can tell whether it still holds the snapshot (a bench, by reading its devices back) lists
        every difference and refuses it unless ``reprogram``."""
        tunable = np.asarray(self.capabilities.tunable, dtype=np.int64)
        target = np.asarray(snapshot["known_ohms"], dtype=float)[tunable]
        achieved = np.asarray(self.program(tunable, target), dtype=float)
        wrong = np.flatnonzero(~np.isclose(achieved, target, rtol=1e-9, atol=0.0))
        if wrong.size:
            lines = [f"{self.network.edge_names[tunable[i]]} holds {achieved[i]:.6g} ohm, the snapshot "
                     f"has {target[i]:.6g} ohm" for i in wrong]
            raise RigError("the rig cannot return to the snapshot: " + "; ".join(lines))

    def exact_gradient(self, ports, edges: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """(k,) the exact batch-mean gradient of the loss on ``edges`` at the rig's true
        resistances, where the rig can know it (a simulation); None on a bench."""
        return None

    def holds(self) -> list[str]:
        """Conditions under which a run must not go on now (a board whose heartbeat was lost, an
        instrument that stopped answering), one line each naming the instrument; empty when the
        rig is fit. Read from what the rig knows, without I/O. The default has none."""
        return []

    def health(self) -> dict[str, dict]:
        """Each instrument's state, for an operator's display: instrument name -> JSON-able
        facts (connection, output state, last reading, compliance, exchange and fault counters).
        Read from what the rig already knows, without I/O. Empty for a rig without instruments
        (the default)."""
        return {}

    def take_records(self) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """What the rig did since the last call, for the step's record: scalars (wear counters:
        relay operations, pulses) and arrays of a fixed shape per name (a crossbar's pulse log).
        Read from what the rig already knows, without I/O; the default has none."""
        return {}, {}

    def describe(self) -> dict:
        """What the run trains on, for its records: kind and a one-line description."""
        return {"kind": type(self).__name__, "description": type(self).__name__}

    def close(self) -> list[str]:
        return self.safe_state()

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
