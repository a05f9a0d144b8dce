"""LocalPool: worker processes on this machine, each running one task at a time.

Why not concurrent.futures.ProcessPoolExecutor: when one of its workers dies, it fails every
running task and terminates the other workers, and a worker told to stop by SIGTERM in the middle
of a training can leave its join hanging. A sweep must lose only the task of the worker that died
and go on, so this pool keeps one pipe per worker, knows which task each one runs, and replaces a
dead worker alone.

Workers are started with 'spawn' (no inherited threads or BLAS state) in their own process group,
so a Ctrl-C in the terminal reaches only the client, which stops the workers through their pipes;
BLAS and OpenMP run on one thread in each (docs/performance.md: on shared cores several BLAS
threads per process make small solves far slower). A worker whose client dies sees its pipe
close, stops its task at the next step and exits.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from hwlearn.app.executors.errors import TaskError, WorkerLost
from hwlearn.errors import ConfigError

STOP = "stop"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CLOSE_GRACE_S = 60.0  # a stopped training still writes its checkpoint before it reports


# ---------------------------------------------------------------------------------- the worker


def _listen(conn: Connection, stop: threading.Event, tasks: queue.SimpleQueue) -> None:
    """Receive tasks and stop requests; when the client is gone, stop the task and quit."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message == STOP:
            stop.set()
        else:
            tasks.put(message)
            if message is None:
                return
    stop.set()
    tasks.put(None)


def _reply(conn: Connection, reply: tuple) -> None:
    try:
        conn.send(reply)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:  # pickled before anything is written
        text = reply[2] if reply[0] == "raised" else repr(reply[1])[:2000]
        conn.send(("raised", TaskError(f"the task's {'exception' if reply[0] == 'raised' else 'result'} could "
                                       f"not be sent back ({exc}): {text}"), text))


def serve(conn: Connection) -> None:
    """A worker's life: run tasks from ``conn`` one at a time in this (main) thread."""
    os.environ.update(ONE_THREAD)  # for libraries loaded from here on
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # for those already loaded
    with contextlib.suppress(OSError):
        os.setpgrp()  # out of the terminal's process group: Ctrl-C goes to the client only
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # and if it is sent here anyway, the client decides
    stop = threading.Event()
    tasks: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=_listen, args=(conn, stop, tasks), name="hwlearn-worker-pipe", daemon=True).start()
    while (task := tasks.get()) is not None:
        fn, args = task
        try:
            reply = ("done", fn(*args, stop=stop))
        except BaseException as exc:
            reply = ("raised", exc, traceback.format_exc())
        try:
            _reply(conn, reply)
        except OSError:
            return  # the client is gone


# ---------------------------------------------------------------------------------- the client


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    future: cf.Future | None = None
    dead: bool = False


