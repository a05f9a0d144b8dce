"""Two-phase Equilibrium Propagation with series nudging (PAPER.md section 3, Algorithm 1)."""

from __future__ import annotations

from hwlearn.rules.base import FREE, BilinearRule, Phase, Term


class TwoPhase(BilinearRule):
    """Free phase, then inputs on and series sources beta (y_hat - y) on the output edges.

    Estimate (i_C^2 - i_F^2) / (2 beta): a difference of dissipated powers. CHOICE (PAPER.md):
    the 1/(2 beta) scaling puts it in gradient units so all rules share a learning rate. As
    beta -> 0 it tends to the gradient of e^T P_o i (output currents, not voltages) with O(beta)
    bias. ``symmetric=True`` nudges by +beta and -beta instead of 0 and +beta: estimate
    (i_+^2 - i_-^2) / (4 beta), bias O(beta^2).
    """

    def __init__(self, beta: float = 0.01, symmetric: bool = False):
        if not beta > 0:
            raise ValueError(f"two-phase: beta must be > 0, got {beta!r}")
        self.beta = float(beta)
        self.symmetric = bool(symmetric)
        b = self.beta
        if symmetric:
            self.name = "ep_symmetric"
            self.phases = (Phase("nudged_plus", True, "series", b, -b),
                           Phase("nudged_minus", True, "series", -b, b))
            self.terms = (Term(1 / (4 * b), "nudged_plus", "nudged_plus"),
                          Term(-1 / (4 * b), "nudged_minus", "nudged_minus"))
        else:
            self.name = "ep"
            self.phases = (Phase("nudged", True, "series", b, -b),)
            self.terms = (Term(1 / (2 * b), "nudged", "nudged"), Term(-1 / (2 * b), FREE, FREE))
