"""Finding 1: on Iris, Omega-learning and two-phase reach similar accuracy (PAPER.md section 4)."""

from __future__ import annotations

import numpy as np

from hwlearn.reproduce.common import RULES, Profile, experiment_doc, mean_spread, train


def run(profile: Profile, progress) -> dict:
    curves, finals = {}, {}
    ceilings = []
    for rule in RULES:
        losses, accuracies, final_acc, final_loss = [], [], [], []
        for seed in range(profile.seeds):
            history, experiment = train(experiment_doc(rule, profile.epochs), seed)
            losses.append(history.series("train_loss"))
            accuracies.append(history.series("test_accuracy"))
            final_acc.append(accuracies[-1][-1])
            final_loss.append(history.series("test_loss")[-1])
            if rule == "omega":
                ceilings.append(experiment.task.linear_ceiling()["test_accuracy"])
            progress(f"iris {rule} seed {seed}: test accuracy {final_acc[-1]:.3f}")
        curves[rule] = {"train_loss": np.array(losses), "test_accuracy": np.array(accuracies)}
        finals[rule] = {"test_accuracy": mean_spread(final_acc), "test_loss": mean_spread(final_loss),
                        "instability": mean_spread([_instability(c) for c in losses])}
    return {"curves": curves, "finals": finals, "ceiling": mean_spread(ceilings),
            "epochs": np.arange(profile.epochs + 1)}


def _instability(train_loss: np.ndarray) -> float:
    """Mean relative rise of the train loss between consecutive epochs over the second half of
    training (0 for a monotone descent): how much a rule's loss jitters once near its minimum."""
    tail = train_loss[len(train_loss) // 2:]
    rises = np.maximum(np.diff(tail), 0.0) / tail[:-1]
    return float(rises.mean())
