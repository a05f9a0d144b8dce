"""The reproduction's figures (matplotlib, written as PNG without a display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from hwlearn.app.reproduce.common import LABELS

COLORS = {"omega": "C0", "ep": "C1", "ep_symmetric": "C2", "coupled": "C3"}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def iris_curves(result: dict, path: Path) -> Path:
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    epochs = result["epochs"]
    for rule, curves in result["curves"].items():
        for ax, key in ((ax_loss, "train_loss"), (ax_acc, "test_accuracy")):
            data = curves[key]
            ax.plot(epochs, data.mean(axis=0), color=COLORS[rule], label=LABELS[rule])
            ax.fill_between(epochs, data.min(axis=0), data.max(axis=0), color=COLORS[rule], alpha=0.15)
    ceiling = result["ceiling"]["mean"]
    ax_acc.axhline(ceiling, color="k", ls="--", lw=1, label=f"linear least-squares ceiling ({ceiling:.3f})")
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="epoch", ylabel="train loss 1/2|v_out - y|^2 (V^2)", title="Iris: training loss")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy", title="Iris: test accuracy", ylim=(0.3, 1.0))
    n = result["finals"]["omega"]["test_accuracy"]["n"]
    ax_acc.legend(loc="lower right", fontsize=8, title=f"mean and range over {n} seeds", title_fontsize=8)
    return _save(fig, path)


def gradient_bias(result: dict, sigmas, path: Path) -> Path:
    rows = result["rows"]
    fig, axes = plt.subplots(1, len(sigmas), figsize=(4.2 * len(sigmas), 4.2), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, sigma in zip(axes, sigmas):
        at = [r for r in rows if r["sigma"] == sigma]
        ep = [r for r in at if r["rule"] == "ep"]
        betas = np.array([r["beta"] for r in ep])
        ax.loglog(betas, [r["relative_bias"] for r in ep], "o", color=COLORS["ep"], label="two-phase (measured)")
        ax.loglog(betas, [r["predicted"] for r in ep], "-", color=COLORS["ep"], lw=1, label="two-phase (analytic)")
        sym = [r for r in at if r["rule"] == "ep_symmetric"]
        ax.loglog(betas, [r["relative_bias"] for r in sym], "s", mfc="none", color=COLORS["ep_symmetric"],
                  label="two-phase symmetric")
        cl = [r for r in at if r["rule"] == "coupled"]
        ax.loglog([r["eta"] for r in cl], [r["relative_bias"] for r in cl], "^", mfc="none",
                  color=COLORS["coupled"], label="Coupled Learning (x: eta)")
        omega = next(r for r in at if r["rule"] == "omega")
        ax.axhline(omega["relative_bias"], color=COLORS["omega"], label="Omega-learning (no beta)")
        floors = [r["mc_floor"] for r in at]
        ax.axhspan(1e-18, max(floors), color="0.85", label="Monte-Carlo noise floor")
        ax.set(xlabel="nudge beta (eta for CL)", title=f"target noise sigma = {sigma} V", ylim=(1e-6, 1))
    axes[0].set_ylabel("|E[estimate] - noise-free limit| / |limit|")
    axes[-1].legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def noisy_training(result: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for rule, by_sigma in result.items():
        sigmas = np.array([float(s) for s in by_sigma])
        mean = np.array([v["mean"] for v in by_sigma.values()])
        std = np.array([v["std"] for v in by_sigma.values()])
        ax.errorbar(sigmas, mean, yerr=std, marker="o", capsize=3, color=COLORS[rule], label=LABELS[rule])
    ax.set(xlabel="target noise sigma (V)", ylabel="final test loss on clean targets (V^2)",
           title="Training with noisy targets (two-phase beta = 0.1)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def partial_updates(result: dict, ceiling: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for rule, by_fraction in result.items():
        fractions = np.array([float(f) for f in by_fraction])
        mean = np.array([v["test_accuracy"]["mean"] for v in by_fraction.values()])
        std = np.array([v["test_accuracy"]["std"] for v in by_fraction.values()])
        ax.errorbar(fractions, mean, yerr=std, marker="o", capsize=3, color=COLORS[rule], label=LABELS[rule])
    ax.axhline(ceiling, color="k", ls="--", lw=1, label="linear least-squares ceiling")
    ax.set(xlabel="fraction of tunable edges frozen", ylabel="final test accuracy",
           title="Iris: partial updates", ylim=(0.3, 1.0))
    ax.legend(fontsize=8)
    return _save(fig, path)
