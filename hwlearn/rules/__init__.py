"""Learning rules: each estimates grad_r L on a set of edges, on a rig or from the solver.

Every rule meets the Rule protocol (hwlearn.rules.protocol) and is registered by name
(hwlearn.rules.registry). To add a rule: docs/theory.md, "Adding a rule".
"""

# isort: off
# Registration order is the order in which rules are listed (config, docs, gradcheck).
from hwlearn.rules.omega import Omega
from hwlearn.rules.equilibrium import SymmetricTwoPhase, TwoPhase
from hwlearn.rules.coupled import CoupledLearning
from hwlearn.rules.finite_difference import FiniteDifference
from hwlearn.rules.gep import GEP, as_member, members, objective_of
# isort: on
from hwlearn.rules.base import BilinearRule
from hwlearn.rules.executor import SolverExecutor, execute
from hwlearn.rules.linear import LinearResponse
from hwlearn.rules.objectives import (
    CURRENT_PROXY,
    LOSS,
    OBJECTIVES,
    WEIGHTED_ERROR,
    Objective,
    effective_conductance,
    finite_differences,
)
from hwlearn.rules.parameters import Parameter, RuleParameterError, parameter, parameters
from hwlearn.rules.phases import FREE, Phase, PhaseMeasurement, Term
from hwlearn.rules.protocol import PlanRunner, RigNeeds, Rule
from hwlearn.rules.registry import RULES, make_rule, register, rule_class, rule_from_config, rule_names
from hwlearn.rules.simulate import per_sample_gradient, per_sample_gradient_and_outputs, simulate_phases

__all__ = [
    "CURRENT_PROXY", "FREE", "GEP", "LOSS", "OBJECTIVES", "RULES", "WEIGHTED_ERROR", "BilinearRule",
    "CoupledLearning", "FiniteDifference", "LinearResponse", "Objective", "Omega", "as_member",
    "effective_conductance", "finite_differences", "members", "objective_of",
    "Parameter", "Phase", "PhaseMeasurement", "PlanRunner", "RigNeeds", "Rule", "RuleParameterError",
    "SolverExecutor", "SymmetricTwoPhase", "Term", "TwoPhase", "execute", "make_rule", "parameter",
    "parameters", "per_sample_gradient", "per_sample_gradient_and_outputs", "register", "rule_class",
    "rule_from_config", "rule_names", "simulate_phases",
]
