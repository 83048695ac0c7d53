"""What the generic training and analysis code asks of a task.

A task decides what a model is (`build_model`), how it learns (the objective, the batches, the
loss of a batch, the validation score that selects the best epoch), what analysis reads off it
(`encode`, the R² it is scored by, extra scores) and which per-run figures apply. Engine, run,
evaluate and study only ever call these methods; a new task is one module plus `register`.

Planning a study reads only a task's class attributes and `check_model`, so task modules import
torch, models and metrics inside the methods that use them: the workflow plans without loading them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from compgen.grid import Grid

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compgen.losses import Objective


@dataclass
class TrainingData:
    """The training subset of one run, on its device.

    `images(rows)` gives float images of training-subset rows; `factors[rows]` their standardised
    factor values; `recon` the reconstruction loss; `classes` their factor classes; `fit` and `val`
    (sorted numpy rows) the parts that are trained on and that select the best epoch (with
    `training.validation: train_sample`, `fit` is every row and `val` a sample of them);
    `rebalance` the factor whose values batches make equally frequent (None: uniform rows);
    `model_cfg` the run's model section (task settings such as the composition's `command`).
    """

    grid: Grid
    train_flat: np.ndarray
    classes: np.ndarray
    fit: np.ndarray
    val: np.ndarray
    images: Callable[[torch.Tensor], torch.Tensor]
    factors: torch.Tensor
    recon: str
    device: torch.device
    seed: int
    rebalance: str | None = None
    model_cfg: dict = field(default_factory=dict)

    @property
    def n_factors(self) -> int:
        return len(self.grid.sizes)

    @property
    def fit_rows(self) -> torch.Tensor:
        import torch

        return torch.as_tensor(self.fit, device=self.device)

    @property
    def fit_weights(self) -> torch.Tensor | None:
        """Sampling weights of the fitted rows (CPU float64), 1 / count of the row's class of the
        `rebalance` factor among fitted rows, as the original's `ImbalancedSampler`; None: uniform."""
        if self.rebalance is None:
            return None
        from compgen.batches import balanced_weights

        return balanced_weights(self.classes[self.fit, self.grid.axis(self.rebalance)])


