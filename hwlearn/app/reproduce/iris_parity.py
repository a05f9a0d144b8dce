"""Finding 1: on Iris, Omega-learning and two-phase reach similar accuracy (docs/reproduction.md)."""

from __future__ import annotations

import numpy as np

from hwlearn.app.reproduce.common import (
    COMPARED,
    Profile,
    TrainingPool,
    experiment_doc,
    mean_spread,
)


def run(profile: Profile, pool: TrainingPool, progress) -> dict:
    curves, finals = {}, {}
    ceilings = None
    for rule in COMPARED:
        runs = pool.curves([(experiment_doc(rule, profile.epochs), seed) for seed in range(profile.seeds)])
        losses = np.array([r["train_loss"] for r in runs])
        accuracies = np.array([r["test_accuracy"] for r in runs])
        ceilings = [r["ceiling"] for r in runs]
        curves[rule] = {"train_loss": losses, "test_accuracy": accuracies}
        finals[rule] = {"test_accuracy": mean_spread(accuracies[:, -1]),
                        "test_loss": mean_spread([r["test_loss"][-1] for r in runs]),
                        "instability": mean_spread([_instability(c) for c in losses])}
        progress(f"iris {rule}: test accuracy {accuracies[:, -1].mean():.3f} over {profile.seeds} seeds")
    return {"curves": curves, "finals": finals, "ceiling": mean_spread(ceilings),
            "epochs": np.arange(profile.epochs + 1)}


def _instability(train_loss: np.ndarray) -> float:
    """Mean relative rise of the train loss between consecutive epochs over the second half of
    training (0 for a monotone descent): how much a rule's loss jitters once near its minimum."""
    tail = train_loss[len(train_loss) // 2:]
    rises = np.maximum(np.diff(tail), 0.0) / tail[:-1]
    return float(rises.mean())
