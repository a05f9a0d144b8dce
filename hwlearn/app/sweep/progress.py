"""One progress line for a whole sweep: points done, running, failed, and the time left.

On a terminal it redraws one line (at most 4 times a second); in a log or a pipe it prints a
line whenever another tenth of the points has finished, so CI logs stay short.
"""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class SweepProgress:
    def __init__(self, slots: int, stream=None, width: int = 24, min_interval_s: float = 0.25):
        self.slots = slots  # points handed to the executor beyond its slots are waiting, not running
        self.stream = stream or sys.stderr
        self.width = width
        self.min_interval_s = min_interval_s
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_draw = 0.0
        self._last_decile = -1

    def line(self, counts, elapsed_s: float) -> str:
        fraction = counts.done / max(counts.total, 1)
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        left = counts.total - counts.done - counts.failed
        rate = counts.finished_here / elapsed_s if elapsed_s > 0 else 0.0
        eta = _clock(left / rate) if rate > 0 else "--:--:--"
        running = min(counts.running, self.slots)
        parts = [f"points [{bar}] {counts.done}/{counts.total} done", f"{running} running"]
        if counts.failed:
            parts.append(f"{counts.failed} failed")
        if counts.stopped:
            parts.append(f"{counts.stopped} to resume")
        parts.append(f"ETA {eta}")
        return "  ".join(parts)

    def update(self, counts, elapsed_s: float, final: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            if final or now - self._last_draw >= self.min_interval_s:
                self.stream.write("\r" + self.line(counts, elapsed_s).ljust(100)[:110] + ("\n" if final else ""))
                self.stream.flush()
                self._last_draw = now
            return
        decile = int(10 * counts.done / max(counts.total, 1))
        if decile != self._last_decile or final:
            self._last_decile = decile
            self.stream.write(self.line(counts, elapsed_s) + "\n")
            self.stream.flush()
