"""The experiment file: network, task, rule, training, device, mask, seeds, recording.

``load_experiment`` validates everything before anything runs and returns the resolved config:
every default filled in and every seed drawn, so the run folder's copy reproduces the run.
docs/configuration.md lists every key (generated from this schema by ``describe_schema``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hwlearn.builders import PLACEMENTS
from hwlearn.config.network import network_section
from hwlearn.config.schema import REQUIRED, Field, Section, Validator, load_toml
from hwlearn.errors import ConfigError
from hwlearn.rules import RULES, Parameter, parameters
from hwlearn.rules.probe import ON_NONLINEAR, PLANS

MAX_TASK_VALUES = 50_000_000  # numbers of a generated dataset (8 bytes each)
SEED_STREAMS = ("split", "init", "shuffle", "noise", "mask", "teacher", "device")
EDGE_LIST = "str|int|list[str]"  # "auto", a count placed by the builder, or edge names


LABEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def _folder_label(value: str) -> str | None:
    """Run folders are named after this: nothing that leaves runs/ (../, /abs) or breaks a path (NUL)."""
    if LABEL.fullmatch(value):
        return None
    return ("must be a plain folder-name label: letters, digits, '.', '_' and '-', at most 64 characters, "
            "not starting with '.' or '-' (no '/')")


def _positive(doc: str, default=REQUIRED, **kw) -> Field:
    return Field("float", default, doc, minimum=0.0, exclusive_minimum=True, **kw)


NETWORK = network_section(
    "the resistor network",
    role_fields={
        "input_edges": Field(EDGE_LIST, "auto", "input edges: names, a count placed by the builder, "
                             "or 'auto' (as many as the task has inputs; a file's own roles)"),
        "output_edges": Field(EDGE_LIST, "auto", "output edges, in target order; as input_edges"),
        "placement": Field("str", "sides", "lattice: where counted input and output edges go: 'sides' (inputs "
                           "on the left boundary, outputs on the right) or 'interior' (the paper's setting: inputs "
                           "spread around the boundary, outputs across interior edges of the middle column)",
                           choices=PLACEMENTS),
        "initial_ohms": _positive("initial resistance of the tunable edges (and of the teacher's)", 10_000.0),
        "initial_spread": Field("float", 0.3, "log-normal spread of the initial tunable resistances "
                                "(0: all equal)", minimum=0.0),
        "tunable": Field("str|list[str]", "all", "'all' (every edge but inputs and outputs, and the port edges "
                         "tunable_ports adds; on a crossbar every crosspoint) or edge names"),
        "tunable_ports": Field("str", "none", "port edges whose resistors are tunable too: 'none' (fixed source "
                               "and load resistors), 'outputs' (the paper's setting: the outputs are ordinary mesh "
                               "resistors, read across and trained like the others) or 'all' (inputs too)",
                               choices=("none", "outputs", "all")),
        "output_spread": Field("float", None, "log-normal spread of the output edges' initial resistances around "
                               "initial_ohms (0: all equal to it), tunable or fixed", minimum=0.0,
                               default_doc="tunable outputs: initial_spread; fixed ones: the builder's value"),
        "readable": Field("str|list[str]", "all", "'all' (every edge) or edge names"),
    },
    defaults={"ohms": (None, "initial_ohms")},
    # A crossbar has one line per task input and output; a random graph draws from seeds.init.
    derived=("inputs", "outputs", "seed"),
)

TASK = Section(
    {
        "name": Field("str", "iris", "the task", choices=("iris", "teacher")),
        "test_fraction": Field("float", 0.3, "iris: stratified test share", minimum=0.05, maximum=0.9),
        "encoding": Field("str", "differential", "iris: 'differential' feeds every standardised feature "
                          "and its negative (signed weights from a passive network), 'single' only the feature",
                          choices=("differential", "single")),
        "bias": Field("float", 1.0, "iris: value of the constant bias input (0: no bias input)"),
        "target_scale": _positive("iris: volts of the target class's output (others 0)", 0.2),
        "train_samples": Field("int", 120, "teacher: training samples", minimum=1, maximum=1_000_000),
        "test_samples": Field("int", 60, "teacher: test samples", minimum=1, maximum=1_000_000),
        "inputs": Field("int", 4, "teacher: input dimension (input edges)", minimum=1, maximum=10_000),
        "outputs": Field("int", 2, "teacher: output dimension (output edges)", minimum=1, maximum=10_000),
        "teacher_spread": Field("float", 1.0, "teacher: log-normal spread of the hidden network's "
                                "resistances around initial_ohms", minimum=0.0),
        "noise_sigma": Field("float", 0.0, "std of zero-mean Gaussian noise added to every target "
                             "each time a sample is drawn (volts)", minimum=0.0),
    },
    doc="what the network learns",
    variant_key="name",
    variants={
        "iris": ("test_fraction", "encoding", "bias", "target_scale"),
        "teacher": ("train_samples", "test_samples", "inputs", "outputs", "teacher_spread"),
        "*": ("noise_sigma",),
    },
)

def _rule_field(spec: Parameter, default) -> Field:
    """A rule parameter as a config key: the rule's own default, bounds and meaning."""
    return Field(spec.kind, default, spec.doc + (f" ({spec.unit})" if spec.unit else ""),
                 minimum=spec.minimum, maximum=spec.maximum, exclusive_minimum=spec.open_minimum,
                 exclusive_maximum=spec.open_maximum)


