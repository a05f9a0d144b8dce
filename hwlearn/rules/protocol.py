"""The Rule protocol: what training, plans and the simulator ask of any learning rule.

Every rule, phase-based (Omega, two-phase EP, Coupled Learning) or not (finite differences),
answers the same questions, so no caller needs to know which kind it holds:

- ``needs``: what it needs from a rig beyond measuring and programming (output drive modes,
  inputs switched off while connected), checked before a run starts (hwlearn.plans);
- ``phase_plan``: the phases a block of samples goes through, as a plan, measured on given edges
  (recorded as phase voltages; for a phase-based rule also the source of its estimate);
- ``rig_gradient``: its estimate for a batch on a rig, running its plans with ``run``;
- ``simulate``: its estimate for a batch from the solver, the same plans executed in memory
  (or an exact shortcut that gives the same numbers).

A rule is a small frozen dataclass holding only its parameters, declared with
hwlearn.rules.parameters.parameter and registered by name (hwlearn.rules.registry). Estimates are
(k,) arrays over the requested edges; their units are the rule's ``units`` (docs/theory.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from hwlearn.messages import Plan
from hwlearn.ports import Ports
from hwlearn.solver import Factorization

PlanRunner = Callable[[Plan], Any]
"""Runs one plan to its end and returns its value (on a rig: the engine, one sample per block)."""

Measure = Callable[[np.ndarray], np.ndarray]
"""What a voltmeter does to exact volts (read noise); None where it adds nothing."""


@dataclass(frozen=True)
class RigNeeds:
    """What a rule needs from a rig besides measuring readable edges and programming tunable ones.

    output_modes : drives beside the output resistors it uses: 'current' (current sources, also
                   the Norton form of series nudges) and/or 'clamp' (voltage clamps).
    inputs_off   : input sources switched to 0 V while staying connected.
    """

    output_modes: frozenset[str] = field(default_factory=frozenset)
    inputs_off: bool = False


@runtime_checkable
class Rule(Protocol):
    name: ClassVar[str]
    """The registry key and the experiment file's ``rule.name``."""
    label: ClassVar[str]
    """How reports name it, e.g. 'Omega-learning'."""
    units: ClassVar[str]
    """Units of the estimate: 'W' (= V^2/ohm, the gradient's own) or 'A^2' (a proxy's)."""
    check_values: ClassVar[Mapping[str, Any]]
    """Parameter values for comparing with the exact gradient (hwlearn gradcheck), where they
    differ from the defaults: small nudges shrink a nudged rule's bias."""

    @property
    def needs(self) -> RigNeeds: ...

    def phase_plan(self, ports: Ports, edges: np.ndarray, x: np.ndarray, y: np.ndarray,
                   known_ohms: np.ndarray) -> Plan:
        """Plan for inputs x (d_in, B) and targets y (d_out, B), measuring resistor voltages of
        ``edges`` in every phase; returns ({phase name: PhaseMeasurement (k, B)}, y_hat (d_out, B)).
        ``known_ohms`` (m,): the resistances the host believes, for drives and currents."""
        ...

    def rig_gradient(self, run: PlanRunner, ports: Ports, edges: np.ndarray, x: np.ndarray, y: np.ndarray,
                     known_ohms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(batch-mean estimate on ``edges`` (k,), measured free outputs (d_out, B)) on a rig,
        each plan run by ``run`` (one sample per block on a rig)."""
        ...

    def simulate(self, fz: Factorization, ports: Ports, edges: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                 known_ohms: np.ndarray | None = None, measure: Measure | None = None,
                 shortcut: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """As ``rig_gradient``, from the solver: ``fz`` factorises the true resistances,
        ``known_ohms`` (default: the true ones) are what the host believes, ``measure`` is applied
        to every measured array. ``shortcut``: allow an exact cheaper route (the whole-batch
        linear path) where nothing is measured with noise; False runs the phases as a bench would."""
        ...