class Task(abc.ABC):
    name: ClassVar[str]
    # The model's name in tables and figures when its config gives no label and the task trains no
    # VAE-family objective (with one, the objective's: "β-VAE (β=8)"); None: the task's name.
    title: ClassVar[str | None] = None
    # Architecture keys of the model config that this task's model is built from.
    parts: ClassVar[tuple[str, ...]] = ("encoder", "decoder")
    # Trained with a VAE-family objective (the `loss` key applies).
    uses_objective: ClassVar[bool] = True
    # Latent metrics (DCI, MIG, readout R²) apply: the model has a representation to read.
    has_representation: ClassVar[bool] = True
    # The training part the validation score mirrors; the best epoch minimises it.
    selection_part: ClassVar[str] = "recon"
    figures: ClassVar[tuple[str, ...]] = ("curves", "reconstructions", "hinton", "latents", "traversals")

    # -- configuration --------------------------------------------------------------------
    def check_model(self, model_cfg: dict, grid: Grid) -> tuple[str, str] | None:
        """(the model key at fault, what is wrong in one sentence) for a config that does not suit
        this grid; None if it does."""
        return None

    def label(self, model_cfg: dict) -> str:
        """The model's name in tables and figures when the config gives none: the loss's label
        ("β-VAE (β=8)") for a task trained with a VAE-family objective, else `title` (or the
        task's name)."""
        if not self.uses_objective:
            return self.title or self.name
        from compgen.losses import loss_label

        return loss_label(model_cfg)

    @abc.abstractmethod
    def build_model(self, model_cfg: dict, image_shape: tuple[int, int, int], n_factors: int) -> nn.Module:
        """A freshly initialised model for images of (H, W, C)."""

    def selection_part_for(self, model_cfg: dict) -> str:
        """The part the best epoch is selected on for this model (`val_<part>` in train_log.csv);
        by default `selection_part`."""
        return self.selection_part

    # -- training -------------------------------------------------------------------------
    def initialise(self, model: nn.Module, run: dict) -> None:  # noqa: B027 (an optional hook)
        """Adjust a freshly built model before training (e.g. load and freeze part of it from
        another run); by default nothing."""

    def objective(self, model_cfg: dict, n_fit: int) -> Objective | None:
        from compgen.losses import build_objective

        return build_objective(model_cfg, n_train=n_fit) if self.uses_objective else None

    def epoch_batches(self, data: TrainingData, batch_size: int, steps: int) -> Callable[[int], Iterator]:
        """Epoch e: a seeded permutation of the fitted rows, cut into `steps` batches; with
        `rebalance`, as many rows drawn with replacement by `data.fit_weights` instead."""
        import torch

        from compgen.batches import SHUFFLE_STREAM, derived_seed

        fit_rows, n, seed, weights = data.fit_rows, data.fit.size, data.seed, data.fit_weights

        def batches(epoch: int) -> Iterator[torch.Tensor]:
            g = torch.Generator().manual_seed(derived_seed(seed, epoch, SHUFFLE_STREAM))
            if weights is None:
                order = torch.randperm(n, generator=g)
            else:
                order = torch.multinomial(weights, n, replacement=True, generator=g)
            order = order.to(fit_rows.device)
            for i in range(steps):
                yield fit_rows[order[i * batch_size : (i + 1) * batch_size]]

        return batches

    def validation_set(self, data: TrainingData):
        """What `validation_loss` is evaluated on, in slices: by default the validation rows."""
        import torch

        return torch.as_tensor(data.val, device=data.device)

    @abc.abstractmethod
    def training_loss(
        self, model, batch, data: TrainingData, objective: Objective | None, step: int
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Loss parts of one batch (with "loss", the one minimised, and `selection_part`) and the
        latent samples the objective trains its own parameters on after the step (or None)."""

    @abc.abstractmethod
    def validation_loss(self, model, batch, data: TrainingData, objective: Objective | None) -> torch.Tensor:
        """Per-item selection score of a slice of the validation set, at evaluation (z = mu)."""

    # -- analysis -------------------------------------------------------------------------
    @abc.abstractmethod
    def encode(
        self, model, images: torch.Tensor, codes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What analysis reads off a batch: (latents, reconstruction logits or None).

        `codes` are the batch's standardised factor values."""

    def decode(self, model, z: torch.Tensor) -> torch.Tensor | None:
        """Reconstruction logits of latents `z` (as `encode` gives them), or None for a task whose
        latents cannot be rendered; the latent oracle decodes its predictions with it."""
        return model.decode(z)

    def r2_scores(
        self, grid: Grid, z_train, v_train, z_test, v_test, codes_train, codes_test, scored: list[int]
    ) -> dict[str, list[float]]:
        """Per-factor R²: {"r2_test": ..., "r2_train": ...}, one value per factor of the grid, NaN
        for a factor outside `scored` (those that vary within the split). By default a linear
        readout from the latent means, fitted on training images and scored on held-out ones
        (r2_test) and on the same training images (r2_train), each against the training images'
        mean value (representation.readout_r2): latents that carry nothing score about 0 on both."""
        from compgen.metrics import representation

        keep = lambda r2: [r if k in scored else float("nan") for k, r in enumerate(r2)]  # noqa: E731
        return {
            "r2_test": keep(representation.readout_r2(z_train, v_train, z_test, v_test)),
            "r2_train": keep(representation.readout_r2(z_train, v_train, z_train, v_train)),
        }

    def excess_scores(self, model, inputs, excess_train: np.ndarray, excess_test: np.ndarray) -> dict:
        """`recon_excess_train`, `recon_excess_test`, `gap` and `excess_delta`
        (compgen.metrics.excess) of the analysis' single-image samples: `excess_train` and
        `excess_test` are their per-image excess losses (loss less floor; empty test: an all-data
        reference). Every task reports these, the papers' measure; a task that generalises to
        another target too (composition: the composed image) adds the same scores on it under
        suffixed keys, and may add the losses it measured them from."""
        from compgen.metrics.excess import excess_summary

        return excess_summary(excess_train, excess_test)

    def extra_scores(self, model, inputs) -> dict[str, float]:
        """Task-specific scores; `inputs` is the analysis' AnalysisInputs."""
        return {}
