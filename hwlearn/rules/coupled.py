"""Coupled Learning (Stern et al., PRX 2021) with output clamps (PAPER.md section 3)."""

from __future__ import annotations

from hwlearn.rules.base import FREE, BilinearRule, Phase, Term


class CoupledLearning(BilinearRule):
    """Free phase, then inputs on and the outputs clamped to y_hat + eta (y - y_hat).

    Estimate (i_F^2 - i_C^2) / (2 eta), the order opposite to two-phase EP because a voltage
    clamp constrains the co-content, whose r-derivative is -i^2 / 2. It descends an
    effective-conductance-weighted error, not the plain MSE, so it only aligns with the exact
    gradient.
    """

    name = "coupled"

    def __init__(self, eta: float = 0.1):
        if not 0 < eta <= 1:
            raise ValueError(f"coupled: eta must be in (0, 1], got {eta!r}")
        self.eta = float(eta)
        self.phases = (Phase("clamped", True, "clamp", 1 - self.eta, self.eta),)
        self.terms = (Term(1 / (2 * self.eta), FREE, FREE), Term(-1 / (2 * self.eta), "clamped", "clamped"))
