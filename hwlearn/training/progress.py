"""A progress line for long training: epoch, loss, accuracy, ETA; a subscriber of the run's
documents (hwlearn.documents), after the run-store writer.

On a terminal it redraws one line (at most 10 times a second); in a log file or pipe it prints
a line every tenth of the run, so CI logs stay short.
"""

from __future__ import annotations

import sys
import time

from hwlearn.documents import Document, RunStart, RunStop, StatusChange, StepRecord


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    def __init__(self, stream=None, width: int = 24, min_interval_s: float = 0.1):
        self.stream = stream or sys.stderr
        self.width = width
        self.min_interval_s = min_interval_s
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.monotonic()
        self.first_step: int | None = None
        self._last_draw = 0.0
        self._last_decile = -1
        self._metrics: dict = {}
        self._plan: dict = {}

    def __call__(self, doc: Document) -> None:
        if isinstance(doc, RunStart):
            self._plan = doc.plan
        elif isinstance(doc, StepRecord) and doc.step > 0 and self._plan:
            self.update(doc.epoch, self._plan["epochs"], doc.step, self._plan["steps_total"], doc.scalars)
        elif isinstance(doc, StatusChange) and doc.state == "paused":
            self._note(f"paused {doc.detail}".rstrip())
        elif isinstance(doc, RunStop):
            self.finish()

    def _note(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r" + text.ljust(100)[:100])
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, epoch: int, epochs: int, step: int, steps_total: int, scalars: dict) -> None:
        if self.first_step is None:
            self.first_step = step - 1  # a resumed run counts its speed from where it restarted
            self.started = time.monotonic()
        for key in ("train_loss", "test_accuracy"):
            if key in scalars:
                self._metrics[key] = scalars[key]
        self._metrics.setdefault("batch_loss", scalars.get("batch_loss"))
        if "batch_loss" in scalars:
            self._metrics["batch_loss"] = scalars["batch_loss"]
        fraction = min(step / max(steps_total, 1), 1.0)
        now = time.monotonic()
        done_here = step - self.first_step
        eta = (now - self.started) / done_here * (steps_total - step) if done_here > 0 else 0.0
        line = self._line(epoch, epochs, fraction, eta)
        if self.tty:
            if now - self._last_draw >= self.min_interval_s or step >= steps_total:
                self.stream.write("\r" + line.ljust(100)[:100])
                self.stream.flush()
                self._last_draw = now
        else:
            decile = int(fraction * 10)
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(line + "\n")
                self.stream.flush()

    def _line(self, epoch: int, epochs: int, fraction: float, eta: float) -> str:
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        parts = [f"epoch {epoch}/{epochs}", f"[{bar}] {fraction:4.0%}"]
        loss = self._metrics.get("train_loss", self._metrics.get("batch_loss"))
        if loss is not None:
            parts.append(f"loss {loss:.3e}")
        if "test_accuracy" in self._metrics:
            parts.append(f"acc {self._metrics['test_accuracy']:.3f}")
        parts.append(f"ETA {_clock(eta)}")
        return "  ".join(parts)

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
