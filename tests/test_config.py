"""The experiment file: everything is validated before anything runs, errors name key and value."""

from pathlib import Path

import pytest

from hwlearn.config import load_experiment, resolve
from hwlearn.errors import ConfigError
from hwlearn.experiment import build_experiment

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))
EXPERIMENTS = [p for p in EXAMPLES if "bench" not in p.name]


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
    ({"rule": {"name": "coupled", "eta": 1.5}}, "rule.eta = 1.5: Coupled Learning's clamp fraction must be in (0, 1]"),
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


def test_a_file_that_is_not_utf8_is_a_config_error_naming_the_byte(tmp_path):
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('name = "résistance"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.toml: not UTF-8 text \(byte 0xe9 at offset 9\)"):
        load_experiment(latin1)
