"""Run status values and the status a reader reports."""

from __future__ import annotations

from dataclasses import dataclass

# Recorded by a writer while it works.
ACTIVE = ("running", "paused", "stopping", "aborting")
# Recorded by RunWriter.close: done (finished), stopped (clean stop or Ctrl-C),
# aborted (the user aborted), failed (an error).
FINAL = ("done", "stopped", "aborted", "failed")
RECORDED = ACTIVE + FINAL
# Reported by a reader, never recorded: the last status is active but the writer is gone.
CRASHED = "crashed"
# Effective statuses from which RunWriter.resume continues a run: every end but a finished one
# (an aborted run keeps its checkpoints; resuming it is the operator's call).
RESUMABLE = (CRASHED, "stopped", "aborted", "failed")

# A writer on another host that has not written for this long is taken for dead.
DEFAULT_STALE_AFTER_S = 900.0


@dataclass(frozen=True)
class RunStatus:
    """What a reader knows about a run's state.

    ``status`` is the effective status: the recorded one, or "crashed". ``recorded`` is the
    last status the writer wrote; ``time`` its Unix time in seconds. ``writer_alive`` is True or
    False when known, None when the writer is on another host and its heartbeat is recent.
    ``session`` counts writer sessions (1 at creation, +1 per resume): a monitor that sees it
    change re-reads the steps, since a resume replaces the steps after its checkpoint."""

    status: str
    detail: str
    time: float
    recorded: str
    writer_host: str
    writer_pid: int
    writer_alive: bool | None
    heartbeat: float
    session: int

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE
