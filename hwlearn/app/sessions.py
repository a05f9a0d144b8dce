"""Prepared runs: an experiment on the simulated rig or on a bench, ready to dry-run and start.

Shared by ``hwlearn run`` (which trains in its own thread and prints) and ``hwlearn gui`` (which
starts runs in a worker thread and watches their documents). The GUI knows these objects only
through the small protocol of gui/launcher.py:

    launcher = Launcher(runs_root="runs")
    prepared = launcher.prepare("examples/bench-teacher-omega.toml", bench="examples/virtual-bench.toml")
    launched = prepared.launch(views=[bridge], dry_run=True)   # the plan on the bench's simulated twin
    launched.engine.pause() ...                                # the engine's verbs, any thread
    report = launched.release()                                # after the end: the bench closed, safe

Everything is validated when a run is prepared, before any instrument is opened; each launch
builds the experiment afresh from its config (a run consumes its random generators).
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drivers.bench import Bench, CrossbarBench, bench_class, open_bench
from hwlearn.app.launch import simulated_substrate
from hwlearn.config import load_experiment
from hwlearn.config.bench import BenchConfig, load_bench_file
from hwlearn.config.probe import probe_limits, reading_accuracy
from hwlearn.documents import Subscriber
from hwlearn.engine import RunEngine
from hwlearn.errors import ConfigError, HwlearnError
from hwlearn.experiment import Experiment, build_experiment
from hwlearn.plans import check_rule_on_rig
from hwlearn.rig import RigError
from hwlearn.rules import LinearResponse
from hwlearn.rules.probe import probe_modes, probe_plan
from hwlearn.rules.probe_design import design_probes
from hwlearn.runstore import RunReader
from hwlearn.solver import KirchhoffSolver
from hwlearn.training.probing import ProbeSettings, choose_plan
from hwlearn.training.rig_substrate import RigSubstrate
from hwlearn.training.session import TrainingSession
from simulator.virtual_bench import VirtualBench


def default_run_dir(config: dict, root: Path = Path("runs")) -> Path:
    """runs/<name>-<UTC time>-seed<N>, made unique with -2, -3, ..."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    base = Path(root) / f"{config['name']}-{stamp}-seed{config['seeds']['base']}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = Path(f"{base}-{n}")
    return candidate


def describe(experiment: Experiment, substrate_description: str) -> str:
    """Three lines: the rule, the task, the network and what it runs on."""
    cfg = experiment.config
    rule = cfg["rule"]
    params = ", ".join(f"{k} {v:g}" for k, v in rule.items() if k != "name")
    net = experiment.network
    return (f"rule      {rule['name']}{f' ({params})' if params else ''}\n"
            f"task      {cfg['task']['name']} ({len(experiment.task.train)} train / {len(experiment.task.test)} test)\n"
            f"network   {net.title}: {net.n_edges} edges, {experiment.learnable.size} updated; {substrate_description}")


# ====================================================================== bench pieces
def bench_substrate(bench, experiment: Experiment, probe: ProbeSettings | None = None,
                    reprogram: bool = False) -> RigSubstrate:
    """The experiment on a bench: updates clipped to the device bounds, initial resistances
    programmed when the run starts, steps measured as ``probe`` says (default: the plan the
    experiment asks for on this bench, without a twin's confirmation); a resume refuses a bench
    that does not hold the checkpoint unless ``reprogram``."""
    dev = experiment.config["device"]
    if probe is None:
        probe = probe_settings(experiment, bench.config)
    return RigSubstrate(bench, experiment.ports, experiment.learnable, experiment.rule,
                        bounds=(dev["r_min"], dev["r_max"]), initial_ohms=experiment.initial_ohms, probe=probe,
                        reprogram=reprogram)


def probe_settings(experiment: Experiment, bench_config: BenchConfig, plan: str | None = None,
                   why: str = "") -> ProbeSettings:
    """The experiment's [probe] keys with the bench's limits and voltmeter accuracy; ``plan``
    resolved from the experiment file's ``plan`` (hwlearn.training.probing.choose_plan) unless
    given. A 'probe' the bench cannot run raises PlanError naming the reason."""
    cfg = experiment.config
    if plan is None:
        plan, why = choose_plan(cfg["plan"], experiment.rule, bench_class(bench_config)(bench_config).capabilities,
                                experiment.ports, cfg["training"]["batch_size"], cfg["probe"]["repeats"])
    return ProbeSettings(plan, why, cfg["probe"]["repeats"], cfg["probe"]["headroom"], cfg["probe"]["on_nonlinear"],
                         probe_limits(bench_config), reading_accuracy(bench_config), seed=cfg["seeds"]["noise"])


