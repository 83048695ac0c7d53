"""Per-run analysis: encode train and held-out images, score them, keep what the figures need.

The supervised controls differ: a `supervised` model's "latents" are its predicted standardised
factors (no reconstruction; R² is the regression's own), and a `gt_decoder` has no encoder (its
reconstructions are rendered from the standardised factors; latent metrics are NaN).
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import torch

from compgen.analysis import metrics
from compgen.analysis.traversals import latent_traversals
from compgen.atomic import atomic_path, write_json
from compgen.conditions import load_split
from compgen.datasets.store import check_dataset, read_rows
from compgen.grid import Grid
from compgen.losses import reconstruction_per_image
from compgen.models import load_trained
from compgen.training.batches import heldout_triplets

log = logging.getLogger(__name__)

# Sample sizes: `fast` for tests and demos, `paper` for the study.
PRESETS = {
    "fast": {"n_train": 2000, "n_test": 1000, "n_triplets": 256, "n_latent_plot": 2000, "n_traversal": 256},
    "paper": {"n_train": 10000, "n_test": 5000, "n_triplets": 4096, "n_latent_plot": 5000, "n_traversal": 2000},
}
BATCH = 256


def _sample(indices: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(indices, size=min(n, indices.size), replace=False))


def _images(dataset_path, indices: np.ndarray) -> torch.Tensor:
    """Images as float NCHW in [0, 1]."""
    return torch.from_numpy(read_rows(dataset_path, indices)).permute(0, 3, 1, 2).float().div_(255)


def _factor_codes(grid: Grid, indices: np.ndarray) -> torch.Tensor:
    """Standardised factor values: what a gt_decoder is fed and a supervised model predicts."""
    return torch.as_tensor(grid.standardised(grid.values(grid.classes(indices))), dtype=torch.float32)


@torch.no_grad()
def encode_and_score(model, dataset_path, indices: np.ndarray, recon_kind: str, task: str = "unsupervised",
                     grid: Grid | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Latent means (supervised: predictions; gt_decoder: its standardised factor inputs) and
    per-image reconstruction losses (NaN for supervised), in batches."""
    means, losses = [], []
    for start in range(0, indices.size, BATCH):
        chunk = indices[start : start + BATCH]
        x = _images(dataset_path, chunk)
        if task == "supervised":
            means.append(model(x).numpy())
            losses.append(np.full(len(chunk), np.nan))
        elif task == "gt_decoder":
            codes = _factor_codes(grid, chunk)
            means.append(codes.numpy())
            losses.append(reconstruction_per_image(model(codes), x, recon_kind).numpy())
        else:
            mu, _ = model.encode(x)
            means.append(mu.numpy())
            losses.append(reconstruction_per_image(model.decode(mu), x, recon_kind).numpy())
    return np.concatenate(means), np.concatenate(losses)