class LocalPool:
    """``workers`` processes (default: one per core) running submitted tasks in order."""

    def __init__(self, workers: int | None = None):
        count = (os.cpu_count() or 1) if workers is None else workers
        if count < 1:
            raise ConfigError(f"--workers {count}: must be >= 1")
        self.slots = count
        self.description = f"local pool of {count} worker process{'es' if count > 1 else ''}"
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._queue: deque[tuple[cf.Future, object, tuple]] = deque()
        self._stopping = False
        self._closing = False
        self._deaths_in_a_row = 0
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._workers = [self._start_worker() for _ in range(count)]
        self._thread = threading.Thread(target=self._dispatch_or_fail, name="hwlearn-local-pool", daemon=True)
        self._thread.start()

    # ---- the interface

    def submit(self, fn, /, *args) -> cf.Future:
        future: cf.Future = cf.Future()
        with self._lock:
            if self._closing:
                raise RuntimeError("the local pool is closed")
            self._queue.append((future, fn, args))
        self._wake()
        return future

    def request_stop(self) -> None:
        with self._lock:
            self._stopping = True
            for worker in self._workers:
                self._send(worker, STOP)

    def close(self) -> None:
        """Stop running tasks at their next step, wait for them to report, end the workers."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            while self._queue:
                self._queue.popleft()[0].cancel()
        self.request_stop()
        self._wake()
        self._thread.join(CLOSE_GRACE_S)
        with self._lock:
            for worker in self._workers:
                self._send(worker, None)
        for worker in self._workers:
            worker.process.join(10.0)
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: a training stops at its next step
                worker.process.join(10.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
            if worker.future is not None and not worker.future.done():
                worker.future.set_exception(WorkerLost(f"worker pid {worker.process.pid} did not report before "
                                                       "the pool closed"))
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers."""
        with self._lock:
            return [w.process.pid for w in self._workers]

    # ---- inside

    def _start_worker(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=serve, args=(child,), name="hwlearn-worker", daemon=True)
        process.start()
        child.close()  # only the worker holds its end: the worker sees EOF when the client dies
        worker = _Worker(process, parent)
        if self._stopping:
            self._send(worker, STOP)
        return worker

    def _send(self, worker: _Worker, message) -> None:
        with contextlib.suppress(OSError):  # the worker died; its sentinel tells the dispatcher
            worker.conn.send(message)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send_bytes(b"")

    def _assign(self) -> None:
        for worker in self._workers:
            while worker.future is None and self._queue:
                future, fn, args = self._queue.popleft()
                if future.set_running_or_notify_cancel():
                    worker.future = future
                    self._send(worker, (fn, args))

    def _dispatch_or_fail(self) -> None:
        try:
            self._dispatch()
        except BaseException as exc:  # a bug here must not leave the client waiting forever
            with self._lock:
                self._closing = True
                futures = [w.future for w in self._workers if w.future is not None]
                futures += [item[0] for item in self._queue]
                self._queue.clear()
            for future in futures:
                if not future.done():
                    future.set_exception(WorkerLost(f"the local pool's dispatcher failed: {exc!r}"))
            raise

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                self._assign()
                busy = [w for w in self._workers if w.future is not None]
                if self._closing and not busy:
                    return
                waitables = [self._wake_r] + [w.conn for w in busy] + [
                    w.process.sentinel for w in self._workers if not w.dead]
            ready = set(wait(waitables))
            if self._wake_r in ready:
                while self._wake_r.poll():
                    self._wake_r.recv_bytes()
            with self._lock:
                for worker in list(self._workers):
                    if worker.future is not None and worker.conn in ready:
                        self._receive(worker)
                    elif not worker.dead and worker.process.sentinel in ready:
                        self._replace(worker)

    def _receive(self, worker: _Worker) -> None:
        future, worker.future = worker.future, None
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            worker.future = future
            self._replace(worker)
            return
        self._deaths_in_a_row = 0
        try:
            reply = pickle.loads(data)
        except Exception as exc:
            future.set_exception(TaskError(f"the reply of worker pid {worker.process.pid} could not be read: {exc}"))
            return
        if reply[0] == "done":
            future.set_result(reply[1])
        else:
            exc, text = reply[1], reply[2]
            exc.add_note(f"in worker pid {worker.process.pid}:\n{text}")
            future.set_exception(exc)

    def _replace(self, worker: _Worker) -> None:
        worker.process.join(5.0)
        code = worker.process.exitcode
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        self._deaths_in_a_row += 1
        if worker.future is not None:
            worker.future.set_exception(WorkerLost(f"worker pid {worker.process.pid} died ({how}) while running "
                                                   "its task"))
            worker.future = None
        worker.conn.close()
        worker.dead = True
        if self._closing:
            return  # close() joins it
        if self._deaths_in_a_row > 3 * self.slots:  # workers die as they start: do not loop forever
            while self._queue:
                self._queue.popleft()[0].set_exception(
                    WorkerLost(f"local workers keep dying ({how}); last pid {worker.process.pid}"))
            self._closing = True
            return
        self._workers[self._workers.index(worker)] = self._start_worker()
