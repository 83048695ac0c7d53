"""Per-run analysis in two steps, each asking the run's task what applies:

    scores, fitted = score_run(model, task, inputs, rng)            # reconstruction, excess, DCI, MIG, R², extras
    arrays = figure_arrays(model, task, inputs, fitted, rng, ...)   # what the per-run figures draw

`analyse_run` does both for the workflow and writes scores.json (with the run's provenance, so a
row of any table can be read alone) and analysis.npz.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from compgen.analysis.oracle import expected_test_arrays, fit_oracle, latent_factors, oracle_scores
from compgen.analysis.traversals import latent_traversals
from compgen.atomic import atomic_path, write_json
from compgen.conditions import load_split
from compgen.datasets.provenance import data_note
from compgen.datasets.store import check_dataset, read_provenance, read_rows
from compgen.grid import Grid
from compgen.losses import reconstruction_per_image, to_pixels
from compgen.metrics import representation
from compgen.metrics.excess import main_factor_scores, reconstruction_floor
from compgen.metrics.fit import fit_scores, kinds
from compgen.tasks import Task, get_task, load_trained

log = logging.getLogger(__name__)

# Sample sizes: `fast` for tests and demos, `paper` for the study.
PRESETS = {
    "fast": {"n_train": 2000, "n_test": 1000, "n_triplets": 256, "n_latent_plot": 2000, "n_traversal": 256},
    "paper": {
        "n_train": 10000,
        "n_test": 5000,
        "n_triplets": 4096,
        "n_latent_plot": 5000,
        "n_traversal": 2000,
    },
}
BATCH = 256


@dataclass
class AnalysisInputs:
    """The dataset and split a model is analysed on, and the sample sizes."""

    dataset_path: str
    grid: Grid
    train: np.ndarray
    test: np.ndarray
    recon: str
    sizes: dict
    seed: int = 0
    batch: int = BATCH
    # The model's config section (the composition's `command` draws its scoring triplets).
    model_cfg: dict = field(default_factory=dict)

    def images(self, indices: np.ndarray) -> torch.Tensor:
        """Images as float NCHW in [0, 1]."""
        return torch.from_numpy(read_rows(self.dataset_path, indices)).permute(0, 3, 1, 2).float().div_(255)

    def codes(self, indices: np.ndarray) -> torch.Tensor:
        """Standardised factor values: what a gt_decoder is fed and a supervised model predicts."""
        grid = self.grid
        return torch.as_tensor(grid.standardised(grid.values(grid.classes(indices))), dtype=torch.float32)


def sample(indices: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(indices, size=min(n, indices.size), replace=False))


@torch.no_grad()
def encode_score_floor(
    model, task: Task, inputs: AnalysisInputs, indices: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The task's latents, per-image reconstruction losses (NaN where it reconstructs nothing) and
    each image's reconstruction floor (compgen.metrics.excess), from one read of the images."""
    latents, losses, floors = [], [], []
    for start in range(0, indices.size, inputs.batch):
        chunk = indices[start : start + inputs.batch]
        x = inputs.images(chunk)
        z, logits = task.encode(model, x, inputs.codes(chunk))
        latents.append(z.numpy())
        losses.append(
            np.full(len(chunk), np.nan)
            if logits is None
            else reconstruction_per_image(logits, x, inputs.recon).numpy()
        )
        floors.append(reconstruction_floor(x, inputs.recon).numpy())
    return np.concatenate(latents), np.concatenate(losses), np.concatenate(floors)


