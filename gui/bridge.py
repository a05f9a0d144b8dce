"""The one object through which data cross from worker threads to the GUI thread.

Producers (the engine's thread calling a run view, a follower polling a run folder, the job
thread) ``put`` copies; the GUI thread ``take``s everything pending on each frame of its redraw
timer (gui/window.py) and draws once, so a burst of steps costs one redraw, never a queue of them.
No Qt object is touched outside the GUI thread, and no signal is emitted across threads.

Items are tagged with the source they belong to (``Packet``): a run view or follower gets a
fresh source number, so what an old source still delivers after the window moved on to another
run is recognised and dropped.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from hwlearn.documents import Document, RunEvent, RunStart, StepRecord


@dataclass(frozen=True)
class Packet:
    source: int
    item: object


@dataclass(frozen=True)
class ArrayFrame:
    """The arrays recorded at ``step`` (name -> array); ``live``: the newest of the run, as
    opposed to one read back for the step slider."""

    step: int
    arrays: dict[str, np.ndarray]
    live: bool = True


@dataclass(frozen=True)
class ArraySteps:
    """Steps at which arrays were recorded, newly seen (increasing)."""

    steps: tuple[int, ...]


@dataclass(frozen=True)
class RunInfo:
    """Facts about the run's folder: where it is, its metadata, who writes it."""

    run_dir: str
    metadata: dict = field(default_factory=dict)
    writer: str = ""        # "this window" or "pid N on HOST"
    session: int = 1


@dataclass(frozen=True)
class Reset:
    """The run's steps after its checkpoint were replaced (a resume): start afresh."""


@dataclass(frozen=True)
class JobDone:
    tag: str
    value: object = None
    error: BaseException | None = None


def copy_document(doc: Document) -> Document:
    """A copy another thread may keep: mutable contents (dicts, arrays) duplicated."""
    if isinstance(doc, StepRecord):
        return replace(doc, scalars=dict(doc.scalars),
                       arrays={name: np.array(value, copy=True) for name, value in doc.arrays.items()})
    if isinstance(doc, RunStart):
        return replace(doc, config=copy.deepcopy(doc.config), rig=copy.deepcopy(doc.rig), plan=dict(doc.plan))
    if isinstance(doc, RunEvent) and doc.data is not None:
        return replace(doc, data=copy.deepcopy(doc.data))
    return doc  # StatusChange, Summary, Heartbeat, RunStop, Checkpoint: frozen, no shared state kept


class Bridge:
    def __init__(self):
        self._lock = threading.Lock()
        self._items: deque[Packet] = deque()
        self._sources = itertools.count(1)

    def new_source(self) -> int:
        return next(self._sources)

    def put(self, source: int, item) -> None:
        with self._lock:
            self._items.append(Packet(source, item))

    def take(self) -> list[Packet]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items

    def pending(self) -> int:
        with self._lock:
            return len(self._items)

    def view(self, source: int) -> RunView:
        """An engine subscriber that puts copies of documents for ``source``."""
        return RunView(self, source)


class RunView:
    """A run's view (hwlearn.documents.Subscriber), called in the engine's thread: it copies
    the document into the bridge and returns; a checkpoint (the full state) is skipped, the GUI
    does not draw it."""

    def __init__(self, bridge: Bridge, source: int):
        self.bridge = bridge
        self.source = source

    def __call__(self, doc: Document) -> None:
        if type(doc).__name__ == "Checkpoint":
            return
        self.bridge.put(self.source, copy_document(doc))

    def __repr__(self) -> str:
        return f"RunView(source {self.source})"