def bench_plan(experiment: Experiment, bench_config: BenchConfig, *, confirm_on_twin: bool,
               headless: bool) -> ProbeSettings:
    """How a bench run measures its steps. 'auto' resolved to the probe plan is confirmed on the
    bench's twin first (``confirm_on_twin``: a real run): the first batch probed at the initial
    resistances must pass the linearity check and every limit, else the per-sample plan, with
    the reason. ``headless`` (hwlearn run): probe.on_nonlinear = 'pause' is refused, nobody
    could resume it."""
    settings = probe_settings(experiment, bench_config)
    if settings.plan != "probe":
        return settings
    if headless and settings.on_nonlinear == "pause":
        raise ConfigError(f"{experiment.source}: probe.on_nonlinear = 'pause' waits for an operator to resume, "
                          "and hwlearn run is headless: nobody could; use 'per-sample' (the default: the step is "
                          "measured again sample by sample) or 'fail', or run it from hwlearn gui")
    if confirm_on_twin and experiment.config["plan"] == "auto":
        passed, detail = confirm_linearity_on_twin(bench_config, experiment, settings)
        if not passed:
            return dataclasses.replace(settings, plan="per-sample",
                                       why=f"plan = 'auto': the probe plan failed on the bench's twin: {detail}")
        settings = dataclasses.replace(settings, why=f"{settings.why}; the bench's twin confirmed it: {detail}")
    return settings


def confirm_linearity_on_twin(bench_config: BenchConfig, experiment: Experiment,
                              settings: ProbeSettings) -> tuple[bool, str]:
    """The probe plan of the first training batch (unshuffled, clean targets) at the initial
    resistances on the bench's twin: (linearity check passed and no limit refused, what was found)."""
    batch = experiment.config["training"]["batch_size"]
    data = experiment.task.train
    x, y = data.x[:, :batch], data.y[:, :batch]
    twin = _Twin(bench_config)
    try:
        substrate = bench_substrate(twin.bench, experiment, settings)
        substrate.start()
        known = substrate.resistances()
        design = design_probes(settings.limits, experiment.ports, known, probe_modes(experiment.rule),
                               headroom=settings.headroom, repeats=settings.repeats)
        outcome = substrate.run(probe_plan(experiment.rule, experiment.ports, experiment.learnable, x, y, known,
                                           design, settings.accuracy, np.random.default_rng(settings.seed)))
    except RigError as exc:
        return False, str(exc)
    finally:
        twin.close()
    worst = max(check["max_ratio"] for check in outcome.summary["checks"])
    if not outcome.linear:
        return False, f"largest residual {worst:.3g} x its bound"
    return True, f"largest residual {worst:.2g} of its bound"


def compare_with_checkpoint(run_dir: Path, bench: Bench, *, reprogram: bool) -> None:
    """Before a bench run is resumed (and its folder reopened): the instruments must be the ones
    the run was made with, and the boards must hold the latest checkpoint's codes. Every
    difference is listed; unless ``reprogram``, any difference refuses the resume (ConfigError)
    and nothing is written to the bench."""
    with RunReader(run_dir) as reader:
        recorded = reader.metadata().get("instruments") or {}
        checkpoint = reader.latest_checkpoint()
    differences = [f"{name}: the run was made with {then!r}, the bench now reports {bench.identities.get(name)!r}"
                   for name, then in recorded.items() if bench.identities.get(name) != then]
    if checkpoint is not None:
        differences += bench.differences(checkpoint.arrays)
    if differences and not reprogram:
        raise ConfigError(f"{run_dir}: the bench differs from the run's checkpoint: " + "; ".join(differences)
                          + ". Nothing was written; resume with --reprogram to accept the bench and write the "
                          "checkpoint's values")


def bench_metadata(bench_config: BenchConfig, bench_file: str | Path, bench: Bench) -> dict:
    return {"bench": bench_config.name, "bench_file": str(bench_file), "instruments": bench.identities}


