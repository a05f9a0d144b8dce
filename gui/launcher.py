"""What the GUI may ask of the application layer, and nothing more.

The GUI never imports the drivers, the simulator or hwlearn.app (import contracts): ``hwlearn
gui`` builds a Launcher in the application layer (hwlearn/app/sessions.py) and passes it in.
A prepared run opens its bench (or the bench's simulated twin, for a dry run) when launched,
starts it in a worker thread with the GUI's view subscribed to its documents, and closes the
bench, safe, in that thread when the run ends, whatever ended it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from hwlearn.documents import Subscriber
from hwlearn.engine import RunEngine


class Launched(Protocol):
    engine: RunEngine   # pause, resume, stop, abort, estop: callable from any thread
    run_dir: Path
    kind: str           # "simulated" or "bench"
    dry_run: bool
    title: str

    def release(self, timeout: float | None = None) -> str:
        """Wait for the run's end (its bench closed and safe); the closing report."""

    @property
    def released(self) -> bool: ...


class Prepared(Protocol):
    kind: str           # "simulated" or "bench"
    can_dry_run: bool
    title: str          # one line
    details: str        # rule, task, network and what it runs on

    def next_run_dir(self) -> Path: ...

    def launch(self, views: Sequence[Subscriber] = (), dry_run: bool = False,
               run_dir: Path | None = None) -> Launched:
        """Open what the run needs and start it; raises HwlearnError (a bench that cannot be
        opened, a refused rule) with nothing left open."""


class Launcher(Protocol):
    runs_root: Path

    def prepare(self, experiment: str | Path, bench: str | Path | None = None) -> Prepared:
        """Validate the experiment (and bench) file; raises ConfigError naming the key."""

    def close(self) -> None:
        """At the application's end."""
