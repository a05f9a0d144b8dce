"""The experiment file: everything is validated before anything runs, errors name key and value."""

import re
from pathlib import Path

import numpy as np
import pytest

from hwlearn.builders import lattice
from hwlearn.config import load_experiment, resolve
from hwlearn.errors import ConfigError
from hwlearn.experiment import build_experiment, make_rule
from hwlearn.network_file import save_network
from hwlearn.rules import RULES, FiniteDifference, RuleParameterError, parameters
from tests.bench_helpers import config_of, example_doc

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))
# Bench files (a [bench] table, e.g. virtual-crossbar.toml) and experiments made for a bench's network
# are not experiments of their own.
EXPERIMENTS = [p for p in EXAMPLES if "bench" not in p.name and not p.name.startswith("sweep-")
               and not p.read_text().startswith("[bench]") and "\n[bench]" not in p.read_text()]


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_every_example_experiment_validates_and_builds(path):
    config = load_experiment(path)
    experiment = build_experiment(config, str(path))
    assert experiment.learnable.size > 0
    assert experiment.ports.n_inputs == experiment.task.n_inputs


def test_defaults_are_filled_and_seeds_derived_reproducibly():
    a = resolve({}, "x.toml")
    b = resolve({}, "x.toml")
    assert a == b
    assert a["rule"] == {"name": "omega", "eta": 1e-3}
    assert all(isinstance(v, int) for v in a["seeds"].values())
    assert resolve({}, "x.toml", seed=5)["seeds"] != a["seeds"]


@pytest.mark.parametrize("doc, message", [
    ({"trainig": {}}, "unknown key 'trainig' in the top level; allowed: device, mask, name, network"),
    ({"training": {"learning_rat": 1.0}}, "unknown key 'training.learning_rat' in [training]; allowed: batch_size"),
    ({"training": {"learning_rate": float("nan")}}, "training.learning_rate = nan: must be a finite number"),
    ({"training": {"learning_rate": float("inf")}}, "training.learning_rate = inf: must be a finite number"),
    ({"training": {"learning_rate": -1.0}}, "training.learning_rate = -1.0: must be > 0"),
    ({"training": {"batch_size": 0}}, "training.batch_size = 0: must be >= 1"),
    ({"training": {"epochs": "ten"}}, "training.epochs = 'ten': must be an integer"),
    ({"training": {"update": "sgd"}}, "training.update = 'sgd': allowed: 'log_resistance', 'resistance'"),
    ({"rule": {"name": "backprop"}}, "rule.name = 'backprop': allowed: 'omega', 'ep'"),
    ({"rule": {"name": "omega", "beta": 0.1}},
     "unknown key 'rule.beta' in [rule] with name = 'omega'; allowed: eta, name"),
    ({"rule": {"name": "coupled", "eta": 1.5}}, "rule.eta = 1.5: must be <= 1"),
    ({"rule": {"name": "coupled", "eta": 0.0}}, "rule.eta = 0.0: must be > 0"),
    ({"rule": {"name": "finite_difference", "relative_step": 0.2}}, "rule.relative_step = 0.2: must be <= 0.1"),
    ({"rule": {"name": ["omega"]}}, "rule.name = ['omega']: must be a non-empty string"),
    ({"network": {"builder": ["lattice"]}}, "network.builder = ['lattice']: must be a non-empty string"),
    ({"device": {"r_min": 1e5, "r_max": 1e3}}, "device.r_min = 100000.0 must be below device.r_max = 1000.0"),
    ({"device": {"model": "ideal", "levels": 64}}, "unknown key 'device.levels' in [device] with model = 'ideal'"),
    ({"task": {"noise_sigma": -0.1}}, "task.noise_sigma = -0.1: must be >= 0"),
    ({"network": {"builder": "lattice", "input_edges": ["Rv0_0"], "output_edges": ["Rv0_0", "Rv1_5"]}},
     "network.output_edges = ['Rv0_0', 'Rv1_5']: Rv0_0 also in network.input_edges"),
    ({"network": {"builder": "file"}}, "missing key 'network.path'"),
    ({"mask": {"kind": "list"}}, "missing key 'mask.edges'"),
    ({"seeds": {"base": -3}}, "seeds.base = -3: must be >= 0"),
    ({"network": {"tunable": "some"}}, "network.tunable = 'some': must be 'all' or a list of edge names"),
])
def test_invalid_values_are_refused_naming_key_value_and_what_is_allowed(doc, message):
    with pytest.raises(ConfigError) as info:
        resolve(doc, "exp.toml")
    assert str(info.value).startswith("exp.toml: ")
    assert message in str(info.value), str(info.value)


@pytest.mark.parametrize("doc, message", [
    ({"mask": {"kind": "list", "edges": ["Rx0_0_0", "Rx0_9_9"]}}, "mask.edges: no edge named Rx0_9_9"),
    ({"mask": {"kind": "list", "edges": ["Rin0"]}}, "Rin0 cannot be updated"),
    ({"network": {"builder": "lattice", "rows": 3, "cols": 3}}, "9 boundary edges requested, a column has 2"),
    ({"network": {"builder": "lattice", "rows": 6, "cols": 6, "input_edges": ["Rv0_0"], "output_edges": ["Rv0_5"]}},
     "the network has 1 input and 1 output edges, the task 'iris' needs 9 and 3"),
    ({"network": {"builder": "crossbar", "input_edges": 4}}, "network.input_edges = 4: a crossbar has one input"),
    ({"network": {"builder": "file", "path": "/nonexistent/net.json"}}, "cannot read /nonexistent/net.json"),
    ({"network": {"builder": "random", "nodes": 12, "edges": 30, "input_edges": ["R0", "R1", "R2"]},
      "task": {"name": "teacher", "inputs": 3, "outputs": 2}}, "both as edge names or both as counts"),
])
def test_inconsistencies_found_when_building_name_the_key(doc, message):
    with pytest.raises(ConfigError) as info:
        build_experiment(resolve(doc, "exp.toml"), "exp.toml")
    assert message in str(info.value), str(info.value)


