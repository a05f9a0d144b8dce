"""The phases and terms of a GEP member (docs/theory.md, "GEP"), written once for the ``gep``
family and for the named rules that are its members (``ep``, ``ep_symmetric``, ``coupled``).

Order 1 nudges with series sources beta (y_hat - y) on the outputs (EP's energy nudge); order 2
clamps the outputs to y_hat + beta (y - y_hat) (Coupled Learning's clamp). One-sided members
compare the free phase with +beta, centred ones +beta with -beta.
"""

from __future__ import annotations

from typing import ClassVar

from hwlearn.rules.base import BilinearRule
from hwlearn.rules.phases import FREE, Phase, Term

NUDGES = {1: "series", 2: "clamp"}


def nudge_phases(order: int, centered: bool, beta: float) -> tuple[Phase, ...]:
    b = beta
    if order == 1:  # series sources beta (y_hat - y): drive a y_hat + b y with a = beta, b = -beta
        plus = Phase("nudged_plus" if centered else "nudged", True, "series", b, -b)
        minus = Phase("nudged_minus", True, "series", -b, b)
    else:  # outputs clamped to y_hat + beta (y - y_hat) = (1 - beta) y_hat + beta y
        plus = Phase("clamped_plus" if centered else "clamped", True, "clamp", 1 - b, b)
        minus = Phase("clamped_minus", True, "clamp", 1 + b, -b)
    return (plus, minus) if centered else (plus,)


def nudge_terms(order: int, centered: bool, beta: float) -> tuple[Term, ...]:
    phases = nudge_phases(order, centered, beta)
    plus = phases[0].name
    low = phases[1].name if centered else FREE
    scale = 1 / (4 * beta) if centered else 1 / (2 * beta)
    # Energy (order 1) against co-content (order 2): the clamp's difference is taken the other way.
    high, low = (plus, low) if order == 1 else (low, plus)
    return (Term(scale, high, high), Term(-scale, low, low))


class NamedMember(BilinearRule):
    """A named rule that is a GEP member: ORDER and CENTERED fix the member, ``strength`` is its
    beta (the rule's own parameter, e.g. Coupled Learning's eta)."""

    ORDER: ClassVar[int]
    CENTERED: ClassVar[bool]

    @property
    def strength(self) -> float:
        return self.beta

    @property
    def phases(self) -> tuple[Phase, ...]:
        return nudge_phases(self.ORDER, self.CENTERED, self.strength)

    @property
    def terms(self) -> tuple[Term, ...]:
        return nudge_terms(self.ORDER, self.CENTERED, self.strength)