def encode_and_score(
    model, task: Task, inputs: AnalysisInputs, indices: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The task's latents and per-image reconstruction losses (NaN where it reconstructs nothing)."""
    z, losses, _ = encode_score_floor(model, task, inputs, indices)
    return z, losses


@torch.no_grad()
def reconstruct(
    model, task: Task, inputs: AnalysisInputs, indices: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and reconstructions as uint8 NHWC; none for a task that reconstructs nothing."""
    to_uint8 = lambda t: (t.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)  # noqa: E731
    x = inputs.images(indices)
    _, logits = task.encode(model, x, inputs.codes(indices))
    if logits is None:
        return to_uint8(x[:0]), to_uint8(x[:0])
    return to_uint8(x), to_uint8(to_pixels(logits, inputs.recon))


def scored_factors(grid: Grid, train: np.ndarray, test: np.ndarray) -> list[int]:
    """Axes of the factors that take more than one value among the split's images (train and
    test together). A modifier such as MPI3D's `fix_hx` holds a factor constant: there is nothing
    to read out, and scoring it would give a readout R² of 1 from any latents."""
    indices = np.concatenate([np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)])
    classes = grid.classes(indices)
    return [k for k in range(classes.shape[1]) if classes.size and classes[:, k].min() < classes[:, k].max()]


def latent_scores(
    task: Task,
    grid: Grid,
    scored: list[int],
    z_train: np.ndarray,
    z_test: np.ndarray,
    classes_train: np.ndarray,
    classes_test: np.ndarray,
    seed: int = 0,
) -> tuple[dict, dict]:
    """DCI (standard, the NeurIPS code's and the ICLR code's), MIG, R² and the kind-aware fit of
    latents, over the `scored` factors only.

    Factors outside `scored` get NaN R² (r2_test, r2_train) and fit (fit_train: the
    chance-corrected readout of each factor by its kind, `fit_kinds`, on the training images;
    compgen.metrics.fit) and take no part in DCI or MIG; r2_test_mean is the mean over the
    scored factors. Returns the scores and what the figures
    reuse: each DCI variant's importances (latents x scored factors: `importance` standard,
    `importance_paper` the NeurIPS code's without its dummy columns, `importance_iclr`), the
    latent matched to each scored factor (standard DCI), and `scored` itself."""
    n_factors = len(grid.sizes)
    heldout = len(z_test) > 0
    z_all = np.concatenate([z_train, z_test])
    classes_all = np.concatenate([classes_train, classes_test])
    if not heldout:
        # An all-data reference: DCI's informativeness is measured in-sample, on training images.
        z_test, classes_test = z_train, classes_train
    v_train, v_test = grid.values(classes_train), grid.values(classes_test)
    if task.has_representation and scored:
        dci = representation.dci(z_train, v_train[:, scored], z_test, v_test[:, scored])
        # A stream of its own, so that the dummy targets leave the figure samples unchanged.
        paper = representation.dci_paper(z_train, v_train[:, scored], z_test, v_test[:, scored], seed=seed)
        iclr = representation.dci_iclr(z_train, v_train[:, scored], z_test, v_test[:, scored], seed=seed)
        r2 = task.r2_scores(
            grid,
            z_train,
            v_train,
            z_test,
            v_test,
            grid.standardised(v_train),
            grid.standardised(v_test),
            scored,
        )
        mig = representation.mig(z_all, classes_all[:, scored])
        fit = fit_scores(z_train, classes_train, grid, scored, seed)
    else:
        none = {"disentanglement": np.nan, "completeness": np.nan, "informativeness": np.nan}
        # Code unit k is factor k.
        dci = {**none, "importance": np.full((n_factors, len(scored)), np.nan), "matching": list(scored)}
        paper = iclr = none
        r2 = {"r2_test": [np.nan] * n_factors}
        mig = np.nan
        fit = {}
    # Whatever a task returns, a factor that does not vary in the split has no R².
    if not heldout:
        r2["r2_test"] = [np.nan] * n_factors
    is_scored = np.isin(np.arange(n_factors), scored)
    r2 = {key: np.where(is_scored, np.asarray(v, dtype=np.float64), np.nan) for key, v in r2.items()}
    r2_scored = r2["r2_test"][is_scored]
    train_scored = r2["r2_train"][is_scored] if "r2_train" in r2 else np.array([np.nan])
    scores = {
        "factors_scored": [grid.names[k] for k in scored],
        "dci_disentanglement": float(dci["disentanglement"]),
        "dci_completeness": float(dci["completeness"]),
        "dci_informativeness": float(dci["informativeness"]),
        "dci_paper_disentanglement": float(paper["disentanglement"]),
        "dci_paper_completeness": float(paper["completeness"]),
        "dci_paper_informativeness": float(paper["informativeness"]),
        "dci_iclr_disentanglement": float(iclr["disentanglement"]),
        "dci_iclr_completeness": float(iclr["completeness"]),
        "dci_iclr_informativeness": float(iclr["informativeness"]),
        "mig": float(mig),
        **{key: dict(zip(grid.names, map(float, values), strict=True)) for key, values in r2.items()},
        "r2_test_mean": float(np.nanmean(r2_scored)) if np.isfinite(r2_scored).any() else float("nan"),
        "r2_train_mean": float(np.nanmean(train_scored)) if np.isfinite(train_scored).any() else float("nan"),
        "fit_train": {name: float(fit.get(name, np.nan)) for name in grid.names},
        "fit_kinds": kinds(grid),
    }
    if task.has_representation and scored:
        by_variant = {
            "importance_paper": np.asarray(paper["importance"])[:, : len(scored)],
            "importance_iclr": np.asarray(iclr["importance"]),
        }
    else:
        by_variant = {"importance_paper": dci["importance"], "importance_iclr": dci["importance"]}
    fitted = {
        "importance": dci["importance"],
        **by_variant,
        "matching": dci["matching"],
        "scored": list(scored),
    }
    return scores, fitted


def score_run(model, task: Task, inputs: AnalysisInputs, rng: np.random.Generator) -> tuple[dict, dict]:
    """Scores of a trained model on samples of its training and held-out images, and what the
    figures reuse: DCI importances, the latent matched to each scored factor, the training sample,
    the latent oracle (None for a task without a representation; see `compgen.analysis.oracle`)."""
    grid = inputs.grid
    train_s, test_s = (
        sample(inputs.train, inputs.sizes["n_train"], rng),
        sample(inputs.test, inputs.sizes["n_test"], rng),
    )
    z_train, loss_train, floor_train = encode_score_floor(model, task, inputs, train_s)
    # An all-data reference has no held-out images.
    z_test, loss_test, floor_test = (
        encode_score_floor(model, task, inputs, test_s)
        if test_s.size
        else (z_train[:0], loss_train[:0], floor_train[:0])
    )
    scored = scored_factors(grid, inputs.train, inputs.test)
    latent, fitted = latent_scores(
        task, grid, scored, z_train, z_test, grid.classes(train_s), grid.classes(test_s), inputs.seed
    )
    scores = {
        "samples": {"train": int(train_s.size), "test": int(test_s.size)},
        # False for an all-data reference: every *_test score is then NaN (not applicable).
        "heldout": bool(inputs.test.size),
        "recon_train": float(loss_train.mean()),
        "recon_test": float(loss_test.mean()) if loss_test.size else float("nan"),
        **latent,
    }
    oracle = None
    if task.has_representation and train_s.size:
        matched = latent_factors(fitted["matching"], fitted["scored"], z_train.shape[1])
        oracle = fit_oracle(z_train, grid.classes(train_s), matched, grid.sizes)
    scores.update(oracle_scores(model, task, inputs, oracle, train_s, z_train, test_s, z_test))
    # recon_excess_train/test, gap and excess_delta of these single images, and the task's own
    # target's under suffixed keys (composition: *_composed; compgen.metrics.excess).
    scores.update(task.excess_scores(model, inputs, loss_train - floor_train, loss_test - floor_test))
    scores.update(task.extra_scores(model, inputs))
    return scores, {**fitted, "train_sample": train_s, "oracle": oracle}


def factor_arrays(grid: Grid, main_factors, fitted: dict) -> dict[str, np.ndarray]:
    """The Hinton matrices over the scored factors (one per DCI variant; `analysis.dci` picks the
    one drawn), and the latents matched to the condition's two factors (latent 0 and 1 for a
    factor that is not scored)."""
    scored = list(fitted["scored"])
    factor_i, factor_j = (grid.axis(f) for f in main_factors)
    latent_of = {k: int(latent) for k, latent in zip(scored, fitted["matching"], strict=True)}
    return {
        "importance": np.asarray(fitted["importance"], dtype=np.float64),
        **{
            key: np.asarray(fitted.get(key, fitted["importance"]), dtype=np.float64)
            for key in ("importance_paper", "importance_iclr")
        },
        "importance_factors": np.asarray([grid.names[k] for k in scored]),
        "factor_names": np.asarray(grid.names),
        "factor_axes": np.asarray([factor_i, factor_j]),
        "latent_axes": np.asarray([latent_of.get(factor_i, 0), latent_of.get(factor_j, 1)]),
    }


# Reconstructions analysis.npz keeps of training and of held-out images: a figure shows the first
# analysis.n_images of them (at most this many, the schema's maximum), so how many a figure shows
# is the figure's setting alone and never reruns the analysis.
RECON_KEPT = 32


def recon_sample(indices: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded sample of at most n rows in random order: its first k rows are a sample of k."""
    return rng.choice(indices, size=min(n, indices.size), replace=False)


