"""One background thread for the GUI's one-off work: listing runs, reading a recorded step's
arrays for the slider, rebuilding a run's network and layout, launching a run (a bench opens).

Results come back through the bridge as JobDone(tag, value, error). A job submitted with a tag
that is still waiting replaces the waiting one (the slider asks for many steps while it is
dragged; only the last matters).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gui.bridge import Bridge, JobDone

log = logging.getLogger("hwlearn.gui")

JOBS_SOURCE = 0  # the bridge source number of job results


class Jobs:
    def __init__(self, bridge: Bridge):
        self.bridge = bridge
        self._cond = threading.Condition()
        self._queue: list[tuple[str, Callable[[], object]]] = []
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._work, name="hwlearn-gui-jobs", daemon=True)
        self._thread.start()

    def submit(self, tag: str, work: Callable[[], object], replace: bool = True) -> None:
        with self._cond:
            if self._closed:
                return
            if replace:
                self._queue = [(t, w) for t, w in self._queue if t != tag]
            self._queue.append((tag, work))
            self._cond.notify()

    def idle(self) -> bool:
        with self._cond:
            return not self._queue and not self._busy

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify()
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                tag, work = self._queue.pop(0)
                self._busy = True
            try:
                result = JobDone(tag, work(), None)
            except Exception as exc:  # reported in the window, never lost in this thread
                log.debug("job %s failed", tag, exc_info=True)
                result = JobDone(tag, None, exc)
            self.bridge.put(JOBS_SOURCE, result)
            with self._cond:
                self._busy = False