def bench_experiment(config: dict, source: str, bench_config: BenchConfig) -> Experiment:
    """The experiment on the bench's network; the rule is refused here, before anything is
    opened, when the bench cannot run it (the missing capability named)."""
    experiment = build_experiment(config, source, network=bench_config.network)
    check_rule_on_rig(experiment.rule, bench_class(bench_config)(bench_config).capabilities, experiment.ports,
                      experiment.learnable)
    return experiment


class _KnowsTheTwin:
    """A bench on the instruments of a virtual twin also knows the exact gradient at the twin's
    true resistances (a real bench cannot): a dry run shows how well the rule agrees."""

    twin: VirtualBench | None = None

    def exact_gradient(self, ports, edges, x, y):
        if self.twin is None:
            return None
        factorization = KirchhoffSolver(self.network).factorize(self.twin.circuit.true_resistances())
        return LinearResponse(factorization, ports, edges).exact_gradient(x, y)


class TwinBench(_KnowsTheTwin, Bench):
    """A Bench on a virtual twin's instruments (see _KnowsTheTwin)."""


class TwinCrossbarBench(_KnowsTheTwin, CrossbarBench):
    """A crossbar bench on a virtual twin's instruments (see _KnowsTheTwin)."""


def twin_class(bench_config: BenchConfig) -> type[Bench]:
    return TwinCrossbarBench if bench_config.crossbar is not None else TwinBench


@dataclass
class DryRunReport:
    """What a dry run on the simulated twin found; ``text()`` is what ``hwlearn run --dry-run``
    prints."""

    bench: str
    epochs: int
    samples: int
    seconds: float
    round_trips: int
    by_call: dict[str, int]
    final_train_loss: float
    safe: bool
    status: str = "done"
    detail: str = ""
    plan: dict = field(default_factory=dict)
    linearity: dict = field(default_factory=dict)

    def text(self) -> str:
        lines = []
        if self.status == "done":
            lines.append(f"dry run on the simulated twin of {self.bench!r}: {self.epochs} epoch(s), {self.samples} "
                         f"samples, {self.seconds:.1f} s; every command passed the limits")
        else:
            lines.append(f"dry run on the simulated twin of {self.bench!r} ended {self.status} after "
                         f"{self.seconds:.1f} s: {self.detail}")
        per_sample = self.round_trips / self.samples if self.samples else float("nan")
        lines.append(f"instrument round trips: {self.round_trips} in all, {per_sample:.1f} per training sample")
        lines += [f"  {call:<14} {count}" for call, count in sorted(self.by_call.items())]
        if self.plan:
            lines.append(f"plan {self.plan.get('plan')}: {self.plan.get('why')}")
        if self.linearity.get("checks"):
            lin = self.linearity
            verdict = ("passed every time" if not lin["failed"] else
                       f"FAILED {lin['failed']} time(s) (those steps measured per sample)")
            lines.append(f"linearity check on the twin: {lin['checks']} checks, {verdict}; largest residual "
                         f"{lin['worst_ratio']:.3g} of its bound")
        lines.append(f"final train loss {self.final_train_loss:.4e}; the emulated instruments ended safe: {self.safe}")
        return "\n".join(lines)


def dry_run_epochs(experiment: Experiment, epochs: int) -> int:
    """Limit the experiment to ``epochs`` (at least 1) for a dry run; returns the epochs run."""
    if epochs < 1:
        raise ConfigError(f"--dry-run-epochs {epochs}: must be >= 1")
    epochs = min(epochs, experiment.config["training"]["epochs"])
    experiment.config["training"]["epochs"] = epochs
    return epochs


class _Twin:
    """A virtual twin of a bench and a TwinBench open on it, for one dry run."""

    def __init__(self, bench_config: BenchConfig):
        self.bench_config = bench_config
        self.virtual = VirtualBench(bench_config, twin=True).start()
        try:
            # The twin is on loopback, which pyvisa-py reaches on any machine.
            self.bench = twin_class(bench_config).open(self.virtual.bench_config(), visa_library="pyvisa-py")
        except BaseException:
            self.virtual.stop()
            raise
        self.bench.twin = self.virtual

    def close(self) -> tuple[int, dict[str, int], bool]:
        """Close the bench, then the twin: (round trips, by call, every emulator safe)."""
        try:
            self.bench.close()
            trips = self.bench.round_trips  # read after close: the safe state's exchanges count too
            return trips.total, trips.by_call, all(self.virtual.is_safe().values())
        finally:
            self.virtual.stop()


