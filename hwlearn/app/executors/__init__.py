"""Where independent trainings run: a pool of worker processes on this machine, or the workers of
a Dask distributed cluster. Sweeps and `hwlearn reproduce` use both through one small interface:

    executor.slots                      how many tasks run at once (workers, or the cluster's threads)
    executor.submit(fn, *args)          -> concurrent.futures.Future of fn(*args, stop=event)
    executor.request_stop()             sets ``stop`` in every running and later task
    executor.close()                    (or ``with executor:``) releases the workers

``fn`` must be a module-level function (it is pickled by reference) and is called on a worker
with a ``threading.Event`` as ``stop``: a long task checks it and ends early, leaving its work
resumable. A worker that dies fails its future with WorkerLost; an exception in ``fn`` fails it
with that exception (or a TaskError carrying its text when it cannot be sent back whole).
docs/scaling.md describes both executors and what a cluster needs.
"""

from __future__ import annotations

from typing import Protocol

from hwlearn.app.executors.errors import TaskError, WorkerLost
from hwlearn.app.executors.local import LocalPool
from hwlearn.errors import ConfigError


class Executor(Protocol):
    description: str
    slots: int

    def submit(self, fn, /, *args): ...

    def request_stop(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self): ...

    def __exit__(self, *exc) -> None: ...


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """A LocalPool of ``workers`` processes (default: one per core), or, with ``scheduler``
    (tcp://HOST:PORT), a DaskExecutor on that cluster."""
    if workers is not None and scheduler is not None:
        raise ConfigError(f"--workers {workers} and --scheduler {scheduler}: give one; a Dask cluster's size is "
                          "set by its workers")
    if scheduler is not None:
        from hwlearn.app.executors.dask_cluster import DaskExecutor

        return DaskExecutor(scheduler)
    return LocalPool(workers)


__all__ = ["Executor", "LocalPool", "TaskError", "WorkerLost", "make_executor"]
