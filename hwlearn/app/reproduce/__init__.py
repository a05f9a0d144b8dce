"""hwlearn reproduce: the paper's three qualitative findings (docs/reproduction.md) as figures and a JSON table."""

from __future__ import annotations

import json
import time
from pathlib import Path

from hwlearn.app.reproduce import figures, iris_parity, noise_bias, partial_updates
from hwlearn.app.reproduce.common import FULL, QUICK, Profile, TrainingPool, plain

SCHEMA = "hwlearn.reproduce/1"


def reproduce(out_dir: Path, quick: bool = False, progress=print, profile: Profile | None = None,
              workers: int | None = None, scheduler: str | None = None) -> dict:
    """Run the three studies, write the figures and results.json into ``out_dir``. The trainings
    run on ``workers`` local processes (default one per core) or the Dask cluster at ``scheduler``."""
    profile = profile or (QUICK if quick else FULL)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with TrainingPool(workers, scheduler) as pool:
        iris = iris_parity.run(profile, pool, progress)
        bias = noise_bias.gradient_bias(profile, progress)
        noisy = noise_bias.training_under_noise(profile, pool, progress)
        partial = partial_updates.run(profile, pool, progress)
    paths = [
        figures.iris_curves(iris, out_dir / "iris_parity.png"),
        figures.gradient_bias(bias, profile.sigmas, out_dir / "noise_gradient_bias.png"),
        figures.noisy_training(noisy, out_dir / "noise_training.png"),
        figures.partial_updates(partial, iris["ceiling"]["mean"], out_dir / "partial_updates.png"),
    ]
    table = {
        "schema": SCHEMA,
        "profile": profile.name,
        "seeds": profile.seeds,
        "epochs": profile.epochs,
        "elapsed_seconds": round(time.monotonic() - started, 1),
        "iris": {"ceiling_test_accuracy": iris["ceiling"], "rules": iris["finals"]},
        "noise": {"gradient_bias": bias["rows"], "bias_draws": profile.bias_draws,
                  "ep_limit_vs_exact_times_load": bias["ep_limit_vs_exact_times_load"],
                  "final_test_loss": noisy},
        "partial_updates": partial,
        "figures": [p.name for p in paths],
    }
    (out_dir / "results.json").write_text(json.dumps(plain(table), indent=2) + "\n")
    return table