# Generated from the rule registry: a rule's parameters are its keys, with its defaults and bounds.
RULE = Section(
    {"name": Field("str", "omega", "the learning rule", choices=tuple(RULES))},
    doc="how the gradient is estimated",
    variant_key="name",
    variant_fields={name: {key: _rule_field(spec, default) for key, (spec, default) in parameters(cls).items()}
                    for name, cls in RULES.items()},
)

TRAINING = Section(
    {
        "gamma": _positive("volts applied per unit of input", 1.0),
        "learning_rate": _positive("step size on the chosen parametrisation", 30.0),
        "batch_size": Field("int", 16, "samples per update", minimum=1, maximum=1_000_000),
        "epochs": Field("int", 100, "passes over the training set", minimum=1, maximum=1_000_000),
        "update": Field("str", "log_resistance", "parametrisation of the descent step: "
                        "log_resistance (r <- r exp(-lr r g)), resistance (r <- r - lr g), "
                        "conductance (G <- G + lr r^2 g)", choices=("log_resistance", "resistance", "conductance")),
    },
    doc="optimisation",
)

DEVICE = Section(
    {
        "model": Field("str", "ideal", "device model of the tunable resistors",
                       choices=("ideal", "digipot", "memristor")),
        "r_min": _positive("lowest resistance an update may reach (ohms)", 100.0),
        "r_max": _positive("highest resistance an update may reach (ohms)", 1e6),
        "levels": Field("int", 256, "digipot: wiper positions", minimum=2, maximum=1_000_000),
        "end_to_end_ohms": _positive("digipot: nominal end-to-end resistance", 100_000.0),
        "wiper_ohms": Field("float", 60.0, "digipot: wiper resistance", minimum=0.0),
        "tolerance": Field("float", 0.2, "digipot: per-device end-to-end tolerance (uniform +-)",
                           minimum=0.0, maximum=0.5),
        "nonlinearity": Field("float", 1.0, "memristor: exponent of the state-dependent step "
                              "(0: linear)", minimum=0.0),
        "asymmetry": _positive("memristor: ratio of step sizes, increase over decrease", 1.0),
        "read_noise_volts": Field("float", 0.0, "std of Gaussian noise on every measured voltage", minimum=0.0),
        "write_noise": Field("float", 0.0, "relative std of the resistance actually written", minimum=0.0),
    },
    doc="the simulated devices",
    variant_key="model",
    variants={
        "ideal": (),
        "digipot": ("levels", "end_to_end_ohms", "wiper_ohms", "tolerance"),
        "memristor": ("nonlinearity", "asymmetry"),
        "*": ("r_min", "r_max", "read_noise_volts", "write_noise"),
    },
)