def dry_run_on_twin(bench_config: BenchConfig, experiment: Experiment, epochs: int,
                    views: Sequence[Subscriber] = (), signals: bool = True,
                    probe: ProbeSettings | None = None) -> DryRunReport:
    """Run ``epochs`` of the experiment on the bench's simulated twin, in this thread, recorded
    in a temporary folder: every command goes through the real drivers and their limits, and a
    probe plan's linearity check runs at every step. With ``signals``, Ctrl-C and SIGTERM steer
    it (hwlearn.signals)."""
    epochs = dry_run_epochs(experiment, epochs)
    started = time.monotonic()
    twin = _Twin(bench_config)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            substrate = bench_substrate(twin.bench, experiment, probe)
            session = TrainingSession(experiment, substrate, Path(tmp) / "dry-run", views=tuple(views))
            result = session.run(signals=signals)
    finally:
        trips, by_call, safe = twin.close()
    return DryRunReport(bench_config.name, epochs, epochs * len(experiment.task.train), time.monotonic() - started,
                        trips, by_call, result.metrics.get("train_loss", float("nan")), safe,
                        plan=dict(substrate.plan_info), linearity=dict(substrate.linearity))


# ====================================================================== launched runs
@dataclass
class Launched:
    """A run started in a worker thread. ``engine`` takes the verbs from any thread;
    ``release()`` waits for the run's end and returns its closing report (the bench closed and
    safe, or the dry run's findings)."""

    engine: RunEngine
    run_dir: Path
    kind: str            # "simulated" or "bench"
    dry_run: bool
    title: str
    _done: threading.Event = field(default_factory=threading.Event)
    _report: list[str] = field(default_factory=list)

    def release(self, timeout: float | None = None) -> str:
        if not self._done.wait(timeout):
            raise HwlearnError(f"{self.run_dir}: the run has not ended after {timeout} s")
        return "\n".join(self._report)

    @property
    def released(self) -> bool:
        return self._done.is_set()

    def end_with(self, closing: Callable[[], str]) -> None:
        """After the run: ``closing()`` releases what the run held and returns the report; the
        run counts as released even if it raises."""
        try:
            self._report.append(closing())
        finally:
            self._done.set()


class SimulatedPrepared:
    """An experiment on the built-in simulated rig (the fast path)."""

    kind = "simulated"
    can_dry_run = False

    def __init__(self, experiment_path: str | Path, runs_root: Path, seed: int | None = None,
                 backend: str = "auto"):
        self.source = str(experiment_path)
        self.config = load_experiment(experiment_path, seed=seed)
        self.runs_root = Path(runs_root)
        self.backend = backend
        experiment = build_experiment(self.config, self.source)
        self.title = f"{self.config['name']} on the simulated rig"
        self.details = describe(experiment, simulated_substrate(experiment, backend).description)

    def next_run_dir(self) -> Path:
        return default_run_dir(self.config, self.runs_root)

    def launch(self, views: Sequence[Subscriber] = (), dry_run: bool = False, run_dir: Path | None = None) -> Launched:
        if dry_run:
            raise HwlearnError("the simulated rig needs no dry run: start the run")
        config = copy.deepcopy(self.config)
        experiment = build_experiment(config, self.source)
        session = TrainingSession(experiment, simulated_substrate(experiment, self.backend),
                                  run_dir or self.next_run_dir(), views=tuple(views))
        launched = Launched(session.engine, session.run_dir, self.kind, False, self.title)

        session.start(after=lambda: launched.end_with(lambda: f"run {session.run_dir} ended {session.engine.state}"))
        return launched