@torch.no_grad()
def _reconstruct(model, dataset_path, indices: np.ndarray, task: str = "unsupervised",
                 grid: Grid | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and reconstructions as uint8; a supervised model reconstructs nothing (no images)."""
    to_uint8 = lambda t: (t.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)  # noqa: E731
    x = _images(dataset_path, indices)
    if task == "supervised":
        return to_uint8(x[:0]), to_uint8(x[:0])
    logits = model(_factor_codes(grid, indices)) if task == "gt_decoder" else model.decode(model.encode(x)[0])
    return to_uint8(x), to_uint8(torch.sigmoid(logits))


def regression_r2(predicted: np.ndarray, grid: Grid, indices: np.ndarray) -> list[float]:
    """Per-factor R² of a supervised model's own predictions of the standardised factors, against
    each factor's variance over the full grid; NaN for single-valued factors."""
    truth = _factor_codes(grid, indices).numpy().astype(np.float64)
    _, full_variance = metrics.grid_value_stats([f.values for f in grid.factors])
    spans = np.array([np.ptp(np.asarray(f.values, dtype=np.float64)) for f in grid.factors])
    variance = np.where(spans > 0, np.asarray(full_variance) / np.where(spans > 0, spans, 1.0) ** 2, 0.0)
    mse = np.mean((predicted - truth) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return [float(x) for x in np.where(variance > 0, 1.0 - mse / variance, np.nan)]


@torch.no_grad()
def heldout_composition_loss(model, dataset_path, grid: Grid, train, test, recon_kind, n, seed) -> float:
    """Mean reconstruction loss of composed images whose target is a held-out combination."""
    generator = torch.Generator().manual_seed(seed)
    ref, cmd, target, d = heldout_triplets(
        grid.sizes, grid.classes(train), grid.classes(test), n, generator
    )
    losses = []
    for start in range(0, len(target), BATCH):
        sl = slice(start, start + BATCH)
        action = torch.nn.functional.one_hot(torch.as_tensor(d[sl]), len(grid.sizes)).float()
        out = model.compose(
            _images(dataset_path, np.asarray(ref[sl])), _images(dataset_path, np.asarray(cmd[sl])), action
        )
        losses.append(reconstruction_per_image(out["recon_target"], _images(dataset_path, np.asarray(target[sl])), recon_kind))
    return float(torch.cat(losses).mean())


def analyse_run(dataset_path, split_path, split_summary_path, model_path, scores_path, arrays_path,
                preset: str = "paper", n_images: int = 8, seed: int = 0) -> dict:
    started = time.perf_counter()
    sizes = PRESETS[preset]
    rng = np.random.default_rng(seed)
    grid = check_dataset(dataset_path)
    with open(split_summary_path) as fh:
        split_info = json.load(fh)
    train, test = load_split(split_path, grid, split_info)
    model, payload = load_trained(model_path)
    model.eval()
    cfg = payload["model_config"]
    recon_kind = cfg.get("recon", "bce")
    task = cfg.get("task", "unsupervised")

    train_s, test_s = _sample(train, sizes["n_train"], rng), _sample(test, sizes["n_test"], rng)
    z_train, loss_train = encode_and_score(model, dataset_path, train_s, recon_kind, task, grid)
    z_test, loss_test = encode_and_score(model, dataset_path, test_s, recon_kind, task, grid)
    v_train = grid.values(grid.classes(train_s))
    v_test = grid.values(grid.classes(test_s))
    varying = [k for k, s in enumerate(grid.sizes) if s > 1]

    if task == "gt_decoder":
        dci = {"disentanglement": np.nan, "completeness": np.nan, "informativeness": np.nan,
               "importance": np.full((len(grid.sizes), len(varying)), np.nan),
               "matching": varying}  # its code unit k is factor k
        r2 = [np.nan] * len(grid.sizes)
        mig = np.nan
    else:
        dci = metrics.dci(z_train, v_train[:, varying], z_test, v_test[:, varying])
        if task == "supervised":
            r2 = regression_r2(z_test, grid, test_s)
        else:
            value_ranges, full_variance = metrics.grid_value_stats([f.values for f in grid.factors])
            r2 = metrics.readout_r2(z_train, v_train, z_test, v_test, value_ranges, full_variance)
        mig = metrics.mig(np.concatenate([z_train, z_test]), grid.classes(np.concatenate([train_s, test_s])))
    scores = {
        "run_id": payload["run"]["run_id"],
        "preset": preset,
        "samples": {"train": int(train_s.size), "test": int(test_s.size)},
        "recon_train": float(loss_train.mean()),
        "recon_test": float(loss_test.mean()),
        "dci_disentanglement": float(dci["disentanglement"]),
        "dci_completeness": float(dci["completeness"]),
        "dci_informativeness": float(dci["informativeness"]),
        "mig": float(mig),
        "r2_test": {name: float(v) for name, v in zip(grid.names, r2)},
        "r2_test_mean": float(np.nanmean(r2)) if np.isfinite(r2).any() else float("nan"),  # single-valued: no R²
    }
    if task == "supervised":
        scores["r2_train"] = dict(zip(grid.names, regression_r2(z_train, grid, train_s)))
    if cfg["task"] == "composition":
        scores["composition_loss_test"] = heldout_composition_loss(
            model, dataset_path, grid, train, test, recon_kind, sizes["n_triplets"], seed
        )

    # What the figures need, so drawing never has to load the model again.
    factor_i, factor_j = (grid.axis(f) for f in split_info["main_factors"])
    matching = np.asarray(dci["matching"])  # latent per (varying) factor
    latent_of = {k: int(matching[varying.index(k)]) for k in varying}
    plot_idx = _sample(np.concatenate([train, test]), sizes["n_latent_plot"], rng)
    z_plot, _ = encode_and_score(model, dataset_path, plot_idx, recon_kind, task, grid)
    train_in, train_out = _reconstruct(model, dataset_path, _sample(train, n_images, rng), task, grid)
    test_in, test_out = _reconstruct(model, dataset_path, _sample(test, n_images, rng), task, grid)
    traversals = {}
    if task in ("unsupervised", "composition"):
        traversals = latent_traversals(model, _images(dataset_path, train_s[: sizes["n_traversal"]]))
    with atomic_path(arrays_path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                importance=np.asarray(dci["importance"], dtype=np.float64),
                importance_factors=np.asarray([grid.names[k] for k in varying]),
                latents=z_plot,
                latent_classes=grid.classes(plot_idx),
                latent_is_train=np.isin(plot_idx, train),
                factor_names=np.asarray(grid.names),
                factor_axes=np.asarray([factor_i, factor_j]),
                latent_axes=np.asarray([latent_of.get(factor_i, 0), latent_of.get(factor_j, 1)]),
                recon_train_inputs=train_in,
                recon_train_outputs=train_out,
                recon_test_inputs=test_in,
                recon_test_outputs=test_out,
                **traversals,
            )
    write_json(scores_path, scores)
    log.info("analysed %s in %.1f s", scores["run_id"], time.perf_counter() - started)
    return scores
