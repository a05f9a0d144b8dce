"""Cholesky backends for the reduced Laplacian.

Each backend is built once from the sparsity pattern (the symbolic analysis: a fill-reducing
ordering). ``factor(matrix)`` then takes new values of the same pattern as conductances change
and returns a numeric factor, independent of earlier ones, whose ``solve`` takes many
right-hand sides at once.

- ``dense``: LAPACK Cholesky, for small or dense graphs (crossbars).
- ``cholmod``: supernodal CHOLMOD with a nested-dissection ordering, through scikit-sparse,
  an optional extra (``pip install .[cholmod]``).
- ``superlu``: SciPy's SuperLU, always available. The minimum-degree ordering of A + A^T is
  computed once; later factorisations reuse it with diagonal pivots only, which for an SPD
  matrix is a Cholesky in LU form. Measured faster than cholespy on lattices and able to reuse
  the ordering (docs/performance.md), so it is the pure-pip default.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from hwlearn.errors import SolverError

# Up to this many unknowns a dense factorisation is as fast as a sparse one: factor and 7 solves
# took 0.17 ms dense and sparse at 143 unknowns (a 12 x 12 lattice), 2.2 ms dense against
# 0.25 ms with SuperLU at 255. Graphs that fill in anyway (crossbars) stay dense much longer.
DENSE_MAX_UNKNOWNS = 150
DENSE_MAX_UNKNOWNS_IF_FILLED = 6000
DENSE_FILL_FRACTION = 0.05


def cholmod_available() -> bool:
    return importlib.util.find_spec("sksparse") is not None


class NumericFactor:
    """A factorised matrix: ``solve(rhs)`` for rhs of shape (n,) or (n, k)."""

    def __init__(self, solve: Callable[[np.ndarray], np.ndarray]):
        self._solve = solve

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        with BLAS_THREADS.for_size(rhs.shape[0]):
            return self._solve(rhs)


def _not_spd(exc: Exception) -> SolverError:
    return SolverError(f"the reduced Laplacian is not positive definite ({exc}); "
                       "check for non-positive or non-finite conductances")


class DenseCholesky:
    name = "dense"

    def __init__(self, pattern: sp.csc_matrix):
        self.shape = pattern.shape

    def factor(self, matrix: sp.csc_matrix) -> NumericFactor:
        try:
            with BLAS_THREADS.for_size(matrix.shape[0]):
                cf = sla.cho_factor(matrix.toarray(), lower=True, check_finite=False)
        except np.linalg.LinAlgError as exc:
            raise _not_spd(exc) from None
        return NumericFactor(lambda rhs: sla.cho_solve(cf, rhs, check_finite=False))


class CholmodCholesky:
    name = "cholmod"

    def __init__(self, pattern: sp.csc_matrix):
        from sksparse.cholmod import analyze

        # Nested dissection: on 2D lattices a quarter less fill and a third less factorisation
        # time than AMD, for a symbolic analysis that is paid once per network.
        self._symbolic = analyze(pattern, mode="supernodal", ordering_method="nesdis")
        self._n = pattern.shape[0]

    def factor(self, matrix: sp.csc_matrix) -> NumericFactor:
        from sksparse.cholmod import CholmodNotPositiveDefiniteError

        try:
            with BLAS_THREADS.for_size(self._n):
                numeric = self._symbolic.cholesky(matrix)  # reuses the symbolic analysis
        except CholmodNotPositiveDefiniteError as exc:
            raise _not_spd(exc) from None
        return NumericFactor(numeric.solve_A)


class _BlasThreads:
    """Limits BLAS threads around factorisations and solves of small systems.

    On 2 cores, OpenBLAS threads small triangular solves; when another process is busy the
    threads wait on each other: a 33 x 33 cho_solve with 32 right-hand sides took 14.5 ms on two
    threads against 0.1 ms on one (benchmarks/bench_solver.py, docs/performance.md). Below
    SINGLE_THREAD_BELOW unknowns one thread is never slower, loaded or not. The controller scans
    the loaded libraries once (1.5 ms); each later use costs about 20 microseconds.
    """

    SINGLE_THREAD_BELOW = 200_000

    def __init__(self):
        self._controller = None

    def for_size(self, unknowns: int):
        if unknowns >= self.SINGLE_THREAD_BELOW:
            return contextlib.nullcontext()
        if self._controller is None:
            from threadpoolctl import ThreadpoolController

            self._controller = ThreadpoolController()
        return self._controller.limit(limits=1, user_api="blas")


BLAS_THREADS = _BlasThreads()


class SuperLUCholesky:
    name = "superlu"

    def __init__(self, pattern: sp.csc_matrix):
        n = pattern.shape[0]
        # The ordering depends only on the pattern, but SuperLU wants values: analyse a
        # diagonally dominant matrix of this pattern.
        probe = sp.csc_matrix((-np.ones(pattern.nnz), pattern.indices, pattern.indptr),
                              shape=pattern.shape)
        probe.setdiag(np.diff(pattern.indptr) + 1.0)
        lu = spla.splu(probe, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                       options=dict(SymmetricMode=True))
        # scipy moves column i of A to position perm_c[i]; invert that to get the new order.
        order = np.empty(n, dtype=np.int64)
        order[lu.perm_c] = np.arange(n)
        self._order = order
        # Track where each stored value lands in the permuted matrix, so a refactorisation
        # permutes with one gather instead of a sparse reindex.
        tracker = sp.csc_matrix((np.arange(1, pattern.nnz + 1, dtype=float), pattern.indices,
                                 pattern.indptr), shape=pattern.shape)
        permuted = tracker[order][:, order].tocsc()
        permuted.sort_indices()
        self._gather = permuted.data.astype(np.int64) - 1
        self._indices, self._indptr = permuted.indices, permuted.indptr

    def factor(self, matrix: sp.csc_matrix) -> NumericFactor:
        permuted = sp.csc_matrix((matrix.data[self._gather], self._indices, self._indptr),
                                 shape=matrix.shape)
        try:
            with BLAS_THREADS.for_size(matrix.shape[0]):
                lu = spla.splu(permuted, permc_spec="NATURAL", diag_pivot_thresh=0.0,
                               options=dict(SymmetricMode=True))
        except RuntimeError as exc:
            raise _not_spd(exc) from None
        order = self._order

        def solve(rhs: np.ndarray) -> np.ndarray:
            out = np.empty(rhs.shape)
            out[order] = lu.solve(np.ascontiguousarray(rhs[order], dtype=float))
            return out

        return NumericFactor(solve)


BACKENDS = {"dense": DenseCholesky, "cholmod": CholmodCholesky, "superlu": SuperLUCholesky}


def choose_backend(pattern: sp.csc_matrix, requested: str = "auto") -> str:
    """Name of the backend to use for this pattern; ``requested`` may force one."""
    if requested != "auto":
        if requested not in BACKENDS:
            raise SolverError(f"unknown solver backend '{requested}'; "
                              f"allowed: auto, {', '.join(BACKENDS)}")
        if requested == "cholmod" and not cholmod_available():
            raise SolverError("solver backend 'cholmod' needs scikit-sparse: "
                              "pip install 'hwlearn[cholmod]' (see README)")
        return requested
    n = pattern.shape[0]
    fill = pattern.nnz / max(n * n, 1)
    if n <= DENSE_MAX_UNKNOWNS or (n <= DENSE_MAX_UNKNOWNS_IF_FILLED and fill >= DENSE_FILL_FRACTION):
        return "dense"
    return "cholmod" if cholmod_available() else "superlu"
