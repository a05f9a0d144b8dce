"""hwlearn solve against ngspice, the independent oracle, on random netlists."""

import numpy as np
import pytest

from hwlearn.cli.solve import solve_document
from tests.circuits import NGSPICE, random_netlist, run_ngspice

pytestmark = [pytest.mark.ngspice,
              pytest.mark.skipif(NGSPICE is None, reason="ngspice is not installed (apt install ngspice)")]

SEEDS = range(60)


def _relative(ours: dict, theirs: dict) -> float:
    a = np.array([ours[k] for k in theirs])
    b = np.array(list(theirs.values()))
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("seed", SEEDS)
def test_solve_matches_ngspice_on_random_netlist(seed, tmp_path):
    text = random_netlist(seed, n_nodes=6 + seed % 10, extra_edges=3 + seed % 7)
    path = tmp_path / "random.cir"
    path.write_text(text)
    ours = solve_document(str(path))
    ng = run_ngspice(text)
    volts = {k[2:-1]: v for k, v in ng.items() if k.startswith("v(")}
    r_currents = {k[3:k.index("[")]: v for k, v in ng.items() if k.startswith("i(@r")}
    v_currents = {k[2:-1]: v for k, v in ng.items() if k.startswith("i(v")}
    ours_lower = {k.lower(): v for k, v in ours["currents"].items()}
    assert ours["node_voltages"]["0"] == 0.0
    assert _relative(ours["node_voltages"], volts) < 1e-9, (text, ours["node_voltages"], volts)
    assert _relative(ours_lower, r_currents) < 1e-9, (text, ours["currents"], r_currents)
    if v_currents:
        assert _relative(ours_lower, v_currents) < 1e-9, (text, ours["currents"], v_currents)


def test_random_netlists_cover_every_source_placement():
    kinds = {"series": 0, "ground": 0, "floating": 0, "current": 0}
    for seed in SEEDS:
        for line in random_netlist(seed, n_nodes=6 + seed % 10, extra_edges=3 + seed % 7).splitlines()[1:]:
            parts = line.split()
            if parts[0].startswith("V"):
                if parts[2].startswith("s"):
                    kinds["series"] += 1
                elif parts[2] == "0":
                    kinds["ground"] += 1
                else:
                    kinds["floating"] += 1
            elif parts[0].startswith("I"):
                kinds["current"] += 1
    assert all(count >= 10 for count in kinds.values()), kinds
