"""Documents: the one way a run reports itself (Bluesky's shape).

A run is a stream of documents published by its engine to subscribers, in order:

    RunStart       the resolved config, what the run trains on, how long it will be
    StatusChange   the engine's state changed (running, paused, stopping, ...)
    StepRecord     one recorded step: scalars and arrays
    Checkpoint     the state after a recorded step, for an exact resume
    RunEvent       something worth a line in the log: a fault, a checkpoint, a warning
    Summary        run-level values (the least-squares ceiling, final metrics)
    Heartbeat      nothing happened for a while, but the run is alive (paused)
    RunStop        the final status, always the last document

The run-store writer is the first subscriber, so every other one (the progress line, the GUI)
sees a step only after it is on disk. A subscriber is any callable taking one document; one
that raises is the engine's problem only if it is essential (the writer): a broken view never
ends a run (hwlearn.engine).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class RunStart:
    """config: the resolved experiment config; rig: what the run trains on (kind, description,
    instrument identities); plan: epochs, steps per epoch, steps in all, samples per epoch;
    resumed_from: the step a resumed run continues after (None for a new run)."""

    config: dict
    rig: dict
    plan: dict
    resumed_from: int | None = None
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class StatusChange:
    state: str
    detail: str = ""
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class StepRecord:
    """One step. ``arrays`` maps names to numpy arrays (copies: subscribers may keep them)."""

    step: int
    epoch: int
    scalars: dict[str, float]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class Checkpoint:
    """The state after ``step`` (already published as a StepRecord): arrays and JSON-able state."""

    step: int
    epoch: int
    arrays: dict[str, np.ndarray]
    state: dict
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class RunEvent:
    """kind: a short word (fault, checkpoint, stop, exception, safe_state); level: debug, info,
    warning or error; data: JSON-able details."""

    kind: str
    message: str
    level: str = "info"
    data: dict | None = None
    step: int | None = None
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class Summary:
    values: dict[str, Any]
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class Heartbeat:
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class RunStop:
    """status: done, stopped, aborted or failed; detail: why, in words."""

    status: str
    detail: str = ""
    time: float = field(default_factory=_now)


Document = RunStart | StatusChange | StepRecord | Checkpoint | RunEvent | Summary | Heartbeat | RunStop


class Subscriber(Protocol):
    def __call__(self, doc: Document) -> None: ...
