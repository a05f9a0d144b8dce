"""Generalized Equilibrium Propagation: the family of two-phase rules (docs/theory.md, "GEP").

A member is fixed by the order k of its nudge at the free equilibrium and by how the difference
is taken. k = 1 is EP's energy nudge: series sources beta (y_hat - y) on the output edges, adding
beta e^T P_o i to the energy. k = 2 is Coupled Learning's clamp: the outputs held at
y_hat + beta (y - y_hat), which costs beta^2 / 2 e^T K e at the free equilibrium (K: the outputs'
effective conductance matrix). One-sided members compare the free phase with +beta, centred ones
+beta with -beta. Every member divides by beta (not beta^k): with targets frozen when the nudge is
applied, as on a rig, the estimate is a + beta b exactly in a linear network, and a is the
gradient of the member's objective (hwlearn.rules.objectives): e^T P_o i for k = 1, the
effective-conductance-weighted error 1/2 e^T K e with K held for k = 2. One-sided members carry
the bias beta b (order 1 in beta); centred ones cancel it (exactly, in a linear network).

The named rules ``ep``, ``ep_symmetric`` and ``coupled`` are members (``as_member``): they take
their phases and terms from their member, kept under their names for existing experiment files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hwlearn.rules.base import BilinearRule
from hwlearn.rules.nudges import NUDGES, NamedMember, nudge_phases, nudge_terms
from hwlearn.rules.objectives import CURRENT_PROXY, LOSS, WEIGHTED_ERROR, Objective
from hwlearn.rules.parameters import parameter
from hwlearn.rules.phases import Phase, Term
from hwlearn.rules.registry import register


@register
@dataclass(frozen=True)
class GEP(BilinearRule):
    """A GEP member: order 1 (series nudge) or 2 (clamp), one-sided or centred, strength beta.

    order 1, one-sided : (i_+^2 - i_F^2) / (2 beta)            = ``ep``
    order 1, centred   : (i_+^2 - i_-^2) / (4 beta)            = ``ep_symmetric``
    order 2, one-sided : (i_F^2 - i_+^2) / (2 beta)            = ``coupled`` (eta = beta)
    order 2, centred   : (i_-^2 - i_+^2) / (4 beta)
    with i_+ / i_- the branch currents nudged by +beta / -beta. The clamp's order is opposite
    because a voltage clamp constrains the co-content, whose r-derivative is -i^2 / 2.
    """

    name: ClassVar[str] = "gep"
    label: ClassVar[str] = "Generalized EP"
    units: ClassVar[str] = "A^2"
    check_values: ClassVar[dict] = {"beta": 1e-3}

    order: int = parameter(1, "order k of the nudge at the free equilibrium: 1 series sources beta (y_hat - y) on "
                           "the outputs (EP's energy nudge), 2 outputs clamped to y_hat + beta (y - y_hat) "
                           "(Coupled Learning's clamp)", kind="int", minimum=1, maximum=2)
    centered: bool = parameter(False, "false: free phase and +beta (one-sided, bias O(beta)); true: +beta and "
                               "-beta (centred, no bias in a linear network)", kind="bool")
    beta: float = parameter(0.01, "nudge strength (pure number: volts of nudge or clamp shift per volt of error)",
                            minimum=0.0, open_minimum=True)

    @property
    def nudge(self) -> str:
        """'series' (order 1) or 'clamp' (order 2)."""
        return NUDGES[self.order]

    @property
    def phases(self) -> tuple[Phase, ...]:
        return nudge_phases(self.order, self.centered, self.beta)

    @property
    def terms(self) -> tuple[Term, ...]:
        return nudge_terms(self.order, self.centered, self.beta)

    @property
    def objective(self) -> Objective:
        """The objective whose gradient this member estimates as beta -> 0."""
        return CURRENT_PROXY if self.order == 1 else WEIGHTED_ERROR

    @property
    def member_label(self) -> str:
        """How reports name the member: 'gep(order=2,centered)'."""
        return f"gep(order={self.order}{',centered' if self.centered else ''})"



def as_member(rule) -> GEP | None:
    """The GEP member a rule is (``ep``, ``ep_symmetric``, ``coupled`` or a ``gep``), else None."""
    if isinstance(rule, GEP):
        return rule
    if isinstance(rule, NamedMember):
        return GEP(order=rule.ORDER, centered=rule.CENTERED, beta=rule.strength)
    return None


def members(beta: float) -> tuple[GEP, ...]:
    """The four members at one beta: order 1 and 2, one-sided and centred."""
    return tuple(GEP(order=k, centered=c, beta=beta) for k in (1, 2) for c in (False, True))


# Rules that estimate the gradient of the loss itself.
_LOSS_RULES = ("omega", "finite_difference")


def objective_of(rule) -> Objective | None:
    """The objective whose gradient ``rule`` estimates (in the limit of a small nudge): the loss
    for Omega-learning and finite differences, a GEP member's own objective for the members;
    None for a rule that names none."""
    member = as_member(rule)
    if member is not None:
        return member.objective
    return LOSS if rule.name in _LOSS_RULES else None
