"""The solve and gradcheck commands, run as a user runs them."""

import json

import numpy as np
import pytest

from hwlearn.builders import lattice
from hwlearn.network_file import save_network
from tests.cli_helpers import ROOT, hwlearn

EXAMPLES = ROOT / "examples"


def test_solve_json_has_every_node_and_element():
    doc = json.loads(hwlearn("solve", EXAMPLES / "divider.cir", "--json").stdout)
    assert doc["schema"] == "hwlearn.solve/1"
    assert doc["node_voltages"]["0"] == 0.0
    assert set(doc["node_voltages"]) == {"0", "in", "a", "b", "bias", "c"}
    assert set(doc["currents"]) == {"R1", "R2", "R3", "R4", "R5", "R6", "R7", "V1", "V2", "I1"}
    assert doc["node_voltages"]["in"] == pytest.approx(1.0)
    # KCL at node a: R1 in, R2 + R3 + R6 out, I1 in.
    c = doc["currents"]
    assert c["R1"] + c["I1"] == pytest.approx(c["R2"] + c["R3"] + c["R6"], rel=1e-12)


def test_solve_text_output_lists_nodes_and_currents():
    out = hwlearn("solve", EXAMPLES / "divider.cir").stdout
    assert "solver backend: dense" in out and "bias" in out and "I1" in out


def test_gradcheck_json_reports_exact_gradient_and_every_rule():
    doc = json.loads(hwlearn("gradcheck", EXAMPLES / "divider.cir", "--outputs", "R3,R4",
                             "--targets", "0.2,0.3", "--json").stdout)
    assert doc["schema"] == "hwlearn.gradcheck/2"
    assert set(doc["exact"]) == {f"R{k}" for k in range(1, 8)}
    members = {"gep(order=1)", "gep(order=1,centered)", "gep(order=2)", "gep(order=2,centered)"}
    assert set(doc["rules"]) == {"omega", "ep", "ep_symmetric", "coupled", "finite_difference"} | members
    for rule in doc["rules"].values():
        assert set(rule) == {"estimate", "cosine", "relative_error", "objective"}
        assert set(rule["estimate"]) == set(doc["exact"])
        # Each against its own objective, whose analytic gradient finite differences of it confirm.
        assert rule["objective"]["finite_difference_error"] < 1e-7
        assert rule["objective"]["relative_error"] < 1e-3
    assert {doc["rules"][m]["objective"]["symbol"] for m in members} == {"l_1", "l_2"}
    assert doc["rules"]["gep(order=2,centered)"]["objective"]["relative_error"] < 1e-9
    assert doc["rules"]["ep"]["estimate"] == doc["rules"]["gep(order=1)"]["estimate"]
    assert doc["rules"]["omega"]["relative_error"] < 1e-9
    assert doc["rules"]["finite_difference"]["relative_error"] < 1e-7
    assert doc["rules"]["coupled"]["cosine"] > 0
    assert set(doc["inputs"]) == {"V1", "V2", "I1"}


def test_gradcheck_parameters_come_from_the_rules_and_a_rules_own_flag_wins():
    doc = json.loads(hwlearn("gradcheck", EXAMPLES / "divider.cir", "--outputs", "R3", "--targets", "0.2",
                             "--eta", "0.5", "--coupled-eta", "0.01", "--json").stdout)
    assert doc["parameters"] == {"omega": {"eta": 0.5}, "ep": {"beta": 1e-3}, "ep_symmetric": {"beta": 1e-3},
                                 "coupled": {"eta": 0.01}, "finite_difference": {"relative_step": 1e-5},
                                 **{f"gep(order={k}{c})": {"order": k, "centered": bool(c), "beta": 1e-3}
                                    for k in (1, 2) for c in ("", ",centered")}}
    assert doc["units"]["estimates"]["omega"].startswith("dL/dR in V^2/ohm")
    assert doc["units"]["estimates"]["ep"].startswith("A^2")


