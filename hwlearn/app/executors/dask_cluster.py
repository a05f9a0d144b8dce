"""DaskExecutor: tasks on the workers of an existing Dask distributed cluster.

The client connects to the scheduler (``tcp://HOST:PORT``); each task is submitted with
``pure=False`` (a training is run for its side effects, never served from a cache). Stop
requests travel as a named ``distributed.Event`` that every running task watches. A worker
process runs BLAS and OpenMP on one thread from its first task on; start workers with
``--nthreads 1`` and as many processes as cores (docs/scaling.md): trainings are Python-bound
and share no state, so threads in one worker process only contend for its interpreter lock.
"""

from __future__ import annotations

import threading
import uuid

from hwlearn.errors import ConfigError

EXTRA = "pip install 'hwlearn[dask]'"
CONNECT_TIMEOUT_S = 30.0
STOP_POLL_S = 1.0  # how often a running task asks the scheduler whether to stop (one small message)


def _distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(f"--scheduler needs Dask distributed, which is not installed ({exc.name} is missing): "
                          f"{EXTRA}") from None
    return distributed


def _watch(event, stop: threading.Event, finished: threading.Event) -> None:
    while not finished.is_set():
        try:
            if event.wait(timeout=STOP_POLL_S):
                stop.set()
                return
        except Exception:
            if finished.wait(STOP_POLL_S):
                return


def on_worker(fn, args: tuple, stop_event: str):
    """What a Dask worker runs: ``fn(*args, stop=...)``, ``stop`` set when the client requests a
    stop. From its first task on, the worker process runs BLAS and OpenMP on one thread."""
    import distributed
    from threadpoolctl import threadpool_limits

    event = distributed.Event(stop_event)
    stop = threading.Event()
    if event.is_set():
        stop.set()
    finished = threading.Event()
    watcher = threading.Thread(target=_watch, args=(event, stop, finished), name="hwlearn-stop-watch", daemon=True)
    watcher.start()
    # For the whole worker process, not around the call: a context would restore the previous
    # limit when one task ends while another thread of the same worker still trains.
    threadpool_limits(limits=1)
    try:
        return fn(*args, stop=stop)
    finally:
        finished.set()


class DaskExecutor:
    """Submit to the Dask cluster whose scheduler listens at ``address`` (tcp://HOST:PORT)."""

    def __init__(self, address: str, timeout_s: float = CONNECT_TIMEOUT_S):
        distributed = _distributed()
        if not isinstance(address, str) or "://" not in address:
            raise ConfigError(f"--scheduler {address!r}: give the scheduler's address as tcp://HOST:PORT "
                              "(printed by `dask scheduler`)")
        try:
            self._client = distributed.Client(address, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"--scheduler {address}: cannot reach a Dask scheduler there within {timeout_s:g} s "
                              f"({exc})") from None
        nthreads = self._client.nthreads()
        if not nthreads:
            self._client.close()
            raise ConfigError(f"--scheduler {address}: the cluster has no workers; start some with "
                              f"`dask worker {address} --nthreads 1`")
        self.slots = sum(nthreads.values())
        self.description = f"Dask cluster at {address}: {len(nthreads)} workers, {self.slots} threads"
        self._pool = self._client.get_executor(pure=False)
        self._stop = distributed.Event(f"hwlearn-stop-{uuid.uuid4().hex}", client=self._client)
        self._closed = False

    def submit(self, fn, /, *args):
        return self._pool.submit(on_worker, fn, args, self._stop.name)

    def request_stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop running tasks (they report before the client leaves), then disconnect."""
        if self._closed:
            return
        self._closed = True
        try:
            self.request_stop()
            self._pool.shutdown(wait=True)
        finally:
            self._client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