def figure_arrays(
    model,
    task: Task,
    inputs: AnalysisInputs,
    main_factors,
    fitted: dict,
    rng: np.random.Generator,
    n_recon: int = RECON_KEPT,
) -> dict[str, np.ndarray]:
    """What the per-run figures need, so that drawing never loads the model again."""
    grid = inputs.grid
    plot_idx = sample(np.concatenate([inputs.train, inputs.test]), inputs.sizes["n_latent_plot"], rng)
    z_plot, _ = encode_and_score(model, task, inputs, plot_idx)
    train_in, train_out = reconstruct(model, task, inputs, recon_sample(inputs.train, n_recon, rng))
    test_in, test_out = reconstruct(model, task, inputs, recon_sample(inputs.test, n_recon, rng))
    arrays = {
        "data_note": np.asarray(data_note(read_provenance(inputs.dataset_path))),
        **factor_arrays(grid, main_factors, fitted),
        "latents": z_plot,
        "latent_classes": grid.classes(plot_idx),
        "latent_is_train": np.isin(plot_idx, inputs.train),
        "recon_train_inputs": train_in,
        "recon_train_outputs": train_out,
        "recon_test_inputs": test_in,
        "recon_test_outputs": test_out,
    }
    # The expected test distribution: sampled from a stream of its own, `rng` is left as it was.
    arrays.update(
        expected_test_arrays(
            fitted.get("oracle"),
            grid.classes(inputs.test),
            arrays["factor_axes"],
            arrays["latent_axes"],
            inputs.seed,
        )
    )
    if "traversals" in task.figures:
        traversal_idx = fitted["train_sample"][: inputs.sizes["n_traversal"]]
        arrays.update(latent_traversals(model, inputs.images(traversal_idx), inputs.recon))
    return arrays


