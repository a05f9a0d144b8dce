"""Omega-learning: the exact gradient from one adjoint phase (docs/theory.md, "Omega-learning")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hwlearn.rules.base import BilinearRule
from hwlearn.rules.parameters import parameter
from hwlearn.rules.phases import FREE, Phase, Term
from hwlearn.rules.registry import register


@register
@dataclass(frozen=True)
class Omega(BilinearRule):
    """Free phase, then inputs off and currents j = eta (y_hat - y) beside the output resistors.

    The adjoint resistor currents are i_A = -(I - Omega^T) j, so the gradient is the local
    product -(i_F * i_A) / eta on every edge, exact for any eta > 0 (siemens: eta turns the
    error in volts into the drive in amps; it sets the adjoint signal's size on a bench).
    """

    name: ClassVar[str] = "omega"
    label: ClassVar[str] = "Omega-learning"

    eta: float = parameter(1e-3, "error-to-current gain of the adjoint drive j = eta (y_hat - y)", unit="siemens",
                           minimum=0.0, open_minimum=True)

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("adjoint", inputs_on=False, mode="current", a=self.eta, b=-self.eta),)

    @property
    def terms(self) -> tuple[Term, ...]:
        return (Term(-1.0 / self.eta, FREE, "adjoint"),)
