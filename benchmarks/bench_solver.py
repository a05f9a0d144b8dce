"""On-demand benchmark of hwlearn's Kirchhoff solver and of the full-batch Omega gradient.

Run from the repository root, with hwlearn importable (docs/performance.md has the results):

    PYTHONPATH=. python benchmarks/bench_solver.py [--quick] [--backend auto|cholmod|superlu|dense]
        [--max-edges N] [--cases NAMES] [--json OUT] [--seed S]
        [--no-pip-comparison | --pip-comparison-only]

For every network case (square lattices of about 1e3..1e6 edges, crossbars k x k for
k = 16, 64, 256) and batch size (1, 64, 1024) it times, with time.perf_counter:

- hwlearn's full-batch gradient: factorize(r) + LinearResponse(all edges).gradient(Omega()),
  and the forward pass factorize(r) + LinearResponse(outputs).outputs(x);
- hwlearn's per-sample path: per_sample_gradient on a given factorisation;
- two independent baselines (benchmarks/reference_gradients.py), printed as ratios baseline
  time / hwlearn time: the dense projector Omega, and SuperLU refactorised for every sample.

Each case runs in fresh subprocesses (this script with --case/--part), one per part, so that
the peak RSS reported is that case's own, native allocations (CHOLMOD, SuperLU) included.
Timings are the best of a few repeats; nothing here asserts a wall time. Once per run it also
compares the pure-pip factorisations (SciPy SuperLU as hwlearn uses it, cholespy) with CHOLMOD
on the reduced Laplacians of the 1e5- and 1e6-edge lattices.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

# benchmarks/ is the script's own directory, hence on sys.path; hwlearn comes from
# PYTHONPATH=. or an installed checkout.
import reference_gradients as ref

from hwlearn.builders import crossbar, lattice
from hwlearn.network import Network
from hwlearn.ports import Ports
from hwlearn.rules import LinearResponse, Omega, per_sample_gradient
from hwlearn.solver import BACKENDS, KirchhoffSolver, cholmod_available

BATCHES = (1, 64, 1024)
QUICK_BATCHES = (1, 64)
QUICK_MAX_EDGES = 10_000
OHMS_RANGE = (500.0, 2000.0)
LATTICE_INPUTS, LATTICE_OUTPUTS = 4, 3

# Repeats (best_time): at least a minimum number of runs, then more while a time budget
# (seconds) lasts, never more than MAX_RUNS.
MAX_RUNS = 5
FAST_PATH_MIN_RUNS = 3  # the full-batch path is the headline figure: never a single run
FAST_PATH_BUDGET_S = 3.0
SLOW_PATH_BUDGET_S = 5.0

DENSE_BASELINE_MAX_EDGES = 12_000  # a dense Omega of 12000^2 doubles is about 1.1 GiB
SPLU_VERIFY_MAX_EDGES = 12_000  # the per-sample reference is cross-checked where that is cheap
VERIFY_BATCH = 5
VERIFY_TOLERANCE = 1e-8
SPLU_MIN_SAMPLES = 3  # per-sample baseline: time at least this many samples, then scale to B
SPLU_BUDGET_S = 10.0
DENSE_BACKEND_MAX_UNKNOWNS = 20_000  # forced 'dense' beyond this needs > 3 GiB for L alone

PIP_LATTICES = (224, 707)
PIP_SOLVERS = ("superlu", "cholespy", "cholmod")
PIP_RIGHT_HAND_SIDES = LATTICE_INPUTS + LATTICE_OUTPUTS  # one solve per input and output edge

RESULT_TAG = "BENCH-RESULT "


# ============================================================================ cases and data
@dataclass(frozen=True)
class Case:
    kind: str  # 'lattice' (size = nodes per side) or 'crossbar' (size = lines per side)
    size: int

    @property
    def name(self) -> str:
        return f"{self.kind}{self.size}"

    @property
    def n_edges(self) -> int:
        k = self.size
        return 2 * k * (k - 1) if self.kind == "lattice" else k * k + 2 * k

    def build(self) -> Network:
        if self.kind == "lattice":
            return lattice(self.size, self.size, inputs=LATTICE_INPUTS, outputs=LATTICE_OUTPUTS)
        return crossbar(self.size, self.size)


CASES = tuple([Case("lattice", n) for n in (23, 71, 224, 707)]
              + [Case("crossbar", k) for k in (16, 64, 256)])


def case_named(name: str) -> Case:
    for case in CASES:
        if case.name == name:
            return case
    raise SystemExit(f"unknown case '{name}'; known: {', '.join(c.name for c in CASES)}")


@dataclass
class Workload:
    """A case's network with seeded random resistances, and seeded random batches."""

    case: Case
    network: Network
    ports: Ports
    resistance: np.ndarray
    all_edges: np.ndarray
    seed: int

    @classmethod
    def of(cls, case: Case, seed: int) -> Workload:
        network = case.build()
        resistance = np.random.default_rng(seed).uniform(*OHMS_RANGE, size=network.n_edges)
        return cls(case, network, Ports.from_roles(network), resistance,
                   np.arange(network.n_edges), seed)

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs x (d_in, size) in volts and targets y (d_out, size), the same in every process."""
        rng = np.random.default_rng([self.seed, size])
        x = rng.uniform(-1.0, 1.0, size=(self.ports.n_inputs, size))
        y = rng.uniform(-0.1, 0.1, size=(self.ports.n_outputs, size))
        return x, y


def backend_for(case: Case, requested: str) -> str:
    """--backend applies to the lattices; crossbars always let hwlearn choose."""
    return requested if case.kind == "lattice" else "auto"


def dense_backend_refusal(work: Workload, backend: str) -> str | None:
    """Why a forced dense backend is not run on this case, or None if it is."""
    unknowns = work.network.n_nodes - 1  # the benchmark networks have no ideal sources
    if backend != "dense" or unknowns <= DENSE_BACKEND_MAX_UNKNOWNS:
        return None
    gib = unknowns * unknowns * ref.BYTES_PER_FLOAT / 2**30
    return f"dense backend skipped: L would need {gib:.0f} GiB"


# ============================================================================ measuring
@dataclass
class Timing:
    seconds: float  # best of the runs
    runs: int
    value: Any  # what the last run returned


def best_time(fn: Callable[[], Any], *, min_runs: int = 1, budget: float = SLOW_PATH_BUDGET_S) -> Timing:
    """Best wall time of fn() over at least min_runs runs, more while within budget seconds.

    Best rather than median: on a shared machine noise only ever adds time.
    """
    times, value = [], None
    start = time.perf_counter()
    while len(times) < MAX_RUNS and (len(times) < min_runs or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return Timing(min(times), len(times), value)


def relative_error(value: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(value - reference) / np.linalg.norm(reference))


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


class ForeignLoad:
    """CPU time that other processes (and the hypervisor's steal) used while this one ran, in
    cores. The machine may be shared with other work; this says how much ran beside a
    measurement, so that a slow figure can be told from a busy machine.
    """

    def __init__(self):
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return time.perf_counter(), busy, usage.ru_utime + usage.ru_stime

    def cores(self) -> float:
        wall0, busy0, own0 = self._start
        wall1, busy1, own1 = self._sample()
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / max(wall1 - wall0, 1e-9))


def progress(work: Workload, message: str) -> None:
    """Progress of a child on stderr, so long runs show they are alive."""
    print(f"  [{work.case.name}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- hwlearn paths
def full_batch_gradient(solver: KirchhoffSolver, work: Workload, x, y) -> np.ndarray:
    """grad_r on every edge from a fresh numeric factorisation: the path training uses."""
    fz = solver.factorize(work.resistance)
    return LinearResponse(fz, work.ports, work.all_edges).gradient(Omega(), x, y)


def forward_outputs(solver: KirchhoffSolver, work: Workload, x) -> np.ndarray:
    """The batch's outputs from a fresh numeric factorisation."""
    fz = solver.factorize(work.resistance)
    return LinearResponse(fz, work.ports, work.ports.outputs).outputs(x)


def measure_batch_path(work: Workload, backend: str, batches) -> dict:
    refusal = dense_backend_refusal(work, backend)
    if refusal:
        return {"skipped": refusal}
    t0 = time.perf_counter()
    solver = KirchhoffSolver(work.network, backend=backend)
    analyse_s = time.perf_counter() - t0
    factor = best_time(lambda: solver.factorize(work.resistance),
                       min_runs=FAST_PATH_MIN_RUNS, budget=FAST_PATH_BUDGET_S)
    progress(work, f"{solver.backend}: analyse {analyse_s:.3g} s, factorise {factor.seconds:.3g} s")
    rows = {}
    for size in batches:
        x, y = work.batch(size)
        grad = best_time(partial(full_batch_gradient, solver, work, x, y),
                         min_runs=FAST_PATH_MIN_RUNS, budget=FAST_PATH_BUDGET_S)
        fwd = best_time(partial(forward_outputs, solver, work, x),
                        min_runs=FAST_PATH_MIN_RUNS, budget=FAST_PATH_BUDGET_S)
        progress(work, f"B={size}: full-batch gradient {grad.seconds:.3g} s, forward {fwd.seconds:.3g} s")
        rows[str(size)] = {"gradient_s": grad.seconds, "gradient_runs": grad.runs,
                           "forward_s": fwd.seconds, "forward_runs": fwd.runs}
    return {"backend": solver.backend, "unknowns": solver.topology.n_reduced, "analyse_s": analyse_s,
            "factor_s": factor.seconds, "factor_runs": factor.runs, "batches": rows}


def measure_per_sample_path(work: Workload, backend: str, batches) -> dict:
    refusal = dense_backend_refusal(work, backend)
    if refusal:
        return {"skipped": refusal}
    solver = KirchhoffSolver(work.network, backend=backend)
    fz = solver.factorize(work.resistance)
    rows = {}
    for size in batches:
        x, y = work.batch(size)
        timing = best_time(partial(per_sample_gradient, fz, work.ports, Omega(), x, y, work.all_edges))
        # Both hwlearn paths compute the same gradient; record how closely they agree.
        batch_grad = LinearResponse(fz, work.ports, work.all_edges).gradient(Omega(), x, y)
        rate = work.network.n_edges * size / timing.seconds
        progress(work, f"B={size}: per-sample {timing.seconds:.3g} s, {rate:.3g} edge-samples/s")
        rows[str(size)] = {"seconds": timing.seconds, "runs": timing.runs, "edge_samples_per_s": rate,
                           "rel_diff_vs_full_batch": relative_error(timing.value, batch_grad)}
    return {"backend": solver.backend, "batches": rows}


# ---------------------------------------------------------------------------- baselines
def hwlearn_reference_gradient(work: Workload, x, y) -> tuple[float, np.ndarray]:
    """(loss, grad_r) from hwlearn's default backend, to check the baselines against."""
    fz = KirchhoffSolver(work.network).factorize(work.resistance)
    response = LinearResponse(fz, work.ports, work.all_edges)
    return response.loss(x, y), response.gradient(Omega(), x, y)


def check_close(what: str, value: np.ndarray, reference: np.ndarray) -> float:
    """Relative error of a baseline against hwlearn; a wrong baseline stops the benchmark."""
    error = relative_error(value, reference)
    if not error < VERIFY_TOLERANCE:  # explicit, so that python -O cannot skip it
        raise AssertionError(f"{what} disagrees with hwlearn: relative error {error:.2e}")
    return error


def time_dense_baseline(work: Workload, problem: ref.Problem, batches) -> dict:
    m = problem.n_edges
    if m > DENSE_BASELINE_MAX_EDGES:
        return {"skipped": f"n/a (Omega would need {ref.omega_gibibytes(m):.1f} GiB)"}
    form = best_time(lambda: ref.dense_omega(problem), budget=SLOW_PATH_BUDGET_S)
    omega = form.value
    x, y = work.batch(VERIFY_BATCH)
    loss, grad = ref.dense_projector_gradient(problem, omega, x, y)
    expected_loss, expected_grad = hwlearn_reference_gradient(work, x, y)
    error = check_close("dense projector gradient", grad, expected_grad)
    check_close("dense projector loss", np.array([loss]), np.array([expected_loss]))
    rows = {}
    for size in batches:
        x, y = work.batch(size)
        products = best_time(partial(ref.dense_projector_gradient, problem, omega, x, y))
        rows[str(size)] = {"seconds": form.seconds + products.seconds, "batch_products_s": products.seconds}
    progress(work, f"dense baseline: Omega formed in {form.seconds:.3g} s (verified, rel. error {error:.1e})")
    return {"form_omega_s": form.seconds, "verified_rel_error": error, "batches": rows}


def verify_splu_baseline(work: Workload, problem: ref.Problem) -> float:
    x, y = work.batch(VERIFY_BATCH)
    _, expected = hwlearn_reference_gradient(work, x, y)
    return check_close("per-sample SuperLU gradient", ref.splu_batch_gradient(problem, x, y), expected)


def time_splu_baseline(work: Workload, problem: ref.Problem, batches) -> dict:
    """Per-sample refactorisation, timed sample by sample on the largest batch; batches
    beyond what the time budget covered are scaled from the samples that were timed."""
    x, y = work.batch(max(batches))
    elapsed: list[float] = []  # seconds after each sample
    total = np.zeros(problem.n_edges)  # summed as a real batch gradient would be, inside the timing
    start = time.perf_counter()
    for k in range(x.shape[1]):
        total += ref.splu_sample_gradient(problem, x[:, k], y[:, k])
        elapsed.append(time.perf_counter() - start)
        if len(elapsed) >= SPLU_MIN_SAMPLES and elapsed[-1] > SPLU_BUDGET_S:
            break
    done = len(elapsed)
    rows = {}
    for size in batches:
        timed = min(size, done)
        seconds = elapsed[timed - 1] * size / timed
        rows[str(size)] = {"seconds": seconds, "timed_samples": timed}
    per_sample = elapsed[-1] / done
    progress(work, f"per-sample SuperLU baseline: {per_sample:.3g} s per sample ({done} timed)")
    return {"seconds_per_sample": per_sample, "timed_samples": done, "batches": rows}


def measure_baselines(work: Workload, batches) -> dict:
    problem = ref.Problem.of(work.network, work.resistance, work.ports.gain)
    result = {"dense": time_dense_baseline(work, problem, batches)}
    if problem.n_edges <= SPLU_VERIFY_MAX_EDGES:
        result["splu_verified_rel_error"] = verify_splu_baseline(work, problem)
    result["splu"] = time_splu_baseline(work, problem, batches)
    return result


# ---------------------------------------------------------------------------- pure-pip solvers
def reduced_laplacian(work: Workload):
    """L = B~ G B~^T in canonical CSC form (sorted, no duplicates), from the incidence matrix."""
    matrix = ref.Problem.of(work.network, work.resistance).laplacian()
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def cholespy_factor(lower_coo, n: int):
    """cholespy analyses and factorises on construction; it cannot reuse an ordering."""
    import cholespy

    return cholespy.CholeskySolverD(n, lower_coo.row.astype(np.int32), lower_coo.col.astype(np.int32),
                                    lower_coo.data.astype(np.float64), cholespy.MatrixType.COO)


def cholespy_solve(solver, rhs: np.ndarray) -> np.ndarray:
    out = np.empty_like(rhs)
    solver.solve(rhs, out)
    return out


def measure_pip_solver(work: Workload, solver_name: str) -> dict:
    import scipy.sparse as sp

    matrix = reduced_laplacian(work)
    n = matrix.shape[0]
    rhs = np.ascontiguousarray(np.random.default_rng(work.seed).standard_normal((n, PIP_RIGHT_HAND_SIDES)))
    analyse_s = None
    if solver_name == "cholespy":
        # CHOLMOD reads the lower triangle of a symmetric matrix; give cholespy exactly that.
        lower = sp.tril(matrix).tocoo()
        factor = best_time(lambda: cholespy_factor(lower, n), min_runs=2)
        solve = best_time(lambda: cholespy_solve(factor.value, rhs), min_runs=FAST_PATH_MIN_RUNS)
    else:
        t0 = time.perf_counter()
        backend = BACKENDS[solver_name](matrix)  # hwlearn's backend: symbolic analysis once
        analyse_s = time.perf_counter() - t0
        factor = best_time(lambda: backend.factor(matrix), min_runs=2)
        solve = best_time(lambda: factor.value.solve(rhs), min_runs=FAST_PATH_MIN_RUNS)
    residual = relative_error(matrix @ solve.value, rhs)
    progress(work, f"{solver_name}: factorise {factor.seconds:.3g} s, solve {solve.seconds:.3g} s")
    return {"solver": solver_name, "unknowns": n, "analyse_s": analyse_s, "factor_s": factor.seconds,
            "factor_runs": factor.runs, "solve_s": solve.seconds, "residual": residual}


def run_part(case_name: str, part: str, backend: str, batches, seed: int) -> dict:
    """Child side: measure one part of one case and return the result record."""
    load = ForeignLoad()
    work = Workload.of(case_named(case_name), seed)
    setup_rss = peak_rss_gib()
    if part == "batch":
        result = measure_batch_path(work, backend, batches)
    elif part == "per-sample":
        result = measure_per_sample_path(work, backend, batches)
    elif part == "baselines":
        result = measure_baselines(work, batches)
    elif part.startswith("pip:"):
        result = measure_pip_solver(work, part.removeprefix("pip:"))
    else:
        raise SystemExit(f"unknown part '{part}'")
    result.update(setup_peak_rss_gib=setup_rss, peak_rss_gib=peak_rss_gib(), foreign_load_cores=load.cores())
    return result


# ============================================================================ parent: orchestration
class ChildFailed(RuntimeError):
    pass


def run_child(case: Case, part: str, backend: str, batches, seed: int) -> dict:
    """Run one part in a fresh interpreter; its stderr (progress) passes through."""
    command = [sys.executable, str(Path(__file__).resolve()), "--case", case.name, "--part", part,
               "--backend", backend, "--batches", ",".join(map(str, batches)), "--seed", str(seed)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_TAG)]
    if done.returncode != 0 or not lines:
        raise ChildFailed(f"{case.name} {part} failed (exit code {done.returncode})")
    return json.loads(lines[-1][len(RESULT_TAG):])


