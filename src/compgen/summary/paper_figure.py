"""compgen against a paper's published values: per dataset, one scatter per measure (training NLL,
held-out NLL, their ratio and difference, D), the paper's value on x, compgen's mean over seeds on
y (bars: sample std), one point per (model, condition), and the identity line."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from compgen.figio import save_figure
from compgen.summary.published import MEASURES, finite_pairs

AXIS_TITLES = {
    "train_nll": "training NLL (nats per image)",
    "test_nll": "held-out NLL (nats per image)",
    "nll_ratio": "NLL ratio: held-out / training",
    "nll_delta": "NLL Δ: held-out − training",
    "disentanglement": "D (DCI disentanglement)",
}
# Measures whose axes turn logarithmic when their values are positive and span a decade or more.
LOG_WHEN_SPREAD = {"train_nll", "test_nll", "nll_ratio"}
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]


def _limits(values: np.ndarray, log: bool, measure: str) -> tuple[float, float]:
    if measure == "disentanglement":
        return -0.02, 1.05
    lo, hi = float(values.min()), float(values.max())
    if log:
        return lo / 1.4, hi * 1.4
    pad = 0.08 * (hi - lo) if hi > lo else max(abs(hi) * 0.1, 1.0)
    return lo - pad, hi + pad


def _use_log(values: np.ndarray, measure: str) -> bool:
    return (
        measure in LOG_WHEN_SPREAD
        and len(values) > 0
        and values.min() > 0
        and values.max() / values.min() >= 10
    )


def draw_paper_comparison(compare: pd.DataFrame, title: str = "", d_label: str = "D") -> Figure:
    """The comparison figure of one dataset's rows of compare.csv (compgen.summary.published.
    comparison, with a `label` column: the model as tables show it). Each scatter's gid is
    "<measure>|<label>|<condition>", so its points can be read back."""
    compare = compare.copy()
    if "label" not in compare:
        compare["label"] = compare["model"]
    labels = list(dict.fromkeys(compare["label"]))
    conditions = list(dict.fromkeys(compare["condition"]))
    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    colours = {label: cmap(i % cmap.N) for i, label in enumerate(labels)}
    markers = {c: MARKERS[i % len(MARKERS)] for i, c in enumerate(conditions)}

    fig = Figure(figsize=(15.0, 9.6 + (0.3 if title else 0.0)))
    grid = fig.add_gridspec(2, 3, wspace=0.3, hspace=0.35)
    hand_set = False
    for i, measure in enumerate(MEASURES):
        ax = fig.add_subplot(grid[i // 3, i % 3])
        points = finite_pairs(compare, measure)
        total = int((compare["measure"] == measure).sum())
        axis = AXIS_TITLES[measure] if measure != "disentanglement" else f"{d_label} disentanglement"
        ax.set_title(f"{axis}\n{len(points)} of {total} (model, condition) pairs", fontsize=10)
        ax.set_xlabel("paper", fontsize=9)
        ax.set_ylabel("compgen (mean over seeds)", fontsize=9)
        if points.empty:
            ax.text(0.5, 0.5, "no pair with both values", ha="center", va="center", transform=ax.transAxes)
            continue
        values = np.concatenate([points["paper"].to_numpy(float), points["compgen"].to_numpy(float)])
        log = _use_log(values, measure)
        lo, hi = _limits(values, log, measure)
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.plot([lo, hi], [lo, hi], color="0.55", linestyle="--", linewidth=1, zorder=1)
        for (label, condition), group in points.groupby(["label", "condition"], sort=False):
            x = group["paper"].to_numpy(float)
            y = group["compgen"].to_numpy(float)
            std = group["compgen_std"].to_numpy(float)
            hollow = group["paper_note"].fillna("").astype(str).str.len().to_numpy() > 0
            hand_set |= bool(hollow.any())
            if np.isfinite(std).any():
                ax.errorbar(
                    x,
                    y,
                    yerr=np.where(np.isfinite(std), std, 0.0),
                    fmt="none",
                    ecolor=colours[label],
                    elinewidth=0.8,
                    alpha=0.7,
                    zorder=2,
                )
            faces = [("none" if h else colours[label]) for h in hollow]
            ax.scatter(
                x,
                y,
                marker=markers[condition],
                s=48,
                facecolors=faces,
                edgecolors=colours[label],
                linewidths=1.2,
                zorder=3,
                gid=f"{measure}|{label}|{condition}",
            )
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal" if not log else "auto", adjustable="box")
        ax.grid(True, which="major", color="0.92")

    legend = fig.add_subplot(grid[1, 2])
    legend.axis("off")
    handles = [Line2D([], [], marker="o", linestyle="", color=colours[m], label=m) for m in labels]
    handles += [Line2D([], [], marker=markers[c], linestyle="", color="0.3", label=c) for c in conditions]
    handles.append(Line2D([], [], color="0.55", linestyle="--", label="identity (compgen = paper)"))
    if hand_set:
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                markerfacecolor="none",
                color="0.3",
                label="hollow: the paper's D set by hand",
            )
        )
    legend.legend(
        handles=handles,
        loc="center",
        frameon=False,
        fontsize=9,
        title="colour: model · marker: condition",
        title_fontsize=9,
    )
    if title:
        fig.suptitle(title, fontsize=12)
    return fig


def plot_paper_comparison(
    compare: pd.DataFrame, out_paths: list[str | os.PathLike], title: str = "", d_label: str = "D"
) -> None:
    fig = draw_paper_comparison(compare, title, d_label)
    for path in out_paths:
        save_figure(fig, path)
