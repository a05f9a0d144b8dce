"""The run store: one folder per run, written by one RunWriter, read by any number of
RunReaders, also while it is written. docs/run-store.md describes the folder and the API."""

from hwlearn.runstore.blobs import decode_array, encode_array
from hwlearn.runstore.checkpoint import Checkpoint
from hwlearn.runstore.errors import (
                                     BlobError,
                                     DuplicateStepError,
                                     NotARunError,
                                     RunBusyError,
                                     RunExistsError,
                                     RunStoreError,
)
from hwlearn.runstore.listing import is_run_dir, list_runs
from hwlearn.runstore.overview import run_overview
from hwlearn.runstore.reader import RunReader, StepRecord, Steps
from hwlearn.runstore.status import ACTIVE, CRASHED, FINAL, RESUMABLE, RunStatus
from hwlearn.runstore.writer import RunWriter

__all__ = [
    "ACTIVE", "CRASHED", "FINAL", "RESUMABLE", "BlobError", "Checkpoint", "DuplicateStepError", "NotARunError",
    "RunBusyError", "RunExistsError", "RunReader", "RunStatus", "RunStoreError", "RunWriter", "StepRecord",
    "Steps", "decode_array", "encode_array", "is_run_dir", "list_runs", "run_overview",
]