MASK = Section(
    {
        "kind": Field("str", "all", "which learnable edges are updated", choices=("all", "random", "list")),
        "frozen_fraction": Field("float", 0.5, "random: share of learnable edges never updated",
                                 minimum=0.0, maximum=0.99),
        "edges": Field("list[str]", REQUIRED, "list: the edges that are updated"),
    },
    doc="partial updates",
    variant_key="kind",
    variants={"all": (), "random": ("frozen_fraction",), "list": ("edges",)},
)

SEEDS = Section(
    {"base": Field("int", 0, "every stream not given is derived from this", minimum=0),
     **{name: Field("int", None, f"seed of the {name} stream", minimum=0, default_doc="derived from base")
        for name in SEED_STREAMS}},
    doc="random streams",
)

PROBE = Section(
    {
        "repeats": Field("int", 1, "scans of every probe phase, averaged (the linearity check is scanned once)",
                         minimum=1, maximum=100),
        "headroom": Field("float", 0.5, "fraction of the largest amplitude the bench limits allow at which each "
                          "probe is driven", minimum=0.0, maximum=1.0, exclusive_minimum=True),
        "on_nonlinear": Field("str", "per-sample", "when the linearity check fails: 'per-sample' measures the "
                              "step again with the per-sample plan, 'pause' waits for an operator (the GUI; "
                              "then per-sample), 'fail' ends the run; nothing from the failed step is programmed",
                              choices=ON_NONLINEAR),
    },
    doc="the probe plan (docs/bench.md, \"Probe plans\")",
)

RECORD = Section(
    {
        "array_every": Field("int", 10, "steps between recorded arrays (resistances, phase voltages)", minimum=1),
        "checkpoint_every": Field("int", 20, "steps between checkpoints (and at every epoch end)", minimum=1),
    },
    doc="what is written to the run folder",
)

SUPERVISION = Section(
    {
        "compliance_per_minute": Field("float", None, "suspend the run while more readings than this were refused "
                                       "(a source in compliance, a value out of band) in the last minute; "
                                       "unset: no limit", minimum=0.0),
        "faults_per_minute": Field("float", None, "suspend the run while the instrument links met more faults than "
                                   "this (timeouts, garbled replies, lost links) in the last minute; unset: no limit",
                                   minimum=0.0),
        "reading_band_volts": _positive("a measured voltage whose magnitude is above this is refused like a "
                                        "reading in compliance; unset: no band", None, maximum=1000.0),
        "reading_retries": Field("int", 0, "times a refused reading is measured again before the run fails "
                                 "(0: the first refusal fails it)", minimum=0, maximum=10),
        "on_clear": Field("str", "resume", "when the conditions of a suspension clear: go on, or abort the run",
                          choices=("resume", "abort")),
        "max_suspended_s": _positive("abort when a suspension lasts longer (seconds)", 300.0, maximum=86400.0),
        "poll_s": _positive("how often a suspended run checks its conditions (seconds)", 1.0, maximum=60.0),
    },
    doc="what suspends a bench run and what refuses a reading (docs/reliability.md)",
)

EXPERIMENT = Section(
    {
        "name": Field("str", "experiment", "a label for the run folder: letters, digits, '.', '_' and '-', "
                      "at most 64, not starting with '.' or '-'", check=_folder_label),
        "plan": Field("str", "auto", "how a bench measures a step: 'probe' (d_in + d_out unit responses and a "
                      "linearity check per step), 'per-sample' (every sample's phases), 'auto' (probe where the rule "
                      "and the batch allow it and the bench's twin confirms linearity)", choices=PLANS),
        "network": NETWORK,
        "task": TASK,
        "rule": RULE,
        "training": TRAINING,
        "device": DEVICE,
        "mask": MASK,
        "probe": PROBE,
        "seeds": SEEDS,
        "record": RECORD,
        "supervision": SUPERVISION,
    }
)

