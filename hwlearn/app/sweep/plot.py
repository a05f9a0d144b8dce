"""`hwlearn sweep plot`: one metric against one axis, a line per setting of the other axes, error
bars one standard deviation over the seeds (matplotlib, written as PNG without a display)."""

from __future__ import annotations

import numbers
from pathlib import Path

from hwlearn.app.sweep.points import format_value
from hwlearn.errors import ConfigError


def axis_key(doc: dict, name: str) -> str:
    """The dotted key of an axis given by its key or its short name (as in the table's header)."""
    by_short = {short: key for key, short in doc["short_names"].items()}
    if name in doc["axes"]:
        return name
    if name in by_short:
        return by_short[name]
    raise ConfigError(f"--x {name}: not an axis of the sweep; axes: {', '.join(doc['axes']) or 'none (seeds only)'}")


def plot_sweep(doc: dict, x: str, y: str, out: Path, log_x: bool | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = axis_key(doc, x)
    if y not in doc["metric_names"]:
        raise ConfigError(f"--y {y}: no point has this metric; metrics: {', '.join(doc['metric_names']) or 'none yet'}")
    others = [a for a in doc["axes"] if a != key]
    lines: dict[tuple, list] = {}
    for setting in doc["settings"]:
        stats = setting["metrics"][y]
        if stats["n"] == 0:
            continue
        label = tuple((a, format_value(setting["params"][a])) for a in others)
        lines.setdefault(label, []).append((setting["params"][key], stats))
    if not lines:
        raise ConfigError(f"{doc['sweep_dir']}: no point is done yet; nothing to plot")
    values = [v for points in lines.values() for v, _ in points]
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
    categories = {format_value(v): i for i, v in enumerate(dict.fromkeys(map(format_value, values)))}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in lines.items():
        points.sort(key=lambda item: item[0] if numeric else categories[format_value(item[0])])
        xs = [v if numeric else categories[format_value(v)] for v, _ in points]
        ax.errorbar(xs, [s["mean"] for _, s in points], yerr=[s["std"] for _, s in points], marker="o", capsize=3,
                    label=", ".join(f"{doc['short_names'][a]} = {v}" for a, v in label) or None)
    if numeric and (log_x or (log_x is None and min(values) > 0 and max(values) / min(values) >= 100)):
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(list(categories.values()), list(categories))
    seeds = max(s["n"] for points in lines.values() for _, s in points)
    ax.set(xlabel=key, ylabel=y, title=f"{doc['name']}: {y} against {doc['short_names'][key]} "
           f"(mean +- std over up to {seeds} seeds)")
    if len(lines) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