def provenance(run_info: dict) -> dict:
    """What defines a run, from its run.json: resolved model and training settings, library
    versions, data source, device."""
    run = run_info["run"]
    return {
        "model": run["model"],
        "training": run["training"],
        "versions": run_info["versions"],
        "data": {k: v for k, v in run_info["data"].items() if k not in ("path", "split")},
        "device": run_info["device_name"],
    }


# How many of the last epochs' held-out gap probes the claims show beside a verdict.
GAP_PROBE_TAIL = 3


def training_end(run_info: dict) -> dict:
    """How training ended, from run.json, for the claims' convergence check: `stopped`
    (converged: by early stopping; budget: at its epochs), `stopped_epoch`, `best_epoch` and the
    last epochs' held-out gap probes (training.fit_probe)."""
    return {
        "stopped": run_info.get("stopped", "budget"),
        "stopped_epoch": int(run_info.get("stopped_epoch", run_info.get("epochs", 0))),
        "best_epoch": run_info.get("best_epoch"),
        "probe_gap_tail": [float(g) for g in (run_info.get("probe_gap") or [])[-GAP_PROBE_TAIL:]],
    }


def analyse_run(
    dataset_path,
    split_path,
    split_summary_path,
    model_path,
    scores_path,
    arrays_path,
    run_info_path=None,
    preset: str = "paper",
    seed: int = 0,
    n_recon: int = RECON_KEPT,
) -> dict:
    started = time.perf_counter()
    grid = check_dataset(dataset_path)
    with open(split_summary_path) as fh:
        split_info = json.load(fh)
    train, test = load_split(split_path, grid, split_info)
    model, payload = load_trained(model_path)
    task = get_task(payload["model_config"]["task"])
    inputs = AnalysisInputs(
        str(dataset_path),
        grid,
        train,
        test,
        payload["model_config"]["recon"],
        PRESETS[preset],
        seed,
        model_cfg=payload["model_config"],
    )
    rng = np.random.default_rng(seed)

    measured, fitted = score_run(model, task, inputs, rng)
    scores = {"run_id": payload["run"]["run_id"], "preset": preset, **measured}
    # The condition's two factors: the training-fit check and the R² drop of the paper's claims.
    scores.update(main_factor_scores(measured, split_info["main_factors"]))
    if run_info_path is not None:
        with open(run_info_path) as fh:
            run_info = json.load(fh)
        scores["provenance"] = provenance(run_info)
        scores["training"] = training_end(run_info)
    arrays = figure_arrays(model, task, inputs, split_info["main_factors"], fitted, rng, n_recon)
    with atomic_path(arrays_path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    write_json(scores_path, scores)
    log.info("analysed %s in %.1f s", scores["run_id"], time.perf_counter() - started)
    return scores
