"""Ctrl-C and SIGTERM: ``control_by_signals`` turns them into the run engine's verbs (stop, then
abort); ``deferred_interrupts`` keeps them out of code that must finish, such as putting a bench
in its safe state (they are held back and delivered when it ends)."""

from __future__ import annotations

import contextlib
import signal
import threading

HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred_interrupts():
    """Hold SIGINT and SIGTERM until the block ends, then deliver them to the previous handlers.
    Signals only reach the main thread, so elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[tuple[int, object]] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: pending.append((signum, frame))) for sig in HELD}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum, frame in pending:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)

@contextlib.contextmanager
def control_by_signals(engine):
    """Ctrl-C and SIGTERM steer ``engine`` (hwlearn.engine.RunEngine) while the block runs:

    - the first one asks for a clean stop: the run ends after the current step, checkpointed,
      status 'stopped', and ``--resume`` continues it to the same final state;
    - the second one aborts at once: if the run's thread waits on an instrument
      (``engine.in_rig_call``), KeyboardInterrupt interrupts that wait, else the abort is taken
      at the next message; the running plan's clean-up runs, the rig goes safe, and the run is
      recorded 'aborted' (still resumable from its last checkpoint).
    Outside the main thread, signals cannot be caught; the block then changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []

    def steer(signum, frame):
        received.append(signum)
        if len(received) == 1:
            engine.stop()
            return
        engine.abort()
        if getattr(engine, "in_rig_call", True):
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, steer) for sig in HELD}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _EventControl:
    """A stop event steered like an engine: stop and abort both set it."""

    def __init__(self, event: threading.Event):
        self.event = event

    def stop(self) -> None:
        self.event.set()

    def abort(self) -> None:
        self.event.set()


def stop_on_signals(stop: threading.Event):
    """control_by_signals for work that is not one run (a sweep): the first Ctrl-C or SIGTERM sets
    ``stop``, the second interrupts."""
    return control_by_signals(_EventControl(stop))
