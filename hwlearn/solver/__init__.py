"""The Kirchhoff solver: sparse nodal analysis, factorised once, solved for many sources."""

from hwlearn.solver.backends import BACKENDS, cholmod_available
from hwlearn.solver.kirchhoff import Excitation, Factorization, KirchhoffSolver, State

__all__ = ["BACKENDS", "Excitation", "Factorization", "KirchhoffSolver", "State", "cholmod_available"]
