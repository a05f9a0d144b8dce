"""hwlearn show RUN_DIR [--json]: a one-screen summary of a run (docs/run-store.md)."""

from __future__ import annotations

import json

from hwlearn.cli.table import number
from hwlearn.runstore import RunReader, run_overview
from hwlearn.runstore.jsontext import finite_or_null
from hwlearn.runstore.metadata import utc_iso

SCHEMA = "hwlearn.show/1"


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="summary of one run",
                       description="Status, rule, task, progress, final metrics, checkpoint and events of a run "
                       "folder, also while it is being written.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder")
    p.add_argument("--json", action="store_true", help=f"print a JSON document ({SCHEMA}, docs/run-store.md)")
    p.set_defaults(run=run)


def show_document(run_dir: str) -> dict:
    """The hwlearn.show/1 document. NaN and infinite numbers become null."""
    with RunReader(run_dir) as reader:
        overview = run_overview(reader)
        status = reader.status()
        metadata = reader.metadata()
        checkpoint = reader.latest_checkpoint(load_arrays=False)
        counts = reader.event_counts()
        last_error = reader.last_event("error")
        doc = {
            "schema": SCHEMA,
            **overview,
            "writer": {"host": status.writer_host, "pid": status.writer_pid, "alive": status.writer_alive,
                       "session": status.session, "heartbeat": utc_iso(status.heartbeat)},
            "summary": reader.summary(),
            "scalar_names": reader.scalar_names(),
            "array_names": reader.array_names(),
            "checkpoint": None if checkpoint is None else {
                "step": checkpoint.step, "epoch": checkpoint.epoch, "time": utc_iso(checkpoint.time),
                "path": str(checkpoint.path)},
            "events": {"counts": counts, "last_error": None if last_error is None else last_error["message"]},
            "hwlearn": metadata.get("hwlearn"),
            "git_commit": metadata.get("git_commit"),
            "host": metadata.get("host"),
        }
    return finite_or_null(doc)


def _text(doc: dict) -> str:
    m = doc["metrics"]
    lines = [
        ("run", doc["run_dir"]),
        ("status", doc["status"] + (f"  ({doc['status_detail']})" if doc["status_detail"] else "")),
        ("rule", doc["rule"] or "-"),
        ("task", doc["task"] or "-"),
        ("plan", "-" if not doc["measurement"] else
         f"{doc['measurement'].get('plan', '?')}: {doc['measurement'].get('why', '')}"),
        ("created", doc["created"]),
        ("progress", f"{doc['epochs_done'] if doc['epochs_done'] is not None else '-'} epochs, "
                     f"{doc['steps_recorded']} steps"
                     + (f" (last step {doc['last_step']} at {doc['last_step_time']})" if doc["last_step"] is not None
                        else "")),
        ("train loss", number(m["train_loss"])),
        ("test loss", number(m["test_loss"])),
        ("test accuracy", number(m["test_accuracy"])),
        ("linear ceiling", number(m["linear_ceiling_accuracy"])),
        ("checkpoint", "none" if doc["checkpoint"] is None else
         f"step {doc['checkpoint']['step']} (epoch {doc['checkpoint']['epoch']}) at {doc['checkpoint']['time']}"),
        ("seeds", json.dumps(doc["seeds"]) if doc["seeds"] is not None else "-"),
        ("scalars", ", ".join(doc["scalar_names"]) or "-"),
        ("arrays", ", ".join(doc["array_names"]) or "-"),
        ("events", ", ".join(f"{n} {level}" for level, n in sorted(doc["events"]["counts"].items())) or "none"),
        ("writer", f"pid {doc['writer']['pid']} on {doc['writer']['host']}, session {doc['writer']['session']}"),
        ("software", f"hwlearn {doc['hwlearn']}, git {doc['git_commit'] or 'unknown'}"),
    ]
    if doc["events"]["last_error"]:
        lines.append(("last error", doc["events"]["last_error"]))
    width = max(len(key) for key, _ in lines)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in lines)


def run(args) -> int:
    doc = show_document(args.run_dir)
    print(json.dumps(doc, indent=2) if args.json else _text(doc))
    return 0
