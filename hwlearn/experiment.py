"""From a resolved experiment config to the objects a run needs.

Cross-checks that need the built network happen here and raise ConfigError naming the key:
edge names that do not exist, a count of inputs that does not match the task, a mask naming an
edge that cannot be updated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwlearn import builders
from hwlearn.config.network import build_network as build_topology
from hwlearn.errors import ConfigError, HwlearnError
from hwlearn.network import Network
from hwlearn.ports import Ports
from hwlearn.rules import Rule, RuleParameterError, rule_from_config
from hwlearn.rules.probe import probe_refusal
from hwlearn.tasks import IrisTask, Task, TeacherTask


@dataclass
class Experiment:
    config: dict
    network: Network
    ports: Ports
    task: Task
    rule: Rule
    learnable: np.ndarray
    initial_ohms: np.ndarray
    rngs: dict[str, np.random.Generator]
    source: str = "<config>"


def make_rule(config: dict, source: str = "<config>") -> Rule:
    """The rule object of a validated [rule] table (hwlearn.rules.registry)."""
    try:
        return rule_from_config(config)
    except RuleParameterError as exc:
        raise ConfigError(f"{source}: [rule]: {exc}") from None


def _edge_spec(value, default_count: int):
    return default_count if value == "auto" else value


def build_network(cfg: dict, d_in: int, d_out: int, source: str, seed: int) -> Network:
    """The experiment's network: the shared builder (hwlearn.config.network) with the keys an
    experiment derives (a crossbar's lines from the task, a random graph's seed from seeds.init)
    and its input and output edges placed as network.input_edges / output_edges say."""
    kind = cfg["builder"]
    spec = {**cfg, "inputs": d_in, "outputs": d_out, "seed": seed}
    counts = [_edge_spec(cfg[k], d) for k, d in (("input_edges", d_in), ("output_edges", d_out))]
    try:
        if kind == "crossbar":
            for key, want in (("input_edges", d_in), ("output_edges", d_out)):
                value = cfg[key]
                if value not in ("auto", want):
                    raise ConfigError(f"{source}: network.{key} = {value!r}: a crossbar has one input edge "
                                      f"per input line and one output edge per output line; use 'auto' ({want})")
            return build_topology(spec, source)
        if kind == "lattice":
            return build_topology(spec, source, inputs=counts[0], outputs=counts[1])
        if kind == "random":
            named = [isinstance(c, list) for c in counts]
            if any(named) and not all(named):
                raise ConfigError(f"{source}: network.input_edges = {cfg['input_edges']!r}, network.output_edges = "
                                  f"{cfg['output_edges']!r}: a random graph takes both as edge names or both as "
                                  "counts (or 'auto'), so chosen and random edges cannot collide")
            if all(named):
                return builders.with_default_roles(build_topology(spec, source), *counts)
            return build_topology(spec, source, inputs=counts[0], outputs=counts[1])
        net = build_topology(spec, source)
        inputs = None if cfg["input_edges"] == "auto" else cfg["input_edges"]
        outputs = None if cfg["output_edges"] == "auto" else cfg["output_edges"]
        if inputs is not None or outputs is not None:
            net = net.with_roles(**({"input": inputs} if inputs is not None else {}),
                                 **({"output": outputs} if outputs is not None else {}))
        return net
    except ConfigError:
        raise
    except HwlearnError as exc:
        raise ConfigError(f"{source}: [network]: {exc}") from None


def _named_edges(net: Network, names, key: str, source: str) -> np.ndarray:
    try:
        return net.edge_indices(names, key)
    except HwlearnError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def build_experiment(config: dict, source: str = "<config>", network: Network | None = None) -> Experiment:
    """The experiment's objects. ``network``: a given network (a bench's board) with its roles,
    used instead of [network]'s builder; 'all' for tunable/readable then means its roles."""
    seeds = config["seeds"]
    rngs = {name: np.random.default_rng(seeds[name]) for name in ("shuffle", "noise", "device")}
    task_cfg = config["task"]
    iris = None
    if task_cfg["name"] == "iris":  # needs no network: built first, it says how many ports there are
        iris = IrisTask(test_fraction=task_cfg["test_fraction"], encoding=task_cfg["encoding"],
                        bias=task_cfg["bias"], target_scale=task_cfg["target_scale"],
                        noise_sigma=task_cfg["noise_sigma"], seed=seeds["split"])
        d_in, d_out = iris.n_inputs, iris.n_outputs
    else:
        d_in, d_out = task_cfg["inputs"], task_cfg["outputs"]
    net_cfg = config["network"]
    if network is None:
        net = build_network(net_cfg, d_in, d_out, source, seeds["init"])
    else:
        for key in ("input_edges", "output_edges"):
            if isinstance(net_cfg[key], int):
                raise ConfigError(f"{source}: network.{key} = {net_cfg[key]!r}: with a bench, name the edges "
                                  "or use 'auto' (the bench's wiring)")
        net = network
    inputs, outputs = net.inputs, net.outputs
    if isinstance(net_cfg["input_edges"], list):
        inputs = _named_edges(net, net_cfg["input_edges"], "network.input_edges", source)
    if isinstance(net_cfg["output_edges"], list):
        outputs = _named_edges(net, net_cfg["output_edges"], "network.output_edges", source)
    if inputs.size != d_in or outputs.size != d_out:
        raise ConfigError(f"{source}: the network has {inputs.size} input and {outputs.size} output edges, "
                          f"the task '{config['task']['name']}' needs {d_in} and {d_out} "
                          "(network.input_edges / network.output_edges)")
    io = np.zeros(net.n_edges, dtype=bool)
    io[inputs] = io[outputs] = True
    # Port edges whose resistors may be tuned as well (network.tunable_ports): the paper's
    # lattice reads its outputs across ordinary, trained mesh resistors.
    tunable_io = np.zeros(net.n_edges, dtype=bool)
    if net_cfg["tunable_ports"] in ("outputs", "all"):
        tunable_io[outputs] = True
    if net_cfg["tunable_ports"] == "all":
        tunable_io[inputs] = True
    fixed_io = io & ~tunable_io
    # A bench's board and a crossbar say which edges are devices (a crossbar's line segments and
    # selectors are not); elsewhere 'all' is every edge but the fixed ports.
    own_roles = network is not None or net_cfg["builder"] == "crossbar"
    all_tunable = net.roles["tunable"] & ~fixed_io if own_roles else ~fixed_io
    all_readable = net.roles["readable"] | net.roles["output"] if network is not None else np.ones(net.n_edges, bool)
    tunable = all_tunable if net_cfg["tunable"] == "all" else np.isin(
        np.arange(net.n_edges), _named_edges(net, net_cfg["tunable"], "network.tunable", source))
    readable = all_readable if net_cfg["readable"] == "all" else np.isin(
        np.arange(net.n_edges), _named_edges(net, net_cfg["readable"], "network.readable", source))
    clash = np.flatnonzero(tunable & fixed_io)
    if clash.size:
        raise ConfigError(f"{source}: network.tunable names {net.edge_names[clash[0]]}, an input or output edge; "
                          f"network.tunable_ports = {net_cfg['tunable_ports']!r} keeps it fixed (allowed: 'none', "
                          "'outputs', 'all')")
    net = net.with_roles(input=inputs, output=outputs, tunable=tunable, readable=readable)
    ports = Ports.from_roles(net, inputs=inputs, outputs=outputs, gain=config["training"]["gamma"])

    initial = net.resistance.copy()
    tunable_idx = np.flatnonzero(tunable)
    init_rng = np.random.default_rng(seeds["init"])
    spread = net_cfg["initial_spread"]
    initial[tunable_idx] = net_cfg["initial_ohms"] * np.exp(spread * init_rng.standard_normal(tunable_idx.size))
    if net_cfg.get("output_spread") is not None:
        if network is not None and not tunable[outputs].all():
            raise ConfigError(f"{source}: network.output_spread = {net_cfg['output_spread']!r}: the bench's fixed "
                              "output edges hold what the board holds; give output_spread only for a simulated "
                              "network or tunable outputs (network.tunable_ports)")
        # Drawn after every other initial value, so that adding the key changes nothing else.
        initial[outputs] = net_cfg["initial_ohms"] * np.exp(
            net_cfg["output_spread"] * init_rng.standard_normal(outputs.size))

    learnable = np.flatnonzero(tunable & readable)
    mask = config["mask"]
    if mask["kind"] == "random":
        frozen = int(round(mask["frozen_fraction"] * learnable.size))
        keep = np.random.default_rng(seeds["mask"]).permutation(learnable.size)[frozen:]
        learnable = np.sort(learnable[keep])
    elif mask["kind"] == "list":
        chosen = _named_edges(net, mask["edges"], "mask.edges", source)
        bad = [net.edge_names[k] for k in chosen if k not in set(learnable.tolist())]
        if bad:
            raise ConfigError(f"{source}: mask.edges = {mask['edges']!r}: {', '.join(bad)} cannot be updated "
                              "(an update needs an edge that is tunable and readable)")
        learnable = np.sort(chosen)
    if learnable.size == 0:
        raise ConfigError(f"{source}: no edge can be updated: check network.tunable, network.readable and [mask]")

    if iris is not None:
        task = iris
    else:
        teacher = initial.copy()
        t_rng = np.random.default_rng(seeds["teacher"])
        teacher[tunable_idx] = net_cfg["initial_ohms"] * np.exp(
            task_cfg["teacher_spread"] * t_rng.standard_normal(tunable_idx.size))
        dev = config["device"]
        teacher[tunable_idx] = np.clip(teacher[tunable_idx], dev["r_min"], dev["r_max"])
        task = TeacherTask(ports, teacher, train_samples=task_cfg["train_samples"],
                           test_samples=task_cfg["test_samples"], noise_sigma=task_cfg["noise_sigma"],
                           seed=seeds["teacher"])
    rule = make_rule(config["rule"], source)
    refusal = probe_refusal(rule) if config.get("plan") == "probe" else None
    if refusal:
        raise ConfigError(f"{source}: plan = 'probe': {refusal}; use plan = 'per-sample' or 'auto'")
    return Experiment(config, net, ports, task, rule, learnable, initial, rngs, source)
