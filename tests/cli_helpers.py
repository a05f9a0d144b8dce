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


def wait_for_step(run_dir: Path, step: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until the run in ``run_dir`` has recorded ``step``; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (Path(run_dir) / "run.sqlite").exists():
            try:
                with RunReader(run_dir) as reader:
                    last = reader.last_step()
                if last is not None and last.step >= step:
                    return
            except Exception:  # the run is still being created
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"the run in {run_dir} never reached step {step}")


def wait_for_status(run_dir: Path, status: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until the run in ``run_dir`` has recorded ``status``; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with RunReader(run_dir) as reader:
                if reader.status().recorded == status:
                    return
        except Exception:  # the run is still being created
            pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError(f"the run in {run_dir} never recorded the status {status!r}")