def test_gradcheck_names_one_gep_member_when_asked_for_its_order():
    doc = json.loads(hwlearn("gradcheck", EXAMPLES / "divider.cir", "--outputs", "R3,R4", "--targets", "0.2,0.3",
                             "--gep-order", "2", "--gep-centered", "true", "--gep-beta", "0.5", "--json").stdout)
    gep = [name for name in doc["rules"] if name.startswith("gep")]
    assert gep == ["gep(order=2,centered)"]
    assert doc["parameters"]["gep(order=2,centered)"] == {"order": 2, "centered": True, "beta": 0.5}
    # Centred: exact for any beta in a linear network.
    assert doc["rules"]["gep(order=2,centered)"]["objective"]["relative_error"] < 1e-9


def test_gradcheck_inputs_switch_off_the_other_sources():
    doc = json.loads(hwlearn("gradcheck", EXAMPLES / "divider.cir", "--outputs", "R4", "--targets", "0",
                             "--inputs", "V1", "--json").stdout)
    assert set(doc["inputs"]) == {"V1"}
    solved = json.loads(hwlearn("solve", EXAMPLES / "divider.cir", "--json").stdout)
    assert doc["outputs"]["R4"]["volts"] != pytest.approx(solved["node_voltages"]["b"])


def test_gradcheck_reads_a_network_file_with_input_edges(tmp_path):
    net = lattice(4, 4, inputs=2, outputs=1)
    net = net.with_series_volts(np.where(net.roles["input"], 1.0, 0.0))
    path = tmp_path / "lattice.json"
    save_network(net, path)
    doc = json.loads(hwlearn("gradcheck", path, "--outputs", "Rv0_3", "--targets", "0.1", "--json").stdout)
    assert set(doc["inputs"]) == {"Rv0_0", "Rv1_0"}
    assert doc["rules"]["finite_difference"]["relative_error"] < 1e-7


@pytest.mark.parametrize("args, message", [
    (["--outputs", "R3,R4", "--targets", "0.2"], "--targets: 1 value(s) given for 2 output(s)"),
    (["--outputs", "R99", "--targets", "0.2"], "outputs: no edge named R99"),
    (["--outputs", "R3", "--targets", "x"], "--targets: 'x' is not a number"),
    (["--outputs", "R3", "--targets", "nan"], "--targets: nan is not finite"),
    (["--outputs", "R3", "--targets", "1", "--beta", "-1"], "--beta: -1.0 is not allowed"),
    (["--outputs", "R3", "--targets", "1", "--eta", "2"], "--eta: 2.0 is not allowed"),
    (["--outputs", "R3", "--targets", "1", "--inputs", "V7"], "inputs: no source or edge named 'V7'"),
])
def test_gradcheck_bad_arguments_fail_with_a_clear_message(args, message):
    proc = hwlearn("gradcheck", EXAMPLES / "divider.cir", *args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_or_broken_files_fail_with_a_clear_message(tmp_path):
    proc = hwlearn("solve", tmp_path / "nope.cir", check=False)
    assert proc.returncode == 2 and "cannot read" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "bad.cir"
    bad.write_text("t\nR1 a 0 1k\nQ1 a b c npn\n")
    proc = hwlearn("solve", bad, check=False)
    assert proc.returncode == 2 and "line 3: unsupported element 'Q1'" in proc.stderr


@pytest.mark.parametrize("targets", ["-0.1,0.2", "-1e-1,2e-1"])
def test_gradcheck_takes_negative_targets(targets):
    doc = json.loads(hwlearn("gradcheck", EXAMPLES / "divider.cir", "--outputs", "R3,R4",
                             "--targets", targets, "--json").stdout)
    positive = json.loads(hwlearn("gradcheck", EXAMPLES / "divider.cir", "--outputs", "R3,R4",
                                  "--targets", "0.1,0.2", "--json").stdout)
    assert doc["loss"] != positive["loss"]  # the sign reached the loss: -0.1 was read as a value
    assert doc["rules"]["omega"]["cosine"] > 0.999


def test_python_dash_m_hwlearn_runs_the_cli():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "hwlearn", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.startswith("hwlearn "), proc.stderr
