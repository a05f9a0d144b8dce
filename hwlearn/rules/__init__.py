"""Learning rules: each estimates grad_r L on a set of edges from phase measurements."""

from hwlearn.rules.base import FREE, BilinearRule, Phase, PhaseMeasurement, Term
from hwlearn.rules.coupled import CoupledLearning
from hwlearn.rules.equilibrium import TwoPhase
from hwlearn.rules.finite_difference import FiniteDifference, mse_loss
from hwlearn.rules.linear import LinearResponse
from hwlearn.rules.omega import Omega
from hwlearn.rules.simulate import (
    per_sample_gradient,
    per_sample_gradient_and_outputs,
    simulate_phases,
)

__all__ = [
    "FREE", "BilinearRule", "CoupledLearning", "FiniteDifference", "LinearResponse", "Omega",
    "Phase", "PhaseMeasurement", "Term", "TwoPhase", "mse_loss", "per_sample_gradient",
    "per_sample_gradient_and_outputs", "simulate_phases",
]
