"""Every exit path of a bench run leaves the emulated bench safe, with the run's final status
right: an exception inside the run, Ctrl-C once and twice, SIGTERM, the E-stop, and an instrument
that stops answering mid-run, and one whose link drops and stays down (the others go safe; the
run is failed, naming it).

Each run is in this process (tests/exit_paths.py): real signals to this process, the E-stop from
another thread as the GUI calls it, the real drivers to the virtual bench on loopback. The time
from the trigger to the moment every emulated instrument is safe is measured on the emulator side
and recorded (printed, and a ``seconds_to_safe`` property in pytest's report), never asserted:
benchmarks/bench_safe_state.py repeats the paths and sets the times against the 2 s goal.
"""

import pytest

from hwlearn.runstore import RunReader
from tests.exit_paths import FAILING, LOST, PATHS, TRIGGER_STEP, run_exit_path

CULPRITS = {"failing-instrument": FAILING, "lost-link": LOST}


@pytest.mark.parametrize("name", list(PATHS))
def test_every_exit_path_leaves_the_bench_safe_with_the_right_status(tmp_path, name, record_property):
    outcome = run_exit_path(name, tmp_path)
    record_property("seconds_to_safe", outcome.seconds_to_safe)
    print(f"\n{name}: {outcome.status}; safe {outcome.seconds_to_safe} s after the trigger"
          + (f" (the failure detected after {outcome.detected_s:.3f} s)" if outcome.detected_s else ""))
    expected = PATHS[name].status
    assert outcome.status == expected, (outcome.status, outcome.detail, outcome.error)
    watched = {n: outcome.safe_at_end[n] for n in outcome.watched}
    assert all(watched.values()), watched
    assert outcome.seconds_to_safe is not None and outcome.seconds_to_safe > 0, outcome
    # Every step recorded before the trigger is kept, once.
    assert outcome.steps[:TRIGGER_STEP] == list(range(TRIGGER_STEP)), outcome.steps
    assert outcome.steps == sorted(set(outcome.steps)), outcome.steps
    if expected == "stopped":
        # A clean stop finishes the step it interrupted and checkpoints it: resumable from there.
        assert outcome.steps == list(range(TRIGGER_STEP + 1)), outcome.steps
        with RunReader(tmp_path / name) as reader:
            assert reader.latest_checkpoint().step == outcome.steps[-1]
    if name in CULPRITS:
        # The instrument that stopped answering, or whose link is down, is named; the others
        # are safe (watched: every instrument but it).
        culprit = CULPRITS[name]
        assert culprit not in outcome.watched and len(outcome.watched) == len(outcome.safe_at_end) - 1
        assert [f.split(":")[0] for f in outcome.failures] == [culprit], outcome.failures
        assert f"safe state failed: {culprit}: " in outcome.detail, outcome.detail
        assert outcome.detail.startswith(f"RigError: measure: {culprit}: "), outcome.detail
        assert outcome.detected_s is not None
    else:
        assert outcome.failures == [], outcome.failures
        assert set(outcome.watched) == set(outcome.safe_at_end)