def resolve(doc: dict, source: str, seed: int | None = None, base_dir: Path | None = None) -> dict:
    """Validate a parsed experiment document and fill every default and derived seed.

    base_dir: the experiment file's directory; a relative network.path is made absolute from it
    (so that the resolved copy in a run folder finds the same file). None: relative to the
    working directory."""
    config = Validator(source).section("", doc, EXPERIMENT)
    dev = config["device"]
    if dev["r_min"] >= dev["r_max"]:
        raise ConfigError(f"{source}: device.r_min = {dev['r_min']!r} must be below device.r_max = {dev['r_max']!r}")
    net = config["network"]
    if net.get("ohms", 0.0) is None:
        net["ohms"] = net["initial_ohms"]
    if "path" in net and base_dir is not None:
        net["path"] = str(Path(base_dir, net["path"]).absolute())
    for key in ("input_edges", "output_edges"):
        value = net[key]
        if isinstance(value, str) and value != "auto":
            raise ConfigError(f"{source}: network.{key} = {value!r}: must be 'auto', a count or a list of edge names")
        if isinstance(value, int) and value < 1:
            raise ConfigError(f"{source}: network.{key} = {value!r}: a count must be >= 1")
    if net.get("output_spread", 0.0) is None:  # the default: the resolved file leaves it out (TOML has no null)
        del net["output_spread"]
    if net["placement"] != "sides" and net["builder"] != "lattice":
        raise ConfigError(f"{source}: network.placement = {net['placement']!r}: places a lattice's ports; the "
                          f"{net['builder']} builder places its own (name the edges in input_edges / output_edges)")
    for key in ("tunable", "readable"):
        if isinstance(net[key], str) and net[key] != "all":
            raise ConfigError(f"{source}: network.{key} = {net[key]!r}: must be 'all' or a list of edge names")
    if isinstance(net["input_edges"], list) and isinstance(net["output_edges"], list):
        both = sorted(set(net["input_edges"]) & set(net["output_edges"]))
        if both:
            raise ConfigError(f"{source}: network.output_edges = {net['output_edges']!r}: "
                              f"{', '.join(both)} also in network.input_edges; inputs and outputs must be disjoint")
    seeds = config["seeds"]
    if seed is not None:
        if seed < 0:
            raise ConfigError(f"--seed {seed}: must be >= 0")
        seeds["base"] = seed
        seeds.update({name: None for name in SEED_STREAMS})
    derived = np.random.SeedSequence(seeds["base"]).generate_state(len(SEED_STREAMS))
    for name, value in zip(SEED_STREAMS, derived):
        if seeds[name] is None:
            seeds[name] = int(value)
    task = config["task"]
    if task["name"] == "teacher":
        values = (task["train_samples"] + task["test_samples"]) * (task["inputs"] + task["outputs"])
        if values > MAX_TASK_VALUES:
            raise ConfigError(f"{source}: task.train_samples + task.test_samples = "
                              f"{task['train_samples'] + task['test_samples']} samples of task.inputs + task.outputs = "
                              f"{task['inputs'] + task['outputs']} values make {values:,} numbers; at most "
                              f"{MAX_TASK_VALUES:,} (about 400 MB) are held in memory")
    # Optional limits left unset stay out of the resolved config (TOML has no null), so the run
    # folder's config.toml resolves to the same config again.
    config["supervision"] = {k: v for k, v in config["supervision"].items() if v is not None}
    return config


def load_experiment(path: str | Path, seed: int | None = None) -> dict:
    """Read, validate and resolve an experiment file. Raises ConfigError naming key and value."""
    doc = load_toml(path)
    if not doc:  # every key has a default, but an empty file is a mistake, not a wish for Iris
        raise ConfigError(f"{path}: the experiment file is empty; give at least the task and the rule "
                          "(e.g. [task] name = 'iris' and [rule] name = 'omega'; examples/ has one per task "
                          "and rule, docs/configuration.md lists every key)")
    return resolve(doc, str(path), seed, base_dir=Path(path).parent)
