"""How a task can fail apart from its own exceptions."""

from __future__ import annotations

from hwlearn.errors import HwlearnError


class WorkerLost(HwlearnError):
    """The worker process running a task died (killed, out of memory, a crash in native code)."""


class TaskError(HwlearnError):
    """A task raised an exception that could not be sent back as it was; carries its text and
    the worker's traceback."""
