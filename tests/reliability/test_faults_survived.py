"""A bench run survives the link faults a real bench has, and records every one.

The virtual bench injects, during the run, 1 % of replies dropped, 1 % sent late (after the
client gave up on them) and, on the serial board, 1 % garbled (its CRC fails; a TCP link delivers
bytes intact, so garbling a SCPI reply is not a fault a real link has). The run must end where
the fault-free run ends, and its events must account for every fault injected:

    dropped + late replies = timeouts (+ failed re-synchronisations, a marker's reply lost)
    late replies           = stale replies discarded when the link was re-synchronised
    garbled replies        = garbled replies detected
"""

from collections import Counter

import numpy as np
import pytest

from drivers.bench import Bench
from hwlearn.app.sessions import bench_substrate
from hwlearn.config import load_experiment
from hwlearn.documents import RunStart, Summary
from hwlearn.experiment import build_experiment
from hwlearn.runstore import RunReader
from hwlearn.training.session import TrainingSession
from simulator.emulators.faults import FaultRates
from simulator.virtual_bench import VirtualBench
from tests.bench_helpers import example_config
from tests.cli_helpers import ROOT

TIMEOUT_S = 0.3   # every link's reply timeout, so a lost reply costs little
# A late reply comes after every client timeout (the scan's is 0.3 s plus 2 x 20 channels of
# relay and integration time, 1.13 s) and before the re-synchronisation's marker wait ends.
LATE_S = 1.2


def _bench_config():
    config = example_config()
    changes = {name: {"timeout_s": TIMEOUT_S} for name in config.instruments}
    for unit in (w.smu for w in (*config.inputs, *config.outputs)):
        changes[unit]["measure_timeout_s"] = TIMEOUT_S
    changes[config.dmm.name].update(nplc=0.02, volt_range=10.0, read_timeout_s=TIMEOUT_S)
    return example_config(**changes)


class _InjectDuringTraining:
    """Faults on from the run's start until its training is over (before the final safe state),
    so every fault injected is met, and recorded, inside the run."""

    def __init__(self, vb):
        self.vb = vb

    def __call__(self, doc):
        if isinstance(doc, RunStart):
            self.vb.inject(True)
        elif isinstance(doc, Summary):
            self.vb.inject(False)


def _train(run_dir, rates=None, seed=0):
    bench_config = _bench_config()
    config = load_experiment(ROOT / "examples" / "bench-teacher-omega.toml")
    config["training"]["epochs"] = 2
    experiment = build_experiment(config, network=bench_config.network)
    with VirtualBench(bench_config, twin=True, faults=rates, fault_seed=seed) as vb:
        vb.inject(False)
        with Bench.open(vb.bench_config()) as bench:
            session = TrainingSession(experiment, bench_substrate(bench, experiment), run_dir,
                                      views=(_InjectDuringTraining(vb),))
            result = session.run(signals=False)
        injected = vb.faults_injected()
        safe = all(vb.is_safe().values())
    with RunReader(run_dir) as reader:
        final = reader.arrays("resistances")[1][-1]
        status = reader.status().status
        recorded = Counter((e["data"]["instrument"], e["data"]["kind"]) for e in reader.events()
                           if e["kind"] == "fault")
    return result, final, status, injected, recorded, safe


@pytest.mark.parametrize("seed", [1, 7])
def test_a_run_with_one_percent_faults_ends_as_the_fault_free_run_and_records_each_fault(tmp_path, seed):
    _, clean, status, _, recorded, safe = _train(tmp_path / "clean")
    assert status == "done" and safe and not recorded
    names = list(_bench_config().instruments)
    rates = {name: FaultRates(timeout=0.01, late=0.01, garbled=0.01 if name == "board" else 0.0, late_s=LATE_S)
             for name in names}
    result, final, status, injected, recorded, safe = _train(tmp_path / "faulty", rates, seed)
    assert status == "done" and safe
    assert np.array_equal(final, clean)  # the same codes, every step: no update from a lost reply
    total = sum(sum(kinds.values()) for kinds in injected.values())
    assert total >= 5, injected  # the scenario really injected faults
    for name in names:
        got, want = injected.get(name, {}), Counter({kind: n for (who, kind), n in recorded.items() if who == name})
        lost = got.get("timeout", 0) + got.get("late", 0)
        assert want["timeout"] + want["resync"] == lost, (name, got, dict(want))
        assert want["stale_reply"] == got.get("late", 0), (name, got, dict(want))
        assert want["garbled"] == got.get("garbled", 0), (name, got, dict(want))
