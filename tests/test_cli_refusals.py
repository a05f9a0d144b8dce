"""Input a demanding user tried that used to give a traceback or a silently wrong result: each is now
a clear error (exit 2) that names the file, the key or the value, and changes nothing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT, hwlearn

EXAMPLES = ROOT / "examples"


def refused(*args, words=()):
    proc = hwlearn(*args, check=False)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    return proc


def _escaped_runs() -> set[Path]:
    """Folders a run named to leave runs/ would have made (compared before and after, so that
    leftovers of other checkouts sharing the parent folder do not count)."""
    places = (ROOT, ROOT.parent, ROOT / "runs", Path("/tmp"))
    return {p for place in places for pattern in ("escape*", "absolute*", "b-*") for p in place.glob(pattern)}


@pytest.mark.parametrize("name", ["../escape", "/tmp/absolute", "a\u0000b", ".hidden", "a/b"])
def test_a_run_name_that_would_leave_runs_is_refused(tmp_path, name):
    experiment = tmp_path / "exp.toml"
    experiment.write_text(f"name = {json.dumps(name)}\n[training]\nepochs = 1\n")
    before = _escaped_runs()
    refused("train", experiment, words=["name =", "plain folder-name label"])
    assert _escaped_runs() == before


def test_an_empty_experiment_file_is_refused_instead_of_training_the_default(tmp_path):
    experiment = tmp_path / "empty.toml"
    experiment.write_text("")
    refused("train", experiment, "--out", tmp_path / "run", words=["empty", "examples/"])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command, suffix, text", [
    ("train", ".toml", b"name = \"x\"\n\xff\xfe = 1\n"),
    ("solve", ".cir", b"title\n\xff\nR1 a 0 1k\n"),
])
def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path, command, suffix, text):
    path = tmp_path / f"latin{suffix}"
    path.write_bytes(text)
    refused(command, path, words=[f"{path}:2: not UTF-8"])


def test_a_network_file_with_a_huge_integer_or_deep_nesting_is_refused(tmp_path):
    huge = {"format": "hwlearn-network", "version": 1, "nodes": ["0", "a"], "ground": "0",
            "edges": [{"name": "R1", "a": "a", "b": "0", "ohms": int("9" * 400)}]}
    (tmp_path / "huge.json").write_text(json.dumps(huge))
    refused("solve", tmp_path / "huge.json", words=["edges[0].ohms", "400 digits", "a finite number"])
    (tmp_path / "deep.json").write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    refused("solve", tmp_path / "deep.json", words=["nested too deeply"])


def test_a_resistance_whose_conductance_overflows_is_refused_not_solved_to_nan(tmp_path):
    (tmp_path / "tiny.cir").write_text("tiny\nV1 a 0 1\nR1 a b 1e-320\nR2 b 0 1k\n.end\n")
    for command in (("solve", tmp_path / "tiny.cir", "--json"),
                    ("gradcheck", tmp_path / "tiny.cir", "--outputs", "R2", "--targets", "0.1", "--json")):
        proc = refused(*command, words=["R1", "1e-320", "between 1e-09 and 1e+15 ohm"])
        assert "NaN" not in proc.stdout


def test_an_unwritable_out_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    refused("train", EXAMPLES / "iris-omega.toml", "--out", tmp_path / "file" / "run",
            words=["cannot create the run folder"])


def test_reproduce_into_an_existing_file_is_refused_before_any_training(tmp_path):
    (tmp_path / "results").write_text("keep me")
    refused("reproduce", "--quick", tmp_path / "results", words=["exists and is not a folder"])
    assert (tmp_path / "results").read_text() == "keep me"


def test_export_never_writes_into_the_run_it_reads(tmp_path):
    hwlearn("train", EXAMPLES / "teacher-omega.toml", "--out", tmp_path / "run", "--quiet")
    database = (tmp_path / "run" / "run.sqlite").read_bytes()
    refused("export", tmp_path / "run", "--format", "npz", "--out", tmp_path / "run" / "run.sqlite", "--force",
            words=["inside the run folder"])
    assert (tmp_path / "run" / "run.sqlite").read_bytes() == database


def test_a_lattice_too_large_to_solve_is_refused_with_its_cost(tmp_path):
    experiment = tmp_path / "big.toml"
    experiment.write_text('[network]\nbuilder = "lattice"\nrows = 3000\ncols = 3000\n[task]\nname = "teacher"\n')
    refused("train", experiment, words=["3000 x 3000", "17,994,000 edges", "GiB"])


def test_show_json_into_a_closed_pipe_is_quiet(tmp_path):
    hwlearn("train", EXAMPLES / "teacher-omega.toml", "--out", tmp_path / "run", "--quiet")
    # The reading end is closed before the command can print (it takes a while to start), as
    # ``head`` does once it has its line: every write then meets a closed pipe.
    proc = subprocess.Popen([sys.executable, "-m", "hwlearn", "show", tmp_path / "run", "--json"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    stderr = proc.stderr.read()
    proc.wait(timeout=60)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert proc.returncode == 141
