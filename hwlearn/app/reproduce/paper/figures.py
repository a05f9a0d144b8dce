"""Figures of the paper study (matplotlib, PNG without a display). Error bars: standard errors
over seeds; divergence rates: 95 % Wilson intervals."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from hwlearn.app.reproduce.figures import COLORS
from hwlearn.app.reproduce.paper.setting import CONDITION_LABELS, LR_GRID, PAPER, RULES_COMPARED
from hwlearn.app.reproduce.paper.studies import AT_OMEGA_RATE
from hwlearn.rules import RULES

LABELS = {**{name: RULES[name].label for name in RULES_COMPARED}, AT_OMEGA_RATE: "two-phase EP at Omega's rate"}
COLORS = {**COLORS, AT_OMEGA_RATE: "C1"}
MEMBER_STYLE = {"gep(order=1)": ("C1", "o", "-"), "gep(order=1,centered)": ("C2", "s", "--"),
                "gep(order=2)": ("C3", "^", "-"), "gep(order=2,centered)": ("C4", "v", "--")}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _band(ax, x, data, rule, log=False):
    data = np.asarray(data, dtype=float)
    centre = np.exp(np.nanmean(np.log(data), axis=0)) if log else np.nanmean(data, axis=0)
    ax.plot(x, centre, color=COLORS[rule], label=LABELS[rule])
    ax.fill_between(x, np.nanmin(data, axis=0), np.nanmax(data, axis=0), color=COLORS[rule], alpha=0.12)


def training(trainings: dict, task: str, path: Path) -> Path:
    """Loss (geometric mean and range over seeds), accuracy (Iris) and cosine along training, in
    the paper's setting and with equal fixed outputs."""
    curves = trainings["curves"][task]
    conditions = [c for c in ("fixed_equal", PAPER) if c in curves]
    panels = 3 if task == "iris" else 2
    fig, axes = plt.subplots(len(conditions), panels, figsize=(4.6 * panels, 3.6 * len(conditions)), squeeze=False)
    for row, condition in zip(axes, conditions):
        for rule, data in curves[condition].items():
            loss = data["train_loss"]
            epochs = np.arange(loss.shape[1])
            _band(row[0], epochs, loss, rule, log=True)
            _band(row[-1], epochs[1:], data["cosine"], rule)
            if task == "iris":
                _band(row[1], epochs, data["test_accuracy"], rule)
        row[0].set_yscale("log")
        row[0].set(xlabel="epoch", ylabel="train loss (V^2)", title=f"{task}, outputs {CONDITION_LABELS[condition]}")
        row[-1].set(xlabel="epoch", ylabel="cosine with the exact gradient", ylim=(-1.05, 1.05),
                    title="agreement along training")
        row[-1].axhline(0, color="0.6", lw=0.8)
        if task == "iris":
            ceiling = trainings["iris_ceiling"][condition]["mean"]
            row[1].axhline(ceiling, color="k", ls="--", lw=1, label=f"linear ceiling ({ceiling:.3f})")
            row[1].set(xlabel="epoch", ylabel="test accuracy", ylim=(0.2, 1.0), title="Iris test accuracy")
            row[1].legend(fontsize=7, loc="lower right")
    n = trainings["results"][task][conditions[0]]["omega"]["divergence"]["n"]
    axes[0][0].legend(fontsize=7, title=f"mean and range, {n} seeds", title_fontsize=7)
    return _save(fig, path)


