"""The ICLR 2021 paper's figures of one dataset: what they draw, from the runs' scores and arrays.

Montero et al. (ICLR 2021) analysed each dataset's models together (the original's
scripts/analysis/disent.py, laid out in notebooks/postproc.ipynb): per condition, the
disentanglement D of each model against its reconstruction NLL on training and on held-out
images, with the ground-truth decoder placed at D = 1 (it is fed the factors themselves); D and C
bars per model; and held-out images with every model's reconstruction, the ground-truth decoder
beside the VAEs. This module computes what each figure draws, as tables
(`compgen.summary.iclr_plots` draws them):

- `nll_points`: per condition and model, D and the training and held-out NLL (`recon_train`,
  `recon_test`); ground-truth decoders (task `gt_decoder`) at D = 1;
- `dci_bars`: per condition and model, D and C; a model without an encoder has none and is named;
- `recon_panels`: per condition, a strip of held-out images and each model's reconstruction of them.

D and C are the study's DCI variant (config `analysis.dci`, `compgen.analysis.dci_choice`).
Scores are means over seeds; the reconstructions are each model's first seed. Conditions are
ordered as the paper's panels: recombination to element, to range, extrapolation, then any other.
Light to import (numpy, pandas): the workflow reads FIGURES and FIGURE_TASKS while planning.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from compgen.analysis.dci_choice import dci_key
from compgen.scores import read_scores

# The ground-truth decoder is fed the factors: the original puts it at D = 1
# (disent.py, disentanglement_vs_nll: np.concatenate([overall_disent.values, [1.0]])).
GT_DECODER_TASK = "gt_decoder"
GT_DECODER_D = 1.0
# The models the original analysed together: the end-to-end VAEs and the ground-truth decoder
# (a study's other tasks, e.g. the composition models, are left to their own figures).
FIGURE_TASKS = ("unsupervised", GT_DECODER_TASK)
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
DATA = ("train", "test")  # recon_train, recon_test
RECON_IMAGES = 4
FIGURES = ("disent_vs_nll", "dci_bars", "recon_panels")


@dataclass
class Drawn:
    """What a figure draws (`table`), what it leaves out with the reason (`left_out`), its
    conditions in panel order and every model's label in the study's order (drawn or not, so that a
    model has one colour in every figure of a dataset)."""

    table: pd.DataFrame
    left_out: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


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


def _labels(runs: Sequence[dict]) -> list[str]:
    return list(dict.fromkeys(r["label"] for r in runs))


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
        points = {data: _mean([s.get(f"recon_{data}", np.nan) for _, s in members]) for data in DATA}
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
    return Drawn(pd.DataFrame(rows, columns=columns), left_out, condition_order(runs), _labels(runs))


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
    return Drawn(pd.DataFrame(rows, columns=columns), left_out, condition_order(runs), _labels(runs))


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
    return Drawn(pd.DataFrame(rows, columns=columns), left_out, order, _labels(runs))


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
