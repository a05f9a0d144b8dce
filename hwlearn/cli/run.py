"""hwlearn run EXPERIMENT --bench BENCH: train on a bench (real, or the virtual bench).

Everything is validated before any instrument is opened: the experiment file, the bench file,
and whether the bench can run the rule on the edges it must update. --dry-run then executes the
plan on the simulated twin of the bench (every instrument emulated in this process, the real
drivers checking every command against the limits) instead of opening the bench.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hwlearn.app.sessions import (
    bench_metadata,
    bench_plan,
    bench_substrate,
    compare_with_checkpoint,
    describe,
    dry_run_on_twin,
)
from hwlearn.app.training import RunOutcome
from hwlearn.cli.bench import add_visa_library, visa_library
from hwlearn.cli.train import default_run_dir, summary
from hwlearn.config import load_experiment, resolve
from hwlearn.errors import ConfigError
from hwlearn.experiment import build_experiment
from hwlearn.plans import check_rule_on_rig
from hwlearn.runstore import RunReader
from hwlearn.training.progress import ProgressBar
from hwlearn.training.session import train_in_folder


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="train on a bench through its instruments",
                       description="Train on the bench a bench file describes. Ctrl-C or SIGTERM stops "
                       "at the next step, a second Ctrl-C aborts; every exit leaves the bench safe.")
    p.add_argument("config", nargs="?", help="experiment file (TOML)")
    p.add_argument("--bench", required=True, help="bench file (TOML), e.g. examples/virtual-bench.toml")
    p.add_argument("--dry-run", action="store_true",
                   help="run the plan on the bench's simulated twin instead of the instruments")
    p.add_argument("--dry-run-epochs", type=int, default=1, help="epochs the dry run executes (default 1)")
    p.add_argument("--seed", type=int, help="base seed (overrides [seeds])")
    p.add_argument("--out", help="run folder (default: runs/<name>-<time>-seed<N>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or crashed bench run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--clear-watchdog", action="store_true",
                   help="acknowledge a tripped board watchdog (its codes went to the safe code) "
                   "instead of refusing the bench; a resumed run writes its codes again")
    p.add_argument("--reprogram", action="store_true",
                   help="with --resume: accept a bench that differs from the checkpoint (other instrument "
                   "identities, other codes held) and write the checkpoint's values; without it such a "
                   "resume is refused, listing every difference")
    add_visa_library(p, "the bench file's bench.visa_library")
    p.set_defaults(run=run)


def _experiment(args, bench_config):
    if bool(args.config) == bool(args.resume):
        raise ConfigError("give either an experiment file or --resume RUN_DIR")
    if args.resume:
        if args.seed is not None or args.out or args.dry_run:
            raise ConfigError("--resume continues a run as configured; --seed, --out and --dry-run do not apply")
        with RunReader(args.resume) as reader:
            config = resolve(reader.config(), f"{args.resume}/config.toml")
        source = str(args.resume)
    else:
        config = load_experiment(args.config, seed=args.seed)
        source = args.config
    return build_experiment(config, source, network=bench_config.network)


def _dry_run(args, bench_config, experiment) -> int:
    probe = bench_plan(experiment, bench_config, confirm_on_twin=False, headless=True)
    report = dry_run_on_twin(bench_config, experiment, args.dry_run_epochs, probe=probe)
    print(report.text())
    return 0 if report.safe else 1


def run(args) -> int:
    from drivers.bench import bench_class
    from hwlearn.config.bench import load_bench_file

    bench_config = load_bench_file(args.bench)
    experiment = _experiment(args, bench_config)
    # Refused here, before anything is opened, with the missing capability named.
    cls = bench_class(bench_config)
    check_rule_on_rig(experiment.rule, cls(bench_config).capabilities, experiment.ports, experiment.learnable)
    if args.dry_run:
        return _dry_run(args, bench_config, experiment)
    run_dir = Path(args.resume or args.out or default_run_dir(experiment.config))
    progress = None if args.quiet else ProgressBar()
    probe = bench_plan(experiment, bench_config, confirm_on_twin=True, headless=True)
    bench = cls.open(bench_config, clear_watchdog=args.clear_watchdog, visa_library=visa_library(args))
    try:
        with bench:
            if args.resume:
                compare_with_checkpoint(Path(args.resume), bench, reprogram=args.reprogram)
            substrate = bench_substrate(bench, experiment, probe, reprogram=args.reprogram)
            print(describe(experiment, substrate.description), file=sys.stderr)
            print(f"plan      {probe.plan}: {probe.why}", file=sys.stderr)
            metadata = bench_metadata(bench_config, args.bench, bench)
            result, run_dir = train_in_folder(experiment, substrate, run_dir, resume=bool(args.resume),
                                              progress=progress, metadata=metadata, synchronous="FULL")
            trips = bench.round_trips.total
    finally:
        _report_bench(bench)
    resume = f"hwlearn run --resume {run_dir} --bench {args.bench}"
    print(summary(RunOutcome.of(result, run_dir), resume_command=resume))
    print(f"instrument round trips: {trips}")
    if not bench.last_safe_state.ok:
        return 1
    return 0 if result.status == "done" else 130


def _report_bench(bench) -> None:
    """Whatever ended the run: say so if the bench is not safe, and which link faults there were."""
    faults = bench.faults.counts
    if faults:
        print("link faults: " + ", ".join(f"{n} {kind} on {name}" for (kind, name), n in sorted(faults.items())),
              file=sys.stderr)
    report = bench.last_safe_state
    if not report.ok:
        print(f"hwlearn run: the bench is NOT in its safe state: {report.describe()}", file=sys.stderr)
