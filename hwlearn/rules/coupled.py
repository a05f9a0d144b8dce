"""Coupled Learning (Stern et al., PRX 2021) with output clamps (docs/theory.md, "Coupled Learning")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hwlearn.rules.nudges import NamedMember
from hwlearn.rules.parameters import parameter
from hwlearn.rules.registry import register


@register
@dataclass(frozen=True)
class CoupledLearning(NamedMember):
    """Free phase, then inputs on and the outputs clamped to y_hat + eta (y - y_hat).

    Estimate (i_F^2 - i_C^2) / (2 eta), the order opposite to two-phase EP because a voltage
    clamp constrains the co-content, whose r-derivative is -i^2 / 2. It descends an
    effective-conductance-weighted error, not the plain MSE, so it only aligns with the exact
    gradient.
    """

    name: ClassVar[str] = "coupled"
    label: ClassVar[str] = "Coupled Learning"
    units: ClassVar[str] = "A^2"
    ORDER: ClassVar[int] = 2
    CENTERED: ClassVar[bool] = False
    check_values: ClassVar[dict] = {"eta": 1e-3}

    eta: float = parameter(0.1, "clamp fraction: outputs clamped to y_hat + eta (y - y_hat)",
                           minimum=0.0, maximum=1.0, open_minimum=True)

    @property
    def strength(self) -> float:
        return self.eta
