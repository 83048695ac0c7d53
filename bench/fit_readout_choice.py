"""Which readout should the training-fit check use? An MLP, k-nearest neighbours, boosted trees.

On rows drawn from the 3DShapes grid (circular hues, a categorical shape, an ordinal scale), for
latent codes whose answer is known, each readout's chance-corrected fit (compgen.metrics.fit) of
floor_hue, shape and scale: its mean and standard deviation over seeds (of the halves, and of any
initialisation) and its median time per factor. Codes:
  - random: 10 N(0, 1) latents, no information (fit should be 0);
  - exact: (cos, sin) of each hue, the scale, the orientation, the shape's class in a shuffled
    order as one latent, and one N(0, 1) latent (fit should be 1);
  - noisy: the exact code standardised, plus N(0, 0.5²) on every latent;
  - rotated: the exact code standardised and turned by a random rotation, an entangled code
    that holds every factor just as well (fit should be 1);
  - dead: the exact code with its N(0, 1) latent replaced by five N(0, 0.01²) latents, as
    collapsed VAE units (fit should stay 1).
docs/fit_check.md has the results and the choice.

    OMP_NUM_THREADS=1 python bench/fit_readout_choice.py [--seeds 5] [--n 200 2000 10000]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from compgen.datasets import dataset_grid
from compgen.metrics.fit import fit_scores, mlp_readout

FACTORS = ("floor_hue", "shape", "scale")


def knn(k: int):
    def readout(target, n_fit, seed):
        model = KNeighborsClassifier if target == "classifier" else KNeighborsRegressor
        return make_pipeline(StandardScaler(), model(max(1, min(k, n_fit))))

    return readout


def mlp_adam(target, n_fit, seed):
    """compgen's MLP trained by Adam with early stopping on a tenth of the rows instead of L-BFGS
    with a penalty; targets standardised (an unscaled target overfits noise)."""
    kwargs = dict(hidden_layer_sizes=(64,), max_iter=500, early_stopping=True, random_state=seed)
    if target == "classifier":
        return make_pipeline(StandardScaler(), MLPClassifier(**kwargs))
    return make_pipeline(
        StandardScaler(), TransformedTargetRegressor(MLPRegressor(**kwargs), transformer=StandardScaler())
    )


class _Columns:
    """One estimator per target column, for a 1-d target too (MultiOutputRegressor wants 2-d)."""

    def __init__(self, make):
        self.make = make

    def fit(self, x, y):
        self.vector = np.ndim(y) == 1
        self.model = MultiOutputRegressor(self.make()).fit(x, np.reshape(y, (len(y), -1)))
        return self

    def predict(self, x):
        out = self.model.predict(x)
        return out[:, 0] if self.vector else out


def hgb(target, n_fit, seed):
    """Histogram gradient-boosted trees, early stopping on a tenth of the rows."""
    kwargs = dict(early_stopping=True, random_state=seed)
    if target == "classifier":
        return HistGradientBoostingClassifier(**kwargs)
    return _Columns(lambda: HistGradientBoostingRegressor(**kwargs))


READOUTS = {
    "mlp": mlp_readout,  # compgen.metrics.fit's readout
    "mlp_adam": mlp_adam,
    "knn5": knn(5),
    "knn10": knn(10),
    "knn20": knn(20),
    "knn50": knn(50),
    "hgb": hgb,
}


def codes(grid, classes, rng) -> dict[str, np.ndarray]:
    values = grid.values(classes)
    columns = []
    for k, f in enumerate(grid.factors):
        if f.kind == "circular":
            angle = 2 * np.pi * values[:, k] / f.period
            columns += [np.cos(angle), np.sin(angle)]
        elif f.kind == "categorical":
            columns.append(rng.permutation(f.size)[classes[:, k]].astype(np.float64))
        else:
            columns.append(values[:, k])
    exact = np.column_stack(columns)  # 6 hue + scale + shape + orientation = 9
    exact = np.column_stack([exact, rng.standard_normal(len(classes))])  # a 10th, unused latent
    standard = (exact - exact.mean(0)) / exact.std(0)
    dead = np.column_stack([exact[:, :9], 0.01 * rng.standard_normal((len(classes), 5))])
    rotation, _ = np.linalg.qr(rng.standard_normal((standard.shape[1],) * 2))
    return {
        "random": rng.standard_normal((len(classes), 10)),
        "exact": exact,
        "noisy": standard + 0.5 * rng.standard_normal(standard.shape),
        "dead": dead,
        "rotated": standard @ rotation,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n", type=int, nargs="+", default=[200, 2000, 10000])
    parser.add_argument("--readouts", nargs="+", default=list(READOUTS))
    parser.add_argument("--codes", nargs="+", default=None, help="default: all")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    warnings.simplefilter("ignore", DataConversionWarning)
    grid = dataset_grid("shapes3d")
    axes = [grid.axis(f) for f in FACTORS]
    print("rows | code | readout | " + " | ".join(f"{f} mean ± sd" for f in FACTORS) + " | s per factor")
    for n in args.n:
        rng = np.random.default_rng(n)
        classes = grid.classes(rng.choice(grid.n, size=n, replace=False))
        for code_name, z in codes(grid, classes, rng).items():
            if args.codes and code_name not in args.codes:
                continue
            for name in args.readouts:
                found, seconds = [], []
                for seed in range(args.seeds):
                    start = time.perf_counter()
                    found.append(fit_scores(z, classes, grid, axes, seed=seed, readout=READOUTS[name]))
                    seconds.append((time.perf_counter() - start) / len(axes))
                cells = []
                for f in FACTORS:
                    v = np.array([r[f] for r in found])
                    cells.append(f"{v.mean():+.3f} ± {v.std(ddof=1):.3f}")
                print(f"{n} | {code_name} | {name} | " + " | ".join(cells) + f" | {np.median(seconds):.3f}")


if __name__ == "__main__":
    main()
