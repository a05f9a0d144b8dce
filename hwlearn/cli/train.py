"""hwlearn train CONFIG | --resume RUN_DIR: train on the built-in simulated rig."""

from __future__ import annotations

import sys
from pathlib import Path

from hwlearn.app.sessions import default_run_dir
from hwlearn.app.training import RunOutcome, train_simulated
from hwlearn.config import load_experiment, resolve
from hwlearn.errors import ConfigError
from hwlearn.runstore import RunReader
from hwlearn.training.progress import ProgressBar


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a network on the simulated rig",
                       description="Train on the built-in simulated rig and record the run in a folder. "
                       "Ctrl-C stops cleanly at the next step; the run can be resumed with --resume.")
    p.add_argument("config", nargs="?", help="experiment file (TOML), e.g. examples/iris-omega.toml")
    p.add_argument("--seed", type=int, help="base seed (overrides [seeds]; every stream is derived from it)")
    p.add_argument("--out", help="run folder (default: runs/<name>-<time>-seed<N>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or crashed run")
    p.add_argument("--backend", default="auto", help="solver backend: auto, dense, cholmod, superlu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def summary(outcome: RunOutcome, resume_command: str | None = None) -> str:
    """The closing lines of a run; ``resume_command`` is printed for a stopped run."""
    m, run_dir = outcome.metrics, outcome.run_dir
    reader = RunReader(run_dir)
    try:
        status = reader.status().status
        ceiling = reader.summary()
    finally:
        reader.close()
    lines = [f"run       {run_dir}  ({status})",
             f"progress  {outcome.epochs} epochs, {outcome.steps} steps in {outcome.elapsed_seconds:.1f} s"]
    if "train_loss" in m:
        lines.append(f"loss      train {m['train_loss']:.4e}   test {m['test_loss']:.4e}   "
                     f"(least squares: train {ceiling.get('linear_ceiling_train_loss', float('nan')):.4e})")
    if "test_accuracy" in m:
        ceil = ceiling.get("linear_ceiling_test_accuracy")
        lines.append(f"accuracy  test {m['test_accuracy']:.3f}   train {m['train_accuracy']:.3f}   "
                     f"linear least-squares ceiling {ceil:.3f} (gap {ceil - m['test_accuracy']:+.3f})")
    if status == "stopped":
        lines.append(f"resume    {resume_command or f'hwlearn train --resume {run_dir}'}")
    return "\n".join(lines)


def run(args) -> int:
    if bool(args.config) == bool(args.resume):
        raise ConfigError("give either an experiment file or --resume RUN_DIR")
    if args.resume:
        if args.seed is not None or args.out:
            raise ConfigError("--resume continues a run as it was configured; --seed and --out do not apply")
        run_dir = Path(args.resume)
        with RunReader(run_dir) as reader:
            config = resolve(reader.config(), f"{run_dir}/config.toml")
            bench = reader.metadata().get("bench")
        if bench is not None:  # its checkpoints hold what a bench can know, not a simulation's state
            raise ConfigError(f"{run_dir} is a run on the bench {bench!r}; continue it on the bench with "
                              f"hwlearn run --resume {run_dir} --bench BENCH.toml")
    else:
        config = load_experiment(args.config, seed=args.seed)
        run_dir = Path(args.out) if args.out else default_run_dir(config)
    outcome = train_simulated(config, run_dir, resume=bool(args.resume), backend=args.backend,
                              progress=None if args.quiet else ProgressBar(), source=args.config or str(run_dir),
                              announce=lambda text: print(text, file=sys.stderr))
    print(summary(outcome))
    return 0 if outcome.status == "done" else 130