def conditions(trainings: dict, path: Path) -> Path:
    """Teacher: final loss, divergence rate and mean cosine against the output-edge condition."""
    results = trainings["results"]["teacher"]
    names = list(results)
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.4))
    width = 0.8 / len(RULES_COMPARED)
    for i, rule in enumerate(RULES_COMPARED):
        offset = (i - (len(RULES_COMPARED) - 1) / 2) * width
        loss = [results[c][rule]["log10_final_over_initial"] for c in names]
        axes[0].errorbar(x + offset, [v["mean"] for v in loss], yerr=[v["sem"] for v in loss], fmt="o",
                         color=COLORS[rule], capsize=3, label=LABELS[rule])
        div = [results[c][rule]["divergence"] for c in names]
        axes[1].bar(x + offset, [d["rate"] for d in div], width, color=COLORS[rule], alpha=0.7,
                    yerr=[[d["rate"] - d["low"] for d in div], [d["high"] - d["rate"] for d in div]], capsize=2)
        cos = [results[c][rule]["mean_cosine"] for c in names]
        axes[2].errorbar(x + offset, [v["mean"] for v in cos], yerr=[v["sem"] for v in cos], fmt="o",
                         color=COLORS[rule], capsize=3)
        moved = [results[c][rule]["log10_output_ohms_change"] for c in names]
        axes[3].errorbar(x + offset, [v["mean"] for v in moved], yerr=[v["sem"] for v in moved], fmt="o",
                         color=COLORS[rule], capsize=3)
    labels = [CONDITION_LABELS[c] for c in names]
    axes[0].axhline(0, color="0.6", lw=0.8)
    axes[0].set(ylabel="log10(final / initial train loss)", title="teacher: where training ends")
    axes[1].set(ylabel="share of seeds ending above their initial loss", ylim=(0, 1.05), title="divergence")
    axes[2].set(ylabel="mean cosine with the exact gradient", ylim=(-1.05, 1.05), title="agreement")
    axes[2].axhline(0, color="0.6", lw=0.8)
    axes[3].set(ylabel="mean |log10(final / initial)| of the output resistances", title="where the outputs went")
    for ax in axes:
        ax.set_xticks(x, labels, rotation=15, fontsize=8)
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def learning_rates(tuning: dict, path: Path) -> Path | None:
    rows = tuning["rows"]
    if not rows:
        return None
    settings = list(dict.fromkeys((r["task"], r["condition"]) for r in rows))
    cols = 3
    lines = -(-len(settings) // cols)
    fig, axes = plt.subplots(lines, cols, figsize=(4.4 * cols, 3.4 * lines), squeeze=False)
    for ax, (task, condition) in zip(axes.ravel(), settings):
        for rule in RULES_COMPARED:
            at = [r for r in rows if (r["task"], r["condition"], r["rule"]) == (task, condition, rule)]
            ax.semilogx([r["lr"] for r in at], [r["score"] for r in at], "o-", color=COLORS[rule], label=LABELS[rule])
            chosen = tuning["chosen"][f"{task}/{condition}/{rule}"]
            best = next(r for r in at if r["lr"] == chosen)
            ax.plot([chosen], [best["score"]], "*", ms=14, color=COLORS[rule], mec="k")
        ax.set(title=f"{task}, {CONDITION_LABELS[condition]}", xlabel="learning rate (Omega scale; A^2 rules x 1e4)",
               ylabel="median log10 loss held / initial", xlim=(LR_GRID[0] / 2, LR_GRID[-1] * 2))
    for ax in axes.ravel()[len(settings):]:
        ax.axis("off")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def sweeps(noise: dict, nudges: dict, partial: dict, path: Path) -> Path:
    """Teacher: final loss and divergence against target noise, nudge strength (paper's setting)
    and the frozen share (paper's setting; dashed: unequal fixed outputs)."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.6))
    panels = [(0, noise, PAPER, False), (1, nudges, PAPER, True)]
    panels += [(2, by_rule, condition, False) for condition, by_rule in partial.items()]
    for column, results, condition, log_x in panels:
        for rule, by_value in results.items():
            values = np.array([float(v) for v in by_value])
            stats = [v["log10_final_over_initial"] for v in by_value.values()]
            other = condition != PAPER
            style = {"ls": "--" if other else (":" if rule == AT_OMEGA_RATE else "-"),
                     "marker": "x" if rule == AT_OMEGA_RATE else "o", "mfc": "none" if other else None,
                     "color": COLORS[rule]}
            label = LABELS[rule] + (f" ({CONDITION_LABELS[condition]})" if other else "")
            axes[0][column].errorbar(values, [s["mean"] for s in stats], yerr=[s["sem"] for s in stats], capsize=3,
                                     label=label, **style)
            axes[1][column].plot(values, [v["divergence"]["rate"] for v in by_value.values()], **style)
            if log_x:
                axes[0][column].set_xscale("log")
                axes[1][column].set_xscale("log")
    for ax in axes[0]:
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_ylabel("log10(final / initial train loss)")
    for ax in axes[1]:
        ax.set(ylabel="divergence rate", ylim=(-0.05, 1.05))
    axes[0][0].set_title("target noise (scored on clean targets)")
    axes[0][1].set_title("nudge beta (eta for Coupled Learning)")
    axes[0][2].set_title("partial updates")
    axes[1][0].set_xlabel("target noise sigma (V)")
    axes[1][1].set_xlabel("beta")
    axes[1][2].set_xlabel("fraction of learnable edges frozen")
    axes[0][0].legend(fontsize=7)
    axes[0][2].legend(fontsize=6)
    return _save(fig, path)


def gep_orders(result: dict, path: Path) -> Path:
    rows = result["rows"]
    fig, (ax_own, ax_true) = plt.subplots(1, 2, figsize=(11, 4.4))
    floor = 1e-17
    for label, (color, marker, ls) in MEMBER_STYLE.items():
        at = [r for r in rows if r["member"] == label]
        betas = np.array([r["beta"] for r in at])
        errors = np.maximum([r["error_own"] for r in at], floor)
        slope = result["slopes"][label]
        order = (f"exact to {slope['max_error']:.0e}" if slope["predicted"] is None
                 else f"slope {slope['fitted']:.3f}")
        ax_own.loglog(betas, errors, marker=marker, ls=ls, color=color,
                      label=f"{label} -> grad {slope['objective']} ({order})")
        ax_true.semilogx(betas, [r["cosine_true"] for r in at], marker=marker, ls=ls, color=color, label=label)
    one_sided = [r for r in rows if r["member"] == "gep(order=1)"]
    b = np.array([r["beta"] for r in one_sided])
    ax_own.loglog(b, one_sided[-1]["error_own"] * b / b[-1], ":", color="0.4", lw=1,
                  label="slope 1 (predicted, one-sided)")
    ax_own.axhspan(floor, 1e-10, color="0.9", label="rounding (centred: exact in a linear network)")
    ax_own.set(xlabel="beta", ylabel="|estimate - grad l_k| / |grad l_k|",
               title="each member against its own objective")
    ax_own.legend(fontsize=7, loc="upper left")
    ax_true.set(xlabel="beta", ylabel="cosine with the exact gradient of L", ylim=(-1.05, 1.05),
                title="... and against the true gradient")
    ax_true.axhline(0, color="0.6", lw=0.8)
    ax_true.legend(fontsize=7)
    return _save(fig, path)


def noise_bias(result: dict, sigmas, path: Path) -> Path:
    """Bias of each rule's mean estimate against its own noise-free limit (one panel per sigma),
    and the cosine of that mean with the exact gradient (last panel)."""
    rows = result["rows"]
    floor = 1e-14
    fig, axes = plt.subplots(1, len(sigmas) + 1, figsize=(4.4 * (len(sigmas) + 1), 4.2), squeeze=False)
    axes = axes[0]
    for ax, sigma in zip(axes, sigmas):
        at = [r for r in rows if r["sigma"] == sigma]
        for rule in ("ep", "ep_symmetric", "coupled"):
            mine = [r for r in at if r["rule"] == rule]
            betas = [r["beta"] for r in mine]
            ax.loglog(betas, [max(r["relative_bias"], floor) for r in mine], "o" if rule != "ep_symmetric" else "s",
                      mfc="none" if rule != "ep" else None, color=COLORS[rule], label=f"{LABELS[rule]} (measured)")
            if "predicted" in mine[0]:
                ax.loglog(betas, [r["predicted"] for r in mine], "-", lw=1, color=COLORS[rule],
                          label=f"{LABELS[rule]} (predicted)")
        omega = next(r for r in at if r["rule"] == "omega")
        ax.axhline(max(omega["relative_bias"], floor), color=COLORS["omega"], label="Omega-learning")
        ax.axhspan(floor, max(max(r["mc_floor"] for r in at), 1e-12), color="0.88",
                   label="Monte-Carlo floor (rounding at sigma = 0)")
        ax.set(xlabel="beta (eta for CL)", title=f"target noise sigma = {sigma} V", ylim=(floor / 2, 10))
    axes[0].set_ylabel("|E[estimate] - its noise-free limit| / |limit|")
    axes[len(sigmas) - 1].legend(fontsize=6, loc="lower right")
    ax = axes[-1]
    sigma = sigmas[-1]
    for rule in ("omega", "ep", "ep_symmetric", "coupled"):
        mine = [r for r in rows if r["rule"] == rule and r["sigma"] == sigma]
        if rule == "omega":
            ax.axhline(mine[0]["cosine_true"], color=COLORS[rule], label=LABELS[rule])
        else:
            ax.semilogx([r["beta"] for r in mine], [r["cosine_true"] for r in mine], "o-", color=COLORS[rule],
                        label=LABELS[rule])
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(xlabel="beta (eta for CL)", ylabel="cosine of E[estimate] with the exact gradient", ylim=(-1.05, 1.05),
           title=f"what the mean follows (sigma = {sigma} V)")
    ax.legend(fontsize=7)
    return _save(fig, path)
