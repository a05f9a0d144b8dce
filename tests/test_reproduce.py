"""hwlearn reproduce on a tiny profile: the files, the table, and the physics they must show."""

import json

import pytest

from hwlearn.app.reproduce import reproduce
from hwlearn.app.reproduce.common import Profile

TINY = Profile("tiny", seeds=2, epochs=4, bias_draws=400, betas=(0.01, 0.1), sigmas=(0.0, 0.1),
               train_sigmas=(0.0, 0.1), frozen=(0.0, 0.5))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    return out, reproduce(out, profile=TINY, progress=lambda line: None)


def test_reproduce_writes_every_figure_and_the_table(table):
    out, result = table
    for name in result["figures"]:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert json.loads((out / "results.json").read_text())["schema"] == "hwlearn.reproduce/1"
    assert set(result["iris"]["rules"]) == {"omega", "ep", "ep_symmetric", "coupled"}
    assert set(result["partial_updates"]["omega"]) == {"0.0", "0.5"}


def test_noise_free_two_phase_bias_matches_the_analytic_prediction(table):
    _, result = table
    rows = [r for r in result["noise"]["gradient_bias"] if r["rule"] == "ep" and r["sigma"] == 0.0]
    for row in rows:
        assert row["relative_bias"] == pytest.approx(row["predicted"], rel=1e-6)
    assert rows[1]["relative_bias"] / rows[0]["relative_bias"] == pytest.approx(10.0, rel=1e-3)


def test_omega_is_unbiased_and_two_phase_limit_is_the_scaled_gradient(table):
    _, result = table
    omega = [r for r in result["noise"]["gradient_bias"] if r["rule"] == "omega"]
    assert omega[0]["relative_bias"] < 1e-12  # no noise: exact
    assert omega[1]["relative_bias"] < 4 * omega[1]["mc_floor"]  # noise: within Monte-Carlo error
    assert result["noise"]["ep_limit_vs_exact_times_load"] < 1e-12
