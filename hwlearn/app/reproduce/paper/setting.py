"""The paper's setting (its Fig. 1, Algorithms 1 and 2) as experiment documents, and the study sizes.

A square lattice of 8 x 8 nodes (112 edges, 10 kOhm nominal): inputs are series sources on boundary
edges spread around the lattice, outputs are voltmeters across interior edges of the middle
column (``network.placement = "interior"``) that are ordinary mesh resistors, tuned like every
other edge (``network.tunable_ports = "outputs"``). Two tasks: a teacher (targets from a hidden
lattice of the same shape, so zero loss is reachable) and Iris (differential inputs and a bias
source; docs/iris.md). The output-edge conditions vary what the paper's setting fixes
(docs/reproduction.md): equal and fixed, unequal and fixed, equal at the start and trained,
spread and trained (the paper's).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwlearn.rules import RULES

RULES_COMPARED = ("omega", "ep", "ep_symmetric", "coupled")
NOMINAL_OHMS = 10_000.0

NETWORK = {"builder": "lattice", "rows": 8, "cols": 8, "placement": "interior", "initial_ohms": NOMINAL_OHMS,
           "initial_spread": 0.3}
TASKS = {
    "teacher": {"name": "teacher", "inputs": 4, "outputs": 2, "teacher_spread": 1.0},
    "iris": {"name": "iris", "encoding": "differential", "bias": 1.0, "target_scale": 0.2},
}

# What is varied about the output edges: their resistances' spread and whether they are trained.
CONDITIONS = {
    "fixed_equal": {"tunable_ports": "none"},
    "fixed_spread": {"tunable_ports": "none", "output_spread": 1.0},
    "trained_equal": {"tunable_ports": "outputs", "output_spread": 0.0},
    "trained_spread": {"tunable_ports": "outputs"},
}
PAPER = "trained_spread"
CONDITION_LABELS = {"fixed_equal": "equal, fixed", "fixed_spread": "spread, fixed",
                    "trained_equal": "equal at start, trained", "trained_spread": "spread, trained (paper)"}

# Learning rates on the Omega (W) scale; rules estimating in A^2 take them times the nominal
# resistance (their estimates carry an output conductance, docs/theory.md). The grid of the tuning
# study, and the values it chose in the full profile (docs/reproduction/paper/results.json, checked
# by tests/test_reproduce_paper.py), which the quick profile uses without tuning.
LR_GRID = (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
CHOSEN_LR: dict[tuple[str, str, str], float] = {
    ("teacher", "fixed_equal", "omega"): 3000, ("teacher", "fixed_equal", "ep"): 3000,
    ("teacher", "fixed_equal", "ep_symmetric"): 3000, ("teacher", "fixed_equal", "coupled"): 3000,
    ("teacher", "fixed_spread", "omega"): 3000, ("teacher", "fixed_spread", "ep"): 3000,
    ("teacher", "fixed_spread", "ep_symmetric"): 3000, ("teacher", "fixed_spread", "coupled"): 1000,
    ("teacher", "trained_equal", "omega"): 1000, ("teacher", "trained_equal", "ep"): 10,
    ("teacher", "trained_equal", "ep_symmetric"): 10, ("teacher", "trained_equal", "coupled"): 1000,
    ("teacher", "trained_spread", "omega"): 3000, ("teacher", "trained_spread", "ep"): 3,
    ("teacher", "trained_spread", "ep_symmetric"): 3, ("teacher", "trained_spread", "coupled"): 1000,
    ("iris", "fixed_equal", "omega"): 300, ("iris", "fixed_equal", "ep"): 300,
    ("iris", "fixed_equal", "ep_symmetric"): 300, ("iris", "fixed_equal", "coupled"): 300,
    ("iris", "trained_spread", "omega"): 300, ("iris", "trained_spread", "ep"): 100,
    ("iris", "trained_spread", "ep_symmetric"): 100, ("iris", "trained_spread", "coupled"): 100,
}


def lr_scale(rule: str) -> float:
    return NOMINAL_OHMS if RULES[rule].units == "A^2" else 1.0


def experiment(task_name: str, rule: str, lr_w: float, epochs: int, condition: str = PAPER, *,
               rule_params: dict | None = None, **sections) -> dict:
    """An experiment document in the paper's setting: ``lr_w`` on the Omega scale (multiplied by
    the nominal resistance for rules in A^2); ``sections`` update tables (task noise, mask)."""
    doc = {"name": f"paper-{task_name}-{rule}", "network": {**NETWORK, **CONDITIONS[condition]},
           "task": dict(TASKS[task_name]), "rule": {"name": rule, **(rule_params or {})},
           "training": {"learning_rate": lr_w * lr_scale(rule), "epochs": epochs},
           # cosine with the exact gradient on every 4th step (about twice per epoch)
           "record": {"array_every": 4}}
    for key, value in sections.items():
        doc.setdefault(key, {}).update(value)
    return doc


@dataclass(frozen=True)
class PaperProfile:
    """How much the paper profile computes."""

    name: str
    seeds: int
    epochs: int
    tune: bool                 # run the learning-rate study (else the chosen rates)
    tuning_seeds: int
    conditions: tuple[str, ...]
    train_sigmas: tuple[float, ...]   # target noise for training, volts
    train_betas: tuple[float, ...]    # nudges for training two-phase and CL
    frozen: tuple[float, ...]
    bias_draws: int
    bias_betas: tuple[float, ...]
    bias_sigmas: tuple[float, ...]
    gep_betas: tuple[float, ...]
    iris_choices: bool         # the lattice Iris encoding and placement study


FULL = PaperProfile("paper", seeds=20, epochs=100, tune=True, tuning_seeds=5, conditions=tuple(CONDITIONS),
                    train_sigmas=(0.0, 0.01, 0.02, 0.05), train_betas=(0.01, 0.03, 0.1, 0.3, 1.0),
                    frozen=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), bias_draws=20000,
                    bias_betas=(0.003, 0.01, 0.03, 0.1, 0.3, 1.0), bias_sigmas=(0.0, 0.02, 0.05),
                    gep_betas=tuple(10.0 ** k for k in (-4, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0)),
                    iris_choices=True)
QUICK = PaperProfile("paper-quick", seeds=3, epochs=20, tune=False, tuning_seeds=0, conditions=tuple(CONDITIONS),
                     train_sigmas=(0.0, 0.05), train_betas=(0.01, 0.3), frozen=(0.0, 0.8), bias_draws=1000,
                     bias_betas=(0.01, 0.1, 1.0), bias_sigmas=(0.0, 0.05), gep_betas=(1e-3, 1e-2, 1e-1, 1.0),
                     iris_choices=False)
