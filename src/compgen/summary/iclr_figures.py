"""The ICLR 2021 paper's figures of one dataset, drawn from the runs' scores and analysis arrays.

Montero et al. (ICLR 2021) analysed each dataset's models together (the original's
scripts/analysis/disent.py, laid out in notebooks/postproc.ipynb): per condition, the
disentanglement D of each model against its reconstruction NLL on training and on held-out
images, with the ground-truth decoder placed at D = 1 (it is fed the factors themselves); D and C
bars per model; and held-out images with every model's reconstruction, the ground-truth decoder
beside the VAEs. Here:

- `nll_points` / `plot_disent_vs_nll`: one panel per condition, one point per model for
  training (circle) and held-out (cross) NLL (`recon_train`, `recon_test`), joined by a line,
  D on the x-axis; ground-truth decoders (task `gt_decoder`) at D = 1;
- `dci_bars` / `plot_dci_bars`: D (top row) and C (bottom row), a bar per model, one panel per
  condition; a model without an encoder has no D or C and is named below the panels;
- `recon_panels` / `plot_recon_panels`: per condition, a strip of held-out images and under it
  each model's reconstruction of them.

D and C are the study's DCI variant (config `analysis.dci`, `compgen.analysis.dci_choice`).
Scores are means over seeds; the reconstructions are each model's first seed. Conditions are
ordered as the paper's panels: recombination to element, to range, extrapolation, then any other.
The pure functions return what is drawn; the plot functions draw it and return the figure.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from compgen.analysis.arrays import load_arrays
from compgen.analysis.dci_choice import DCI_LABELS, dci_key
from compgen.analysis.figures import _as_display_image
from compgen.figio import DPI, save_figure
from compgen.scores import read_scores

# The ground-truth decoder is fed the factors: the original puts it at D = 1
# (disent.py, disentanglement_vs_nll: np.concatenate([overall_disent.values, [1.0]])).
GT_DECODER_TASK = "gt_decoder"
GT_DECODER_D = 1.0
# The paper's panel order (postproc.ipynb: recombination to element, to range, extrapolation).
FAMILY_ORDER = ("recomb2element", "recomb2range", "extrp")
FAMILY_TITLES = {
    "recomb2element": "recombination to element",
    "recomb2range": "recombination to range",
    "extrp": "extrapolation",
    "interp": "interpolation",
    "iid": "iid control",
    "none": "all data",
}
DATA_MARKERS = {"train": "o", "test": "X"}  # seaborn's first two styles, as the original's
DATA_LABELS = {"train": "training", "test": "held out"}
RECON_IMAGES = 4
PANELS_PER_ROW = 4


@dataclass
class Drawn:
    """What a figure draws (`table`), and what it leaves out with the reason (`left_out`)."""

    table: pd.DataFrame
    left_out: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)


def condition_order(runs: Sequence[dict]) -> list[str]:
    """The runs' conditions in the paper's panel order (by family), else in the order given."""
    seen = list(dict.fromkeys(r["condition"] for r in runs))
    family = {r["condition"]: r.get("family", "") for r in runs}
    rank = lambda c: FAMILY_ORDER.index(family[c]) if family[c] in FAMILY_ORDER else len(FAMILY_ORDER)  # noqa: E731
    return sorted(seen, key=lambda c: (rank(c), seen.index(c)))


def condition_title(condition: str, family: str) -> str:
    return f"{condition}\n({FAMILY_TITLES.get(family, family)})" if family else condition


def _by_model(runs: Sequence[dict], scores: Sequence[dict]) -> dict[tuple[str, str], list[tuple[dict, dict]]]:
    """(condition, model) -> its runs (every seed) with their scores, conditions in panel order."""
    if len(runs) != len(scores):
        raise ValueError(f"{len(runs)} runs but {len(scores)} score files")
    order = condition_order(runs)
    grouped: dict[tuple[str, str], list[tuple[dict, dict]]] = {}
    for run, s in sorted(zip(runs, scores, strict=True), key=lambda rs: order.index(rs[0]["condition"])):
        grouped.setdefault((run["condition"], run["model"]), []).append((run, s))
    return grouped


def _mean(values: Sequence[float]) -> tuple[float, int]:
    """The mean of the finite values and how many there were (NaN, 0 when none)."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return (float(np.mean(finite)), len(finite)) if finite else (float("nan"), 0)


