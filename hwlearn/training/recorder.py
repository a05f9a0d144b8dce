"""The run-store writer as the first subscriber of a run's documents.

It is the one place where documents become rows and files (hwlearn.runstore.RunWriter): every
other subscriber is called after it returned, so a view never shows a step that is not on disk.
"""

from __future__ import annotations

from hwlearn.documents import (
    Checkpoint,
    Document,
    Heartbeat,
    RunEvent,
    RunStart,
    RunStop,
    StatusChange,
    StepRecord,
    Summary,
)
from hwlearn.runstore import ACTIVE, RunWriter


class RunStoreRecorder:
    def __init__(self, writer: RunWriter):
        self.writer = writer

    def __call__(self, doc: Document) -> None:
        w = self.writer
        if isinstance(doc, StepRecord):
            w.record_step(doc.step, doc.epoch, doc.scalars, doc.arrays or None)
        elif isinstance(doc, Checkpoint):
            w.checkpoint(doc.step, doc.epoch, doc.arrays, doc.state)
        elif isinstance(doc, RunEvent):
            w.event(doc.kind, doc.message, level=doc.level, data=doc.data, step=doc.step)
        elif isinstance(doc, StatusChange):
            if doc.state in ACTIVE:
                w.set_status(doc.state, doc.detail)
        elif isinstance(doc, Summary):
            w.set_summary(**doc.values)
        elif isinstance(doc, Heartbeat):
            w.heartbeat()
        elif isinstance(doc, RunStart):
            w.update_metadata(rig=doc.rig, plan=doc.plan)
        elif isinstance(doc, RunStop):
            w.close(doc.status, doc.detail)

    def __repr__(self) -> str:
        return f"RunStoreRecorder({self.writer.run_dir})"
