"""The few facts every view of a run shows: status, rule, task, progress and final metrics."""

from __future__ import annotations

from hwlearn.runstore.metadata import utc_iso
from hwlearn.runstore.reader import RunReader

# Scalars whose last recorded value is a run's headline result.
FINAL_SCALARS = ("train_loss", "test_loss", "test_accuracy")
# Run-level values the trainer puts in the summary.
SUMMARY_METRICS = ("linear_ceiling_accuracy",)


def _name_of(config: dict, section: str) -> str | None:
    value = config.get(section)
    if isinstance(value, dict):
        value = value.get("name")
    return value if isinstance(value, str) else None


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def run_overview(reader: RunReader) -> dict:
    """A dict of plain values (NaN kept as NaN; callers writing strict JSON replace it).

    epochs_done is the summary's "epochs_done", else the epoch number of the last recorded
    step, else None. Metrics absent from the run are None."""
    status = reader.status()
    config = reader.config()
    metadata = reader.metadata()
    summary = reader.summary()
    last = reader.last_step()
    epochs_done = summary.get("epochs_done")
    if epochs_done is None and last is not None:
        epochs_done = last.epoch
    metrics = {}
    for name in FINAL_SCALARS:
        found = reader.last_scalar(name)
        metrics[name] = None if found is None else found[1]
    for name in SUMMARY_METRICS:
        metrics[name] = _number(summary.get(name))
    seeds = metadata.get("seeds", config.get("seeds"))
    return {
        "run_dir": str(reader.run_dir),
        "status": status.status,
        "status_detail": status.detail,
        "status_time": utc_iso(status.time),
        "created": metadata.get("created") or utc_iso(reader.created()),
        "rule": _name_of(config, "rule"),
        "task": _name_of(config, "task"),
        "epochs_done": epochs_done,
        "steps_recorded": reader.step_count(),
        "last_step": None if last is None else last.step,
        "last_step_time": None if last is None else utc_iso(last.time),
        "metrics": metrics,
        "seeds": seeds,
        "measurement": (metadata.get("plan") or {}).get("measurement"),
    }