def read_all(paths: Sequence[str | os.PathLike]) -> list[dict]:
    return [read_scores(p) for p in paths]


def nll_points(runs: Sequence[dict], scores: Sequence[dict], variant: str) -> Drawn:
    """Per condition and model: D and the training and held-out NLL, means over seeds.

    `runs` are dicts with `condition`, `family`, `model`, `label`, `task` (and `seed`), `scores`
    their scores.json contents, in the same order. D is `dci_key(variant)`; a ground-truth decoder
    sits at D = 1. A model with no finite NLL or no D (a task that reconstructs nothing, a
    representation without DCI) is left out and named; an all-data reference has no held-out point.
    """
    key = dci_key(variant)
    rows, left_out = [], []
    for (condition, model), members in _by_model(runs, scores).items():
        run = members[0][0]
        if run["task"] == GT_DECODER_TASK:
            d, n_d = GT_DECODER_D, len(members)
        else:
            d, n_d = _mean([s.get(key, np.nan) for _, s in members])
        points = {data: _mean([s.get(f"recon_{data}", np.nan) for _, s in members]) for data in DATA_MARKERS}
        if n_d == 0 or all(n == 0 for _, n in points.values()):
            left_out.append(f"{condition}/{run['label']}: {'no reconstruction' if n_d else f'no {key}'}")
            continue
        for data, (nll, n) in points.items():
            if n:
                rows.append(
                    {
                        "condition": condition,
                        "family": run.get("family", ""),
                        "model": model,
                        "label": run["label"],
                        "task": run["task"],
                        "data": data,
                        "disentanglement": d,
                        "nll": nll,
                        "seeds": n,
                    }
                )
    columns = ["condition", "family", "model", "label", "task", "data", "disentanglement", "nll", "seeds"]
    return Drawn(pd.DataFrame(rows, columns=columns), left_out, condition_order(runs))


def dci_bars(runs: Sequence[dict], scores: Sequence[dict], variant: str) -> Drawn:
    """Per condition and model: D and C (`dci_key(variant, part)`), the mean over seeds and each
    seed's value. Models without them (a ground-truth decoder has no encoder) are named, not drawn."""
    rows, left_out = [], []
    for (condition, model), members in _by_model(runs, scores).items():
        run = members[0][0]
        parts = {}
        for part in ("disentanglement", "completeness"):
            values = [float(s.get(dci_key(variant, part), np.nan)) for _, s in members]
            parts[part] = (values, *_mean(values))
        if all(n == 0 for _, _, n in parts.values()):
            reason = "no encoder" if run["task"] == GT_DECODER_TASK else f"no {dci_key(variant)}"
            left_out.append(f"{condition}/{run['label']}: {reason}")
            continue
        for part, (values, mean, n) in parts.items():
            rows.append(
                {
                    "condition": condition,
                    "family": run.get("family", ""),
                    "model": model,
                    "label": run["label"],
                    "part": part,
                    "value": mean,
                    "seed_values": tuple(v for v in values if np.isfinite(v)),
                    "seeds": n,
                }
            )
    columns = ["condition", "family", "model", "label", "part", "value", "seed_values", "seeds"]
    return Drawn(pd.DataFrame(rows, columns=columns), left_out, condition_order(runs))


def model_colours(labels: Sequence[str]) -> dict[str, tuple]:
    """One colour per model label, in the order given (the same in every figure of a dataset)."""
    labels = list(dict.fromkeys(labels))
    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: cmap(k % cmap.N) for k, label in enumerate(labels)}


