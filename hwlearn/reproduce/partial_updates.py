"""Finding 3: final test accuracy when a random fraction of the tunable edges is frozen."""

from __future__ import annotations

from hwlearn.reproduce.common import Profile, experiment_doc, mean_spread, train

PARTIAL_RULES = ("omega", "ep")


def run(profile: Profile, progress) -> dict:
    results = {}
    for rule in PARTIAL_RULES:
        results[rule] = {}
        for fraction in profile.frozen:
            accuracy, loss = [], []
            for seed in range(profile.seeds):  # the seed also draws which edges are frozen
                mask = {"kind": "random", "frozen_fraction": fraction} if fraction else {"kind": "all"}
                history, _ = train(experiment_doc(rule, profile.epochs, mask=mask), seed)
                accuracy.append(history.series("test_accuracy")[-1])
                loss.append(history.series("test_loss")[-1])
            results[rule][str(fraction)] = {"test_accuracy": mean_spread(accuracy), "test_loss": mean_spread(loss)}
            progress(f"partial updates {rule} frozen {fraction:.0%}: test accuracy {results[rule][str(fraction)]['test_accuracy']['mean']:.3f}")
    return results