class MarkdownTable:
    """A pipe table printed row by row, readable in a terminal and pasteable into Markdown."""

    def __init__(self, title: str, columns: list[str]):
        self.columns = columns
        print(f"\n### {title}\n", flush=True)
        print("| " + " | ".join(columns) + " |")
        print("|" + "|".join("---" for _ in columns) + "|", flush=True)

    def row(self, values: list[str]) -> None:
        print("| " + " | ".join(values) + " |", flush=True)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def ratio(baseline: float | None, ours: float | None) -> str:
    if baseline is None or ours is None:
        return "-"
    value = baseline / ours
    return f"{value:,.0f}x" if value >= 100 else f"{value:.3g}x"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:.3g} M"


def gib(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


TIMING_COLUMNS = ["case", "edges", "backend", "B", "gradient s", "forward s", "per-sample s",
                  "edge-samples/s", "dense / gradient", "splu / gradient", "splu / per-sample", "notes"]


def timing_rows(case: Case, result: dict, batches) -> list[list[str]]:
    """Rows of the timing table for one case (one per batch size)."""
    batch = result["batch"]
    if "skipped" in batch:
        blanks = ["-"] * (len(TIMING_COLUMNS) - 5)
        return [[case.name, f"{case.n_edges:,}", "-", str(b), *blanks, batch["skipped"]] for b in batches]
    per_sample, base = result["per_sample"], result["baselines"]
    rows = []
    for size in batches:
        key = str(size)
        grad = batch["batches"][key]["gradient_s"]
        ps = per_sample["batches"][key]
        dense = base["dense"]
        splu = base["splu"]["batches"][key]
        notes = []
        if "skipped" in dense:
            notes.append(f"dense {dense['skipped']}")
        if splu["timed_samples"] < size:
            notes.append(f"splu timed on {splu['timed_samples']} of {size} samples")
        rows.append([
            case.name, f"{case.n_edges:,}", batch["backend"], str(size), seconds(grad),
            seconds(batch["batches"][key]["forward_s"]), seconds(ps["seconds"]),
            rate(ps["edge_samples_per_s"]),
            "n/a" if "skipped" in dense else ratio(dense["batches"][key]["seconds"], grad),
            ratio(splu["seconds"], grad),
            ratio(splu["seconds"], batch["factor_s"] + ps["seconds"]),
            "; ".join(notes),
        ])
    return rows


CASE_COLUMNS = ["case", "edges", "unknowns", "backend", "analyse s", "factorise s", "dense Omega s",
                "splu s/sample", "peak RSS batch GiB", "peak RSS per-sample GiB",
                "peak RSS baselines GiB", "foreign load (cores)"]


def case_row(case: Case, result: dict) -> list[str]:
    batch = result["batch"]
    if "skipped" in batch:
        blanks = ["-"] * (len(CASE_COLUMNS) - 3)
        return [case.name, f"{case.n_edges:,}", *blanks, f"{batch['foreign_load_cores']:.2f}"]
    per_sample, base = result["per_sample"], result["baselines"]
    load = max(part["foreign_load_cores"] for part in (batch, per_sample, base))
    return [
        case.name, f"{case.n_edges:,}", f"{batch['unknowns']:,}", batch["backend"],
        seconds(batch["analyse_s"]), seconds(batch["factor_s"]),
        seconds(base["dense"].get("form_omega_s")), seconds(base["splu"]["seconds_per_sample"]),
        gib(batch["peak_rss_gib"]), gib(per_sample["peak_rss_gib"]), gib(base["peak_rss_gib"]),
        f"{load:.2f}",
    ]


PIP_COLUMNS = ["lattice", "edges", "unknowns", "solver", "analyse s", "factorise s",
               f"solve {PIP_RIGHT_HAND_SIDES} rhs s", "residual", "peak RSS GiB", "foreign load (cores)"]


def pip_row(case: Case, result: dict) -> list[str]:
    return [case.name, f"{case.n_edges:,}", f"{result['unknowns']:,}", result["solver"],
            seconds(result["analyse_s"]), seconds(result["factor_s"]), seconds(result["solve_s"]),
            f"{result['residual']:.1e}", gib(result["peak_rss_gib"]), f"{result['foreign_load_cores']:.2f}"]


def run_case(case: Case, args, batches) -> dict:
    """All parts of one case, each in its own subprocess."""
    backend = backend_for(case, args.backend)
    result = {"backend_requested": backend, "batch": run_child(case, "batch", backend, batches, args.seed)}
    if "skipped" in result["batch"]:  # a forced dense backend that would not fit: nothing to compare
        return result
    result["per_sample"] = run_child(case, "per-sample", backend, batches, args.seed)
    result["baselines"] = run_child(case, "baselines", backend, batches, args.seed)
    return result


def run_cases(cases, args, batches, record: dict) -> None:
    table = MarkdownTable("Timings (best of repeats, seconds; ratios are baseline time / hwlearn time)",
                          TIMING_COLUMNS)
    results = {}
    for case in cases:
        result = run_case(case, args, batches)
        results[case] = result
        record["cases"][case.name] = result
        for row in timing_rows(case, result, batches):
            table.row(row)
    table = MarkdownTable("Cases (numeric factorisation alone; one subprocess per part)", CASE_COLUMNS)
    for case, result in results.items():
        table.row(case_row(case, result))


def selected_cases(args) -> list[Case]:
    wanted = CASES if args.cases is None else [case_named(name.strip()) for name in args.cases.split(",")]
    return [case for case in wanted if case.n_edges <= args.max_edges]


def solver_installed(name: str) -> bool:
    if name == "cholmod":
        return cholmod_available()
    return name != "cholespy" or importlib.util.find_spec("cholespy") is not None


def run_pip_comparison(args, record: dict) -> None:
    cases = [Case("lattice", n) for n in PIP_LATTICES if Case("lattice", n).n_edges <= args.max_edges]
    if not cases:
        return
    table = MarkdownTable("Pure-pip factorisations of the reduced Laplacian (best of repeats)", PIP_COLUMNS)
    for case in cases:
        for solver in PIP_SOLVERS:
            if not solver_installed(solver):
                print(f"({solver} not installed: skipped)", flush=True)
                continue
            result = run_child(case, f"pip:{solver}", "auto", (), args.seed)
            record["pip"].setdefault(case.name, {})[solver] = result
            table.row(pip_row(case, result))


# ---------------------------------------------------------------------------- machine description
def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def blas_libraries() -> list[str]:
    """BLAS builds loaded by numpy/scipy and by CHOLMOD (scikit-sparse), with their threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["(threadpoolctl not installed)"]
    if cholmod_available():
        import sksparse.cholmod  # noqa: F401  (loads the BLAS CHOLMOD links against)
    return [f"{info['internal_api']} {info.get('version')} ({Path(info['filepath']).name}, "
            f"{info['num_threads']} threads)" for info in threadpool_info() if info["user_api"] == "blas"]


def optional_packages() -> str:
    """Versions of the optional solver packages, e.g. 'scikit-sparse 0.4.16, cholespy 2.2.0'."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("scikit-sparse", "threadpoolctl", "cholespy"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def describe_machine() -> dict:
    import scipy

    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_model(),
            "cores": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
            "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "packages": optional_packages(), "blas": blas_libraries()}


def print_machine(machine: dict, args, batches) -> None:
    print(f"hwlearn solver benchmark, {machine['date']}")
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB; "
          f"Python {machine['python']}, numpy {machine['numpy']}, scipy {machine['scipy']}, "
          f"{machine['packages']}")
    print("BLAS: " + "; ".join(machine["blas"]))
    print(f"backend for lattices: {args.backend} (crossbars: auto); batches: {list(batches)}; "
          f"seed {args.seed}; resistances uniform {OHMS_RANGE[0]:g}..{OHMS_RANGE[1]:g} ohm")
    print(f"timings: best of {FAST_PATH_MIN_RUNS}-{MAX_RUNS} runs for the full-batch path and "
          f"factorisations, of 1-{MAX_RUNS} runs for slower parts (repeats stop after a few seconds)",
          flush=True)


