"""Ctrl-C and SIGTERM: ``stop_on_signals`` turns them into a stop request at the next step;
``deferred_interrupts`` keeps them out of code that must finish, such as putting a bench in its
safe state (they are held back and delivered when it ends)."""

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
def stop_on_signals(stop: threading.Event):
    """Turn the first SIGINT/SIGTERM into a stop request; a second SIGINT interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in HELD}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
