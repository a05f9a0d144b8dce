"""Two-phase Equilibrium Propagation with series nudging (docs/theory.md, "Two-phase rules")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hwlearn.rules.nudges import NamedMember
from hwlearn.rules.parameters import parameter
from hwlearn.rules.registry import register

BETA_DOC = "nudge strength: series sources beta (y_hat - y) on the output edges"


@register
@dataclass(frozen=True)
class TwoPhase(NamedMember):
    """Free phase, then inputs on and series sources beta (y_hat - y) on the output edges.

    Estimate (i_C^2 - i_F^2) / (2 beta): a difference of dissipated powers. CHOICE
    (docs/theory.md): the 1/(2 beta) scaling makes it independent of beta to first order, so one
    learning rate serves every beta. As beta -> 0 it tends to the gradient of e^T P_o i (output
    currents, not voltages; units A^2) with O(beta) bias.
    """

    name: ClassVar[str] = "ep"
    label: ClassVar[str] = "two-phase EP"
    units: ClassVar[str] = "A^2"
    ORDER: ClassVar[int] = 1
    CENTERED: ClassVar[bool] = False
    check_values: ClassVar[dict] = {"beta": 1e-3}

    beta: float = parameter(0.01, BETA_DOC, minimum=0.0, open_minimum=True)


@register
@dataclass(frozen=True)
class SymmetricTwoPhase(NamedMember):
    """Two-phase EP nudged by +beta and -beta instead of 0 and +beta: estimate
    (i_+^2 - i_-^2) / (4 beta), bias O(beta^2) (none at all in a linear network)."""

    name: ClassVar[str] = "ep_symmetric"
    label: ClassVar[str] = "two-phase EP, symmetric"
    units: ClassVar[str] = "A^2"
    ORDER: ClassVar[int] = 1
    CENTERED: ClassVar[bool] = True
    check_values: ClassVar[dict] = {"beta": 1e-3}

    beta: float = parameter(0.01, BETA_DOC, minimum=0.0, open_minimum=True)