# ============================================================================ command line
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"cases up to {QUICK_MAX_EDGES:,} edges and batches {QUICK_BATCHES} only")
    parser.add_argument("--backend", default="auto", choices=["auto", *BACKENDS],
                        help="solver backend for the lattices (crossbars always use auto)")
    parser.add_argument("--max-edges", type=int, default=None, help="skip cases with more edges")
    parser.add_argument("--cases", default=None,
                        help="comma-separated case names to run (default: all), e.g. lattice707,crossbar256")
    parser.add_argument("--json", type=Path, default=None, help="also write every result to this file")
    parser.add_argument("--seed", type=int, default=0, help="seed of resistances, inputs and targets")
    skip = parser.add_mutually_exclusive_group()
    skip.add_argument("--no-pip-comparison", action="store_true",
                      help="skip the SuperLU / cholespy / CHOLMOD factorisation comparison")
    skip.add_argument("--pip-comparison-only", action="store_true",
                      help="run only that comparison")
    # Internal: a child process measuring one part of one case.
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--batches", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    limit = args.max_edges if args.max_edges is not None else float("inf")
    args.max_edges = min(limit, QUICK_MAX_EDGES) if args.quick else limit
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.case:
        batches = tuple(int(b) for b in args.batches.split(",") if b)
        result = run_part(args.case, args.part, args.backend, batches, args.seed)
        print(RESULT_TAG + json.dumps(result), flush=True)
        return 0
    if args.backend == "cholmod" and not cholmod_available():
        raise SystemExit("--backend cholmod needs scikit-sparse (pip install 'hwlearn[cholmod]')")
    batches = QUICK_BATCHES if args.quick else BATCHES
    machine = describe_machine()
    print_machine(machine, args, batches)
    record = {"machine": machine, "args": {k: str(v) for k, v in vars(args).items()},
              "cases": {}, "pip": {}}
    try:
        if not args.pip_comparison_only:
            run_cases(selected_cases(args), args, batches, record)
        if not args.no_pip_comparison:
            run_pip_comparison(args, record)
    finally:  # keep what was measured even if a later case fails
        if args.json:
            args.json.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
