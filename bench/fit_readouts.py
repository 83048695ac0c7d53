"""Did a trained model learn the factors its claims' fit check reads? One JSON object per run.

The claims' fit check (compgen.claims) is the kind-aware, chance-corrected readout of
compgen.metrics.fit. This script sets beside it, for the condition's two factors on the same kind
of sample (training images, latent means at evaluation):
  - `fit`: the fit check's own value (compgen.metrics.fit.fit_scores, seed `--seed`);
  - `linear_r2`: a linear readout's R² of the value against the training mean
    (compgen.metrics.representation.readout_r2, in-sample), what the check was before factors had kinds;
  - `knn_accuracy`: 10-nearest-neighbour accuracy of the factor's classes (5-fold), and `chance`,
    the share of the commonest class: is the factor in the latents at all, linearly or not?
  - `circle_r2` (factors whose values are hues on the colour wheel): R² of the linear readout of
    (cos, sin) of the hue angle, mean over the two, i.e. the readout of a circular factor;
  - `perfect_circle_linear_r2`: `linear_r2` of a representation that is the hue circle itself,
    exactly: the most a faithful circular code can score on a linear readout of the value.

    python bench/fit_readouts.py results/runs/shapes3d/fhue2whue/vae_fixint/seed0 [...] [--n 4000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from compgen.analysis.evaluate import AnalysisInputs, encode_and_score
from compgen.conditions import load_split
from compgen.datasets.store import check_dataset
from compgen.metrics import representation
from compgen.metrics.fit import fit_scores
from compgen.tasks import get_task, load_trained

HUE_FACTORS = ("floor_hue", "wall_hue", "object_hue")


def perfect_circle_linear_r2(values: np.ndarray) -> float:
    """The fit check's R² of hue values from (cos, sin) of their angle: a perfect circular code."""
    angle = 2 * np.pi * values
    circle = np.c_[np.cos(angle), np.sin(angle)]
    return float(LinearRegression().fit(circle, values).score(circle, values))


def circle_r2(z: np.ndarray, values: np.ndarray) -> float:
    angle = 2 * np.pi * values
    target = np.c_[np.cos(angle), np.sin(angle)]
    return float(np.mean([LinearRegression().fit(z, t).score(z, t) for t in target.T]))


def readouts(run_dir: Path, n: int, seed: int) -> dict:
    parts = run_dir.resolve().parts
    dataset, condition = parts[-4], parts[-3]
    results = run_dir.resolve().parents[3].parent
    data_path = results / "data" / f"{dataset}.h5"
    grid = check_dataset(data_path)
    train, _ = load_split(results / "splits" / dataset / f"{condition}.npz", grid)
    split_info = json.loads((results / "splits" / dataset / f"{condition}.json").read_text())
    rows = np.sort(np.random.default_rng(seed).choice(train, size=min(n, len(train)), replace=False))
    model, payload = load_trained(run_dir / "model.pt")
    task = get_task(payload["model_config"]["task"])
    inputs = AnalysisInputs(
        str(data_path), grid, train, np.zeros(0, np.int64), payload["model_config"]["recon"], {}
    )
    z, _ = encode_and_score(model, task, inputs, rows)
    classes = grid.classes(rows)
    values = grid.values(classes)
    linear = representation.readout_r2(z, values, z, values)
    fit = fit_scores(z, classes, grid, [grid.axis(name) for name in split_info["main_factors"]], seed)
    out = {"run": "/".join(parts[-4:]), "n_images": int(rows.size), "factors": {}}
    for name in split_info["main_factors"]:
        k = grid.axis(name)
        y = classes[:, k]
        entry = {
            "kind": grid.factor(name).kind,
            "fit": round(float(fit[name]), 4),
            "linear_r2": round(float(linear[k]), 4),
            "knn_accuracy": round(float(cross_val_score(KNeighborsClassifier(10), z, y, cv=5).mean()), 4),
            "chance": round(float(np.bincount(y).max() / y.size), 4),
        }
        if name in HUE_FACTORS:
            entry["circle_r2"] = round(circle_r2(z, values[:, k]), 4)
            entry["perfect_circle_linear_r2"] = round(
                perfect_circle_linear_r2(np.asarray(grid.factor(name).values)), 4
            )
        out["factors"][name] = entry
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs", nargs="+", type=Path, help="run folders: results/runs/<dataset>/<condition>/<model>/seed<k>"
    )
    parser.add_argument("--n", type=int, default=4000, help="training images per run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for run_dir in args.runs:
        print(json.dumps(readouts(run_dir, args.n, args.seed)))


if __name__ == "__main__":
    main()
