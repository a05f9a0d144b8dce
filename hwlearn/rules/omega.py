"""Omega-learning: the exact gradient from one adjoint phase (PAPER.md section 2)."""

from __future__ import annotations

from hwlearn.rules.base import FREE, BilinearRule, Phase, Term


class Omega(BilinearRule):
    """Free phase, then inputs off and currents j = eta (y_hat - y) beside the output resistors.

    The adjoint resistor currents are i_A = -(I - Omega^T) j, so the gradient is the local
    product -(i_F * i_A) / eta on every edge, exact for any eta > 0 (siemens: eta turns the
    error in volts into the drive in amps; it sets the adjoint signal's size on a bench).
    """

    name = "omega"

    def __init__(self, eta: float = 1e-3):
        if not eta > 0:
            raise ValueError(f"omega: eta must be > 0 (siemens), got {eta!r}")
        self.eta = float(eta)
        self.phases = (Phase("adjoint", inputs_on=False, mode="current", a=self.eta, b=-self.eta),)
        self.terms = (Term(-1.0 / self.eta, FREE, "adjoint"),)
