"""Finding 3: final test accuracy when a random fraction of the tunable edges is frozen."""

from __future__ import annotations

import numpy as np

from hwlearn.app.reproduce.common import Profile, TrainingPool, experiment_doc, mean_spread

PARTIAL_RULES = ("omega", "ep")


def run(profile: Profile, pool: TrainingPool, progress) -> dict:
    results = {}
    for rule in PARTIAL_RULES:
        results[rule] = {}
        for fraction in profile.frozen:
            # The seed also draws which edges are frozen, so every seed has its own mask.
            mask = {"kind": "random", "frozen_fraction": fraction} if fraction else {"kind": "all"}
            runs = pool.curves([(experiment_doc(rule, profile.epochs, mask=mask), seed)
                               for seed in range(profile.seeds)])
            accuracy = [r["test_accuracy"][-1] for r in runs]
            results[rule][str(fraction)] = {"test_accuracy": mean_spread(accuracy),
                                            "test_loss": mean_spread([r["test_loss"][-1] for r in runs])}
            progress(f"partial updates {rule} frozen {fraction:.0%}: test accuracy {np.mean(accuracy):.3f}")
    return results