def test_bad_toml_and_missing_files_are_reported(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[training\nlearning_rate = 1\n")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_experiment(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_experiment(tmp_path / "missing.toml")


def _edges_of(spec):
    """Values just inside and just outside each bound of a rule parameter."""
    inside, outside = [], []
    for bound, is_open, step in ((spec.minimum, spec.open_minimum, -1), (spec.maximum, spec.open_maximum, 1)):
        if bound is None:
            continue
        nudge = step * max(abs(bound), 1.0) * 1e-9
        inside.append(bound - nudge if is_open else bound)
        outside.append(bound if is_open else bound + nudge)
    return inside, outside


@pytest.mark.parametrize("name", list(RULES))
def test_the_rule_section_is_the_rule_classes_parameters_with_their_defaults_and_bounds(name):
    cls = RULES[name]
    config = resolve({"rule": {"name": name}}, "exp.toml")
    assert config["rule"] == {"name": name, **{k: default for k, (_, default) in parameters(cls).items()}}
    assert build_experiment(config).rule == cls()
    for key, (spec, _) in parameters(cls).items():
        inside, outside = _edges_of(spec)
        for value in inside:  # allowed by the file and by the rule alike
            rule = build_experiment(resolve({"rule": {"name": name, key: value}}, "exp.toml")).rule
            assert getattr(rule, key) == value
        for value in outside:  # refused by both, before anything is built
            with pytest.raises(ConfigError, match=f"rule.{key} = "):
                resolve({"rule": {"name": name, key: value}}, "exp.toml")
            with pytest.raises(RuleParameterError):
                cls(**{key: value})


def test_an_unknown_rule_name_is_refused_not_turned_into_another_rule():
    with pytest.raises(ConfigError, match="exp.toml: .*unknown rule 'backprop'; known rules: omega, ep"):
        make_rule({"name": "backprop"}, "exp.toml")


def test_finite_differences_accept_the_documented_largest_step():
    config = resolve({"rule": {"name": "finite_difference", "relative_step": 0.1}}, "exp.toml")
    assert build_experiment(config).rule == FiniteDifference(0.1)


# ------------------------------------------------------------------------------ [network], both files
@pytest.mark.parametrize("table, message", [
    ({"builder": "lattice", "rows": 0, "cols": 4}, "network.rows = 0: must be >= 1"),
    ({"builder": "lattice", "rows": 1, "cols": 1}, "a lattice needs at least 2 nodes"),
    ({"builder": "lattice", "rows": 4, "cols": 4, "resistance_ohms": 1e3},
     "network.resistance_ohms has been renamed: write network.ohms instead"),
    ({"builder": "random", "nodes": 8, "edges": 14, "ohms_min": 600.0, "ohms_max": 500.0},
     "network.ohms_min = 600.0: must be below network.ohms_max = 500.0"),
])
def test_experiment_and_bench_files_refuse_the_same_network_alike(table, message):
    bench = example_doc()
    bench["network"] = dict(table, **({"seed": 1} if table["builder"] == "random" else {}))
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_of(bench)
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_experiment(resolve({"network": table, "task": {"name": "teacher", "inputs": 1, "outputs": 1}},
                                 "exp.toml"), "exp.toml")


def test_a_random_network_takes_its_resistance_range_in_either_file():
    table = {"builder": "random", "nodes": 8, "edges": 14, "ohms_min": 500.0, "ohms_max": 600.0}
    exp = build_experiment(resolve({"network": {**table, "initial_spread": 0.0}, "mask": {"kind": "all"},
                                    "task": {"name": "teacher", "inputs": 2, "outputs": 1}}, "exp.toml"))
    fixed = np.flatnonzero(exp.network.roles["input"] | exp.network.roles["output"])
    assert np.all((exp.network.resistance[fixed] >= 500.0) & (exp.network.resistance[fixed] <= 600.0))


def test_an_experiment_names_its_network_file_relative_to_itself(tmp_path, monkeypatch):
    save_network(lattice(3, 3, inputs=1, outputs=1), tmp_path / "net.json")
    (tmp_path / "exp.toml").write_text('[network]\nbuilder = "file"\npath = "net.json"\n'
                                       '[task]\nname = "teacher"\ninputs = 1\noutputs = 1\n')
    monkeypatch.chdir(tmp_path.parent)
    config = load_experiment(tmp_path / "exp.toml")
    assert config["network"]["path"] == str(tmp_path / "net.json")  # absolute in the resolved copy
    assert build_experiment(config).network.n_edges == 12
def test_a_file_that_is_not_utf8_is_a_config_error_naming_the_byte(tmp_path):
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('name = "résistance"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.toml:1: not UTF-8 text \(byte 0xe9 at offset 9\)"):
        load_experiment(latin1)
