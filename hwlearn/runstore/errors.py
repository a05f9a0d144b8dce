"""Errors of the run store. Each names the run folder (or file), the value and what is allowed."""

from hwlearn.errors import HwlearnError


class RunStoreError(HwlearnError):
    """A run folder cannot be written or read as asked."""


class NotARunError(RunStoreError):
    """A folder is not a run folder: the message names the folder and what is missing."""


class RunExistsError(RunStoreError):
    """RunWriter.create was given a folder that already holds files."""


class DuplicateStepError(RunStoreError):
    """A step was recorded twice, or out of order."""


class BlobError(RunStoreError):
    """An array cannot be stored as a typed blob, or a stored blob is inconsistent."""


class RunBusyError(RunStoreError):
    """Another live process is writing the run."""