def _grid(n: int) -> tuple[int, int]:
    cols = min(max(n, 1), PANELS_PER_ROW)
    return max(-(-n // cols), 1), cols


def not_drawn(left_out: Sequence[str]) -> list[str]:
    """The footer line naming what a figure leaves out: "condition/model: reason" entries grouped
    by model and reason, each with its conditions."""
    grouped: dict[str, list[str]] = {}
    for entry in left_out:
        condition, what = entry.split("/", 1)
        grouped.setdefault(what, []).append(condition)
    if not grouped:
        return []
    return ["not drawn: " + "; ".join(f"{what} ({', '.join(cs)})" for what, cs in grouped.items())]


def _seeds_line(table: pd.DataFrame, what: str) -> list[str]:
    seeds = sorted(set(table["seeds"]))
    if not seeds or seeds == [1]:
        return []
    counts = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}"
    return [f"{what}: means over each model's seeds ({counts})"]


def _footer(fig: Figure, lines: Sequence[str]) -> None:
    if lines:
        fig.text(0.01, 0.01, "; ".join(lines), fontsize=7, ha="left", va="bottom", wrap=True)


def plot_disent_vs_nll(
    drawn: Drawn, out_paths: Sequence[str | os.PathLike], variant: str, title: str = "", note: str = ""
) -> Figure:
    """D against NLL, one panel per condition (drawn.conditions); each model's training (circle)
    and held-out (cross) point joined by a line. Each panel has its own NLL axis, logarithmic where
    its values span more than a factor of ten (the original broke its extrapolation axis instead)."""
    table = drawn.table
    colours = model_colours(table["label"])
    conditions = [c for c in drawn.conditions if (table["condition"] == c).any()]
    n_rows, n_cols = _grid(len(conditions))
    fig = Figure(figsize=(3.9 * n_cols + 2.6, 3.4 * n_rows + 1.1), dpi=DPI)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(conditions):
            ax.set_visible(bool(not conditions))
            if not conditions:
                ax.text(0.5, 0.5, "no model of this dataset has an NLL and a D", ha="center", va="center")
                ax.set_axis_off()
            continue
        condition = conditions[k]
        rows = table[table["condition"] == condition]
        for label, points in rows.groupby("label", sort=False):
            ax.plot(
                points["disentanglement"], points["nll"], "-", color=colours[label], linewidth=1, zorder=1
            )
            for data, marker in DATA_MARKERS.items():
                point = points[points["data"] == data]
                if len(point):
                    ax.scatter(
                        point["disentanglement"], point["nll"], s=60, marker=marker, color=colours[label],
                        edgecolors="white", linewidths=0.5, zorder=2,
                    )  # fmt: skip
        ax.set_xlim(0, 1.03)
        nll = rows["nll"].to_numpy()
        if nll.min() > 0 and nll.max() / nll.min() > 10:
            ax.set_yscale("log")
        ax.set_title(condition_title(condition, rows["family"].iloc[0]), fontsize=10)
        ax.set_xlabel(f"D ({DCI_LABELS[variant]}; GT decoder at 1)", fontsize=8)
        if k % n_cols == 0:
            ax.set_ylabel("NLL (reconstruction loss per image)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    handles = [Line2D([], [], color=c, marker="o", linestyle="-", label=lab) for lab, c in colours.items()]
    handles += [
        Line2D([], [], color="black", marker=m, linestyle="none", label=DATA_LABELS[d])
        for d, m in DATA_MARKERS.items()
    ]
    if conditions:
        fig.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    _footer(fig, _seeds_line(table, "points") + not_drawn(drawn.left_out))
    _finish(fig, out_paths, title and f"{title}: disentanglement against NLL", note)
    return fig


def plot_dci_bars(
    drawn: Drawn, out_paths: Sequence[str | os.PathLike], variant: str, title: str = "", note: str = ""
) -> Figure:
    """D (top row) and C (bottom row) per model, one column per condition; with several seeds,
    each seed's value is a dot on its model's bar (the mean)."""
    table = drawn.table
    colours = model_colours(table["label"])
    conditions = [c for c in drawn.conditions if (table["condition"] == c).any()]
    n_cols = max(len(conditions), 1)
    fig = Figure(figsize=(max(3.2 * n_cols, 4.0) + 2.6, 6.4), dpi=DPI)
    axes = fig.subplots(2, n_cols, squeeze=False, sharey=True)
    for col in range(n_cols):
        for row, part in enumerate(("disentanglement", "completeness")):
            ax = axes[row, col]
            if not conditions:
                ax.text(0.5, 0.5, "no model of this dataset has a D", ha="center", va="center")
                ax.set_axis_off()
                continue
            rows = table[(table["condition"] == conditions[col]) & (table["part"] == part)]
            x = np.arange(len(rows))
            ax.bar(x, rows["value"].to_numpy(), color=[colours[lab] for lab in rows["label"]], width=0.8)
            for xi, values in zip(x, rows["seed_values"], strict=True):
                if len(values) > 1:
                    ax.scatter([xi] * len(values), values, s=8, color="black", zorder=3)
            ax.set_ylim(0, 1.03)
            ax.set_xticks(x, [""] * len(x))
            ax.tick_params(labelsize=7, length=0)
            ax.spines[["top", "right"]].set_visible(False)
            if row == 0:
                ax.set_title(condition_title(conditions[col], rows["family"].iloc[0]), fontsize=10)
            if col == 0:
                ax.set_ylabel(f"{part[0].upper()} ({part})", fontsize=9)
    handles = [
        Line2D([], [], color=c, marker="s", linestyle="none", markersize=8, label=lab)
        for lab, c in colours.items()
    ]
    if conditions:
        fig.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    footer = [f"{DCI_LABELS[variant]}: {dci_key(variant)}, {dci_key(variant, 'completeness')}"]
    footer += _seeds_line(table, "bars") + ["dots: each seed"] * bool(_seeds_line(table, "bars"))
    _footer(fig, footer + not_drawn(drawn.left_out))
    _finish(fig, out_paths, title and f"{title}: disentanglement and completeness", note)
    return fig


def recon_panels(runs: Sequence[dict], arrays: Sequence[dict], n_images: int = RECON_IMAGES) -> Drawn:
    """Per condition, the held-out images and each model's reconstruction of them (first
    `n_images` of its analysis arrays, one run per model: the first seed). Models of a condition are
    analysed on the same seeded sample of held-out images; a model whose images differ gets its own
    row of them above its reconstructions. A condition with no held-out images (an all-data
    reference) and a model that renders nothing (a regressor) are named, not drawn.

    The table has one row per drawn strip: condition, family, kind (`held out` or `reconstruction`),
    label, images (n x H x W x C uint8)."""
    if len(runs) != len(arrays):
        raise ValueError(f"{len(runs)} runs but {len(arrays)} analysis files")
    rows, left_out = [], []
    order = condition_order(runs)
    for condition in order:
        members = [(r, a) for r, a in zip(runs, arrays, strict=True) if r["condition"] == condition]
        shown = None
        for run, a in members:
            inputs = np.asarray(a["recon_test_inputs"])[:n_images]
            outputs = np.asarray(a["recon_test_outputs"])[:n_images]
            if len(np.asarray(a["recon_train_inputs"])) == 0:
                left_out.append(f"{condition}/{run['label']}: renders no images")
                continue
            if len(inputs) == 0:
                left_out.append(f"{condition}/{run['label']}: no held-out images")
                continue
            base = {"condition": condition, "family": run.get("family", "")}
            if shown is None or inputs.shape != shown.shape or not np.array_equal(inputs, shown):
                label = "held out" if shown is None else f"held out ({run['label']})"
                rows.append({**base, "kind": "held out", "label": label, "images": inputs})
                shown = inputs
            rows.append({**base, "kind": "reconstruction", "label": run["label"], "images": outputs})
    columns = ["condition", "family", "kind", "label", "images"]
    return Drawn(pd.DataFrame(rows, columns=columns), left_out, order)


def plot_recon_panels(
    drawn: Drawn, out_paths: Sequence[str | os.PathLike], title: str = "", note: str = ""
) -> Figure:
    """Conditions side by side; in each, a strip of held-out images (red frames) over one strip
    per model, each strip titled by what it shows."""
    table = drawn.table
    conditions = [c for c in drawn.conditions if (table["condition"] == c).any()]
    blocks = [table[table["condition"] == c] for c in conditions]
    n_strips = max((len(b) for b in blocks), default=1)
    n_images = max((len(images) for images in table["images"]), default=1)
    width = max(0.85 * n_images * max(len(blocks), 1) + 0.3 * max(len(blocks) - 1, 0) + 0.6, 5.0)
    height = 1.05 * n_strips + 1.5
    fig = Figure(figsize=(width, height), dpi=DPI)
    if not blocks:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no held-out reconstructions to show", ha="center", va="center")
        ax.set_axis_off()
    top = 1 - (1.0 if title or note else 0.6) / height
    outer = fig.add_gridspec(
        1,
        max(len(blocks), 1),
        wspace=0.08,
        left=0.3 / width,
        right=1 - 0.3 / width,
        bottom=0.45 / height,
        top=top,
    )
    for b, block in enumerate(blocks):
        inner = outer[b].subgridspec(n_strips, n_images, wspace=0.04, hspace=0.45)
        for s, (_, strip) in enumerate(block.iterrows()):
            for col, image in enumerate(strip["images"]):
                ax = fig.add_subplot(inner[s, col])
                ax.imshow(_as_display_image(image), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if strip["kind"] == "held out":
                    ax.spines[:].set_color("red")
                if col == 0:
                    ax.set_title(strip["label"], loc="left", fontsize=7, pad=2)
        pos = outer[b].get_position(fig)
        fig.text(
            (pos.x0 + pos.x1) / 2, top + 0.25 / height, condition_title(conditions[b], block["family"].iloc[0]).replace("\n", " "),
            ha="center", va="bottom", fontsize=10,
        )  # fmt: skip
    _footer(fig, not_drawn(drawn.left_out))
    _finish(
        fig, out_paths, title and f"{title}: held-out images and their reconstructions", note, layout=False
    )
    return fig


def _finish(fig: Figure, out_paths, title: str, note: str, layout: bool = True) -> None:
    if note:  # the data's note heads the figure, where it cannot cover a panel
        title = f"{title} [{note}]" if title else f"[{note}]"
    if title:
        fig.suptitle(title, fontsize=12)
    if layout:
        height, width = fig.get_figheight(), fig.get_figwidth()
        fig.subplots_adjust(
            left=0.8 / width, right=1 - 2.6 / width, bottom=0.75 / height, top=1 - 1.0 / height,
            wspace=0.3, hspace=0.55,
        )  # fmt: skip
    for path in out_paths:
        save_figure(fig, path)


FIGURES = ("disent_vs_nll", "dci_bars", "recon_panels")


def draw_iclr_figure(
    figure: str,
    runs: Sequence[dict],
    paths: Sequence[str | os.PathLike],
    out_paths: Sequence[str | os.PathLike],
    variant: str,
    title: str = "",
    note: str = "",
) -> Figure:
    """One of FIGURES for a dataset's runs; `paths` are their scores.json files (disent_vs_nll,
    dci_bars) or analysis.npz files (recon_panels), in the order of `runs`."""
    if figure == "disent_vs_nll":
        return plot_disent_vs_nll(nll_points(runs, read_all(paths), variant), out_paths, variant, title, note)
    if figure == "dci_bars":
        return plot_dci_bars(dci_bars(runs, read_all(paths), variant), out_paths, variant, title, note)
    if figure == "recon_panels":
        return plot_recon_panels(recon_panels(runs, [load_arrays(p) for p in paths]), out_paths, title, note)
    raise ValueError(f"unknown ICLR figure {figure!r}; allowed: {', '.join(FIGURES)}")