class BenchPrepared:
    """An experiment on a bench (real or virtual), validated against the bench file."""

    kind = "bench"
    can_dry_run = True

    def __init__(self, experiment_path: str | Path, bench: str | Path | BenchConfig, runs_root: Path,
                 seed: int | None = None, dry_run_epochs: int = 1):
        self.source = str(experiment_path)
        self.bench_config = bench if isinstance(bench, BenchConfig) else load_bench_file(bench)
        self.bench_file = self.bench_config.source if isinstance(bench, BenchConfig) else str(bench)
        self.config = load_experiment(experiment_path, seed=seed)
        self.runs_root = Path(runs_root)
        self.dry_run_epochs = dry_run_epochs
        experiment = bench_experiment(self.config, self.source, self.bench_config)
        self.title = f"{self.config['name']} on the bench {self.bench_config.name!r}"
        probe = probe_settings(experiment, self.bench_config)
        confirm = " (the bench's twin confirms it when the run starts)" if (
            probe.plan == "probe" and self.config["plan"] == "auto") else ""
        self.details = (describe(experiment, f"bench {self.bench_config.name!r} "
                                 f"({len(self.bench_config.instruments)} instruments, {self.bench_file})")
                        + f"\nplan      {probe.plan}: {probe.why}{confirm}")
        self._dry_dirs: list[Path] = []

    def next_run_dir(self) -> Path:
        return default_run_dir(self.config, self.runs_root)

    def launch(self, views: Sequence[Subscriber] = (), dry_run: bool = False, run_dir: Path | None = None) -> Launched:
        """Open the bench (or a twin for a dry run) and start the run in a worker thread. The
        bench is closed (made safe) in that thread when the run ends, whatever ended it."""
        config = copy.deepcopy(self.config)
        experiment = bench_experiment(config, self.source, self.bench_config)
        if dry_run:
            return self._launch_dry(experiment, views)
        probe = bench_plan(experiment, self.bench_config, confirm_on_twin=True, headless=False)
        bench = open_bench(self.bench_config)
        try:
            metadata = bench_metadata(self.bench_config, self.bench_file, bench)
            session = TrainingSession(experiment, bench_substrate(bench, experiment, probe),
                                      run_dir or self.next_run_dir(), metadata=metadata, synchronous="FULL",
                                      views=tuple(views))
            launched = Launched(session.engine, session.run_dir, self.kind, False, self.title)

            def closing() -> str:
                failures = bench.close()
                return (f"run {session.run_dir} ended {session.engine.state}; the bench is closed, "
                        + ("every instrument safe" if not failures else "safe state failed: " + "; ".join(failures)))
            session.start(after=lambda: launched.end_with(closing))
        except BaseException:
            bench.close()
            raise
        return launched

    def _launch_dry(self, experiment: Experiment, views) -> Launched:
        epochs = dry_run_epochs(experiment, self.dry_run_epochs)
        started = time.monotonic()
        folder = Path(tempfile.mkdtemp(prefix="hwlearn-dry-run-"))
        self._dry_dirs.append(folder)
        probe = bench_plan(experiment, self.bench_config, confirm_on_twin=False, headless=False)
        twin = _Twin(self.bench_config)
        try:
            substrate = bench_substrate(twin.bench, experiment, probe)
            session = TrainingSession(experiment, substrate, folder / "dry-run", views=tuple(views))
            launched = Launched(session.engine, session.run_dir, self.kind, True,
                                f"dry run of {self.config['name']} on the simulated twin of {self.bench_config.name!r}")

            def closing() -> str:
                trips, by_call, safe = twin.close()
                engine = session.engine
                with RunReader(session.run_dir) as reader:
                    last = reader.last_scalar("train_loss")
                loss = float("nan") if last is None else last[1]
                return DryRunReport(self.bench_config.name, epochs, epochs * len(experiment.task.train),
                                    time.monotonic() - started, trips, by_call, loss, safe,
                                    status=engine.state, detail=engine.detail,
                                    plan=dict(substrate.plan_info), linearity=dict(substrate.linearity)).text()
            session.start(after=lambda: launched.end_with(closing))
        except BaseException:
            twin.close()
            raise
        return launched

    def discard_dry_runs(self) -> None:
        """Remove the temporary folders of this session's dry runs."""
        for folder in self._dry_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        self._dry_dirs.clear()


class Launcher:
    """What ``hwlearn gui`` hands the GUI: where runs go, and how to prepare one."""

    def __init__(self, runs_root: str | Path = "runs", seed: int | None = None):
        self.runs_root = Path(runs_root)
        self.seed = seed
        self._prepared: list = []

    def prepare(self, experiment: str | Path, bench: str | Path | BenchConfig | None = None):
        """A SimulatedPrepared or BenchPrepared; ConfigError (naming the key) for a bad file."""
        if bench is None:
            prepared = SimulatedPrepared(experiment, self.runs_root, seed=self.seed)
        else:
            prepared = BenchPrepared(experiment, bench, self.runs_root, seed=self.seed)
        self._prepared.append(prepared)
        return prepared

    def close(self) -> None:
        """At the application's end: remove temporary dry-run folders."""
        for prepared in self._prepared:
            if isinstance(prepared, BenchPrepared):
                prepared.discard_dry_runs()
