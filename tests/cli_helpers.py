"""Running hwlearn as a user does (a subprocess of ``python -m hwlearn``) and watching its runs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from hwlearn.runstore import RunReader

ROOT = Path(__file__).resolve().parents[1]


def hwlearn(*args, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a command to its end from the repository root; raise with its stderr if it fails."""
    proc = subprocess.run([sys.executable, "-m", "hwlearn", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"hwlearn {' '.join(map(str, args))} -> {proc.returncode}\n{proc.stderr}")
    return proc


def start(*args) -> subprocess.Popen:
    """Start a command in the background (to signal or kill it)."""
    return subprocess.Popen([sys.executable, "-m", "hwlearn", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_run(run_dir: Path, proc: subprocess.Popen, reached, what: str, timeout: float, poll_s: float) -> None:
    """Poll the run in ``run_dir`` until ``reached(reader)``; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (Path(run_dir) / "run.sqlite").exists():
            try:
                with RunReader(run_dir) as reader:
                    if reached(reader):
                        return
            except Exception:  # the run is still being created
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(poll_s)
    raise AssertionError(f"the run in {run_dir} never {what}")


def wait_for_step(run_dir: Path, step: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until the run in ``run_dir`` has recorded ``step``; fail if the process ends first."""
    def reached(reader) -> bool:
        last = reader.last_step()
        return last is not None and last.step >= step
    _wait_for_run(run_dir, proc, reached, f"reached step {step}", timeout, 0.05)


def wait_for_status(run_dir: Path, status: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until the run in ``run_dir`` has recorded ``status``; fail if the process ends first."""
    _wait_for_run(run_dir, proc, lambda reader: reader.status().recorded == status,
                  f"recorded the status {status!r}", timeout, 0.01)
