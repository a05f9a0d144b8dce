"""hwlearn gui [RUN_DIR | EXPERIMENT.toml [--bench BENCH.toml] | RUNS_FOLDER]: the Qt window.

With nothing, it opens on the run browser of ./runs; with a run folder it follows that run (live
while another process writes it); with an experiment file it prepares a run on the simulated rig,
or with --bench on a bench, ready to dry-run and start.
"""

from __future__ import annotations

from pathlib import Path

from hwlearn.app.sessions import Launcher
from hwlearn.errors import ConfigError
from hwlearn.runstore import is_run_dir


def add_parser(sub) -> None:
    p = sub.add_parser("gui", help="the Qt window: watch and steer runs live",
                       description="Open the GUI on the run browser (no argument or a folder of runs), on a run "
                       "folder (followed live while it is written), or on an experiment file, prepared on the "
                       "simulated rig or, with --bench, on a bench (dry run, then start). Without a display, "
                       "set QT_QPA_PLATFORM=offscreen.")
    p.add_argument("target", nargs="?", help="run folder, folder of runs, or experiment file (TOML)")
    p.add_argument("--bench", help="bench file (TOML): prepare the experiment on this bench")
    p.add_argument("--runs", default="runs", help="where new runs are written and the browser looks (default ./runs)")
    p.add_argument("--seed", type=int, help="base seed of prepared runs (overrides [seeds])")
    p.set_defaults(run=run)


def run(args) -> int:
    from gui.app import check_display, run_gui

    check_display()  # before anything else, so a missing display is the first thing said
    launcher = Launcher(args.runs, seed=args.seed)
    target = Path(args.target) if args.target else None
    if target is not None and target.is_file():
        return run_gui(launcher, prepared=launcher.prepare(target, args.bench))
    if args.bench:
        raise ConfigError(f"--bench {args.bench}: give the experiment file to run on it (hwlearn gui EXPERIMENT.toml "
                          "--bench BENCH.toml)")
    if target is None:
        return run_gui(launcher)
    if not target.is_dir():
        raise ConfigError(f"{target}: no such file or folder (expected a run folder, a folder of runs or an "
                          "experiment file)")
    if is_run_dir(target):
        return run_gui(launcher, attach=target)
    launcher.runs_root = target
    return run_gui(launcher)
