"""hwlearn reproduce --profile paper: the paper's findings in the paper's own setting, and GEP's
orders (docs/reproduction.md, "The paper's setting"), as figures and results.json."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from hwlearn.app.reproduce.common import TrainingPool, plain
from hwlearn.app.reproduce.paper import figures, gradients, studies
from hwlearn.app.reproduce.paper.setting import FULL, QUICK, PaperProfile

SCHEMA = "hwlearn.reproduce.paper/1"


def _finite(value):
    """NaN and infinities (a statistic over no finite value) as null: results.json stays JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def reproduce_paper(out_dir: Path, quick: bool = False, progress=print, profile: PaperProfile | None = None,
                    workers: int | None = None, scheduler: str | None = None) -> dict:
    """Run the paper study and write its figures and results.json into ``out_dir``."""
    profile = profile or (QUICK if quick else FULL)
    out_dir.mkdir(parents=True, exist_ok=True)
    started, cpu = time.monotonic(), time.process_time()
    gep = gradients.gep_orders(profile.gep_betas, progress)
    bias = gradients.noise_bias(profile, progress)
    with TrainingPool(workers, scheduler) as pool:
        rates = studies.tune_learning_rates(profile, pool, progress)
        trained = studies.trainings(profile, rates, pool, progress)
        noisy = studies.noisy_targets(profile, rates, pool, progress)
        nudges = studies.nudge_strength(profile, rates, pool, progress)
        partial = studies.partial_updates(profile, rates, pool, progress)
        choices = studies.iris_choices(profile, rates, pool, progress) if profile.iris_choices else None
        slots = pool.executor.slots
    paths = [
        figures.gep_orders(gep, out_dir / "gep_orders.png"),
        figures.noise_bias(bias, profile.bias_sigmas, out_dir / "paper_noise_bias.png"),
        figures.training(trained, "teacher", out_dir / "paper_teacher.png"),
        figures.training(trained, "iris", out_dir / "paper_iris.png"),
        figures.conditions(trained, out_dir / "paper_conditions.png"),
        figures.sweeps(noisy, nudges, partial, out_dir / "paper_sweeps.png"),
        figures.learning_rates(rates, out_dir / "paper_learning_rates.png"),
    ]
    table = {
        "schema": SCHEMA,
        "profile": profile.name,
        "seeds": profile.seeds,
        "epochs": profile.epochs,
        "elapsed_seconds": round(time.monotonic() - started, 1),
        "client_cpu_seconds": round(time.process_time() - cpu, 1),
        "workers": slots,
        "learning_rates": rates,
        "gep": gep,
        "noise_bias": bias,
        "trainings": {key: trained[key] for key in ("results", "paired_vs_omega", "iris_ceiling")},
        "noisy_targets": noisy,
        "nudge_strength": nudges,
        "partial_updates": partial,
        "iris_choices": choices,
        "figures": [p.name for p in paths if p is not None],
    }
    (out_dir / "results.json").write_text(json.dumps(_finite(plain(table)), indent=2, allow_nan=False) + "\n")
    return table
