"""The sweep file: expansion into resolved points, and every error named before anything runs."""

from __future__ import annotations

import numpy as np
import pytest

from hwlearn.app.sweep import expand, load_sweep
from hwlearn.cli import with_default_verb
from hwlearn.errors import ConfigError
from tests.cli_helpers import ROOT, hwlearn

EXPERIMENT = """
name = "teacher"
[task]
name = "teacher"
train_samples = 20
test_samples = 10
[rule]
name = "ep"
beta = 0.01
[training]
epochs = 2
"""


def sweep_file(tmp_path, text: str):
    (tmp_path / "base.toml").write_text(EXPERIMENT)
    path = tmp_path / "s.toml"
    path.write_text('experiment = "base.toml"\n' + text)
    return path


def test_grid_draws_and_seeds_expand_into_resolved_named_points(tmp_path):
    spec = load_sweep(sweep_file(tmp_path, """
seeds = 2
[grid]
"training.learning_rate" = [10.0, 30.0]
rule.beta = [0.01, 0.1]
[random]
draws = 3
seed = 7
"network.initial_spread" = { uniform = [0.1, 0.5] }
"training.batch_size" = { int_uniform = [4, 8] }
"""))
    points = expand(spec)
    assert len(points) == 2 * 2 * 3 * 2
    assert [p.seed for p in points[:4]] == [0, 1, 0, 1]
    assert points[0].params["training.learning_rate"] == 10.0 and points[-1].params["rule.beta"] == 0.1
    spreads = [p.params["network.initial_spread"] for p in points]
    assert all(0.1 <= s <= 0.5 for s in spreads) and len(set(spreads)) == 3
    assert all(p.params["training.batch_size"] in range(4, 9) for p in points)
    assert [p.params for p in expand(load_sweep(spec.path))] == [p.params for p in points]  # drawn from random.seed
    first = points[0]
    assert first.name.startswith("0000_learning_rate=10.0_beta=0.01_initial_spread=") and first.name.endswith("seed=0")
    assert first.config["training"]["learning_rate"] == 10.0 and first.config["rule"]["beta"] == 0.01
    assert first.config["seeds"]["base"] == 0 and all(isinstance(v, int) for v in first.config["seeds"].values())
    assert first.config["seeds"] != points[1].config["seeds"]
    assert first.config["task"]["train_samples"] == 20  # the rest from the base file


def test_log_uniform_draws_stay_inside_and_spread_over_decades(tmp_path):
    spec = load_sweep(sweep_file(tmp_path, '[random]\ndraws = 200\n"training.learning_rate" = '
                                           '{ log_uniform = [1e-3, 1e3] }\n'))
    values = np.array([p.params["training.learning_rate"] for p in expand(spec)])
    assert values.min() >= 1e-3 and values.max() <= 1e3
    assert (values < 1e-1).sum() > 30 and (values > 10).sum() > 30  # uniform in the logarithm


def test_without_seeds_a_point_keeps_the_experiments_own(tmp_path):
    points = expand(load_sweep(sweep_file(tmp_path, '[grid]\n"training.epochs" = [1, 2]\n')))
    assert [p.seed for p in points] == [0, 0] and points[0].name == "0000_epochs=1_seed=0"


@pytest.mark.parametrize("text, message", [
    ('[grid]\n"training.lerning_rate" = [1.0]\n',
     "s.toml: [grid]: unknown key 'training.lerning_rate': no 'lerning_rate' in [training]; allowed: batch_size"),
    ('[grid]\n"training" = [1.0]\n', "'training' is the table [training], not a value"),
    ('[grid]\n"seeds.base" = [1, 2]\n', "seeds are swept with the top-level key `seeds = [...]`"),
    ('[grid]\n"training.epochs" = []\n', "s.toml: grid.training.epochs = []: is an empty axis"),
    ('[grid]\n"training.epochs" = 3\n', "grid.training.epochs = 3: must be a list of values"),
    ('[grid]\n"training.learning_rate" = [1.0, -1.0]\n',
     "point 1 (training.learning_rate = -1.0): training.learning_rate = -1.0: must be > 0"),
    ('seeds = [0, 1]\n[grid]\n"rule.eta" = [0.1]\n',
     "point 0 (rule.eta = 0.1, seed 0): unknown key 'rule.eta' in [rule] with name = 'ep'"),
    ('[grid]\n"network.tunable" = [["nope"]]\n', "point 0 (network.tunable = nope)"),
    ('[grid]\n"training.epochs" = [2, 2]\n', "points 0 and 1 have the same setting (training.epochs = 2)"),
    ('[grid]\n"rule.beta" = [0.1]\n[random]\n"rule.beta" = { uniform = [0.1, 0.2] }\n',
     "'rule.beta' is both a [grid] and a [random] axis"),
    ('[random]\n"rule.beta" = { log_uniform = [0.0, 1.0] }\n', "needs low > 0"),
    ('[random]\n"rule.beta" = { uniform = [0.5, 0.1] }\n', "needs low < high"),
    ('[random]\n"rule.beta" = { normal = [0.0, 1.0] }\n', "must be one distribution"),
    ('[random]\ndraws = 0\n"rule.beta" = { uniform = [0.1, 0.2] }\n', "random.draws = 0: must be >= 1"),
    ('seeds = [1, 1]\n', "seed 1 is given twice"),
    ('seeds = 0\n', "a count of seeds must be >= 1"),
    ('retry = 1\n', "unknown key 'retry' at the top level; allowed: experiment, name, seeds, retries, grid, random"),
])
def test_a_bad_sweep_file_is_refused_naming_the_key_the_value_and_the_point(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        expand(load_sweep(sweep_file(tmp_path, text)))
    assert message in str(error.value)


def test_a_refused_sweep_starts_nothing(tmp_path):
    path = sweep_file(tmp_path, '[grid]\n"training.learning_rate" = [1.0, -1.0]\n')
    proc = hwlearn("sweep", path, "--out", tmp_path / "out", "--workers", "1", check=False)
    assert proc.returncode == 2 and "point 1 (training.learning_rate = -1.0)" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_the_sweep_file_is_the_default_verb_and_the_verbs_stay_verbs():
    assert with_default_verb(["sweep", "lr.toml", "--workers", "2"]) == ["sweep", "run", "lr.toml", "--workers", "2"]
    assert with_default_verb(["sweep", "--out", "x", "lr.toml"]) == ["sweep", "run", "--out", "x", "lr.toml"]
    assert with_default_verb(["sweep", "show", "d"]) == ["sweep", "show", "d"]
    assert with_default_verb(["sweep", "run", "show"]) == ["sweep", "run", "show"]  # a file named 'show'
    assert with_default_verb(["sweep", "--help"]) == ["sweep", "--help"]
    assert with_default_verb(["train", "x.toml"]) == ["train", "x.toml"]


def test_resume_and_show_refuse_folders_that_hold_no_sweep(tmp_path):
    path = sweep_file(tmp_path, '[grid]\n"training.epochs" = [1]\n')
    proc = hwlearn("sweep", path, "--out", tmp_path / "none", "--resume", check=False)
    assert proc.returncode == 2 and "not a sweep folder" in proc.stderr
    proc = hwlearn("sweep", "show", tmp_path, check=False)
    assert proc.returncode == 2 and "not a sweep folder (index.sqlite is missing)" in proc.stderr


def test_every_example_sweep_expands():
    examples = sorted((ROOT / "examples").glob("sweep-*.toml"))
    assert examples
    for path in examples:
        assert len(expand(load_sweep(path))) > 1
