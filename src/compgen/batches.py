"""Training data on the device, and vectorised sampling of composition triplets
(the composition task: docs/study.md).

Triplets are sampled exactly, without rejection: for every factor d the codes are grouped into
"lines" (codes equal except in d), so a target is a random other member of the reference's line,
and the command starts at the target and steps, factor by factor in order, to a random other member
of its current line wherever it has one (the original's sequential resampling). Every step is a
whole-batch tensor operation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

# Independent random streams per (run seed, epoch): the purpose of each draw.
SHUFFLE_STREAM, NOISE_STREAM, VALIDATION_STREAM = 0, 1, 2

# How a triplet's command is drawn (`models.<m>.command`): `resample_others` as the NeurIPS code's
# `TripletDataset`, `same_value` as the ICLR code's `Triplets` (CodeTables.command_same_value).
COMMANDS = ("resample_others", "same_value")


def check_command(command: str) -> str:
    if command not in COMMANDS:
        raise ValueError(f"unknown models.<model>.command {command!r}; allowed: {', '.join(COMMANDS)}")
    return command


def derived_seed(seed: int, epoch: int, stream: int) -> int:
    """Independent 63-bit seeds per (run seed, epoch, purpose)."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1, np.uint64)[0] >> np.uint64(1))


class Triplets(NamedTuple):
    ref: torch.Tensor | np.ndarray
    cmd: torch.Tensor | np.ndarray
    target: torch.Tensor | np.ndarray
    d: torch.Tensor | np.ndarray


def batch_length(batch) -> int:
    """Items in a batch of rows or of Triplets."""
    return len(batch.target) if isinstance(batch, Triplets) else len(batch)


def batch_slice(batch, part: slice):
    return Triplets(*(x[part] for x in batch)) if isinstance(batch, Triplets) else batch[part]


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] to float32 in [0, 1], on their own device."""
    return images.to(torch.float32).div_(255.0)  # in place: one float buffer per batch, not two


def images_to_tensor(images: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """N x H x W x C uint8 (the store's layout) to an N x C x H x W uint8 tensor on `device`."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device)


def action_onehot(d: torch.Tensor, n_factors: int) -> torch.Tensor:
    return F.one_hot(d.long(), n_factors).to(torch.float32)


def balanced_weights(labels: np.ndarray) -> torch.Tensor:
    """Per-row sampling weights 1 / (rows sharing the row's label), as float64: drawn with
    replacement by these weights, every label present is equally frequent (the original's
    `ImbalancedSampler`; `training.rebalance`)."""
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return torch.as_tensor(1.0 / counts[inverse.reshape(-1)], dtype=torch.float64)


def flat_index(classes: np.ndarray, sizes) -> np.ndarray:
    return np.ravel_multi_index(tuple(np.asarray(classes, dtype=np.int64).T), tuple(sizes)).astype(np.int64)


def position_lookup(flat_indices: np.ndarray, grid_size: int) -> np.ndarray:
    """Dense map full-grid index -> position in `flat_indices`, or -1 where absent."""
    lookup = np.full(grid_size, -1, dtype=np.int64)
    lookup[np.asarray(flat_indices, dtype=np.int64)] = np.arange(len(flat_indices), dtype=np.int64)
    return lookup


class CodeTables:
    """Per-factor line and value-group tables over a set of distinct grid codes (rows)."""

    def __init__(self, classes: np.ndarray, sizes, device: torch.device | str = "cpu"):
        classes = np.asarray(classes, dtype=np.int64)
        sizes = tuple(int(s) for s in sizes)
        n, k = classes.shape
        if k != len(sizes):
            raise ValueError(f"codes have {k} factors but the grid has {len(sizes)}")
        flat = flat_index(classes, sizes)
        if np.unique(flat).size != n:
            raise ValueError("codes must be distinct grid cells")
        strides = np.array([int(np.prod(sizes[i + 1 :], dtype=np.int64)) for i in range(k)], dtype=np.int64)
        line_order = np.empty((k, n), dtype=np.int64)
        line_start = np.empty((k, n), dtype=np.int64)
        line_count = np.empty((k, n), dtype=np.int64)
        rank = np.empty((k, n), dtype=np.int64)
        max_size = max(sizes)
        value_order = np.empty((k, n), dtype=np.int64)
        value_start = np.zeros((k, max_size), dtype=np.int64)
        value_count = np.zeros((k, max_size), dtype=np.int64)
        for d in range(k):
            line_id = flat - classes[:, d] * strides[d]
            order = np.argsort(line_id, kind="stable")
            uniq, starts, counts = np.unique(line_id[order], return_index=True, return_counts=True)
            group = np.searchsorted(uniq, line_id)
            line_order[d] = order
            line_start[d] = starts[group]
            line_count[d] = counts[group]
            rank[d, order] = np.arange(n)
            value_order[d] = np.argsort(classes[:, d], kind="stable")
            counts_v = np.bincount(classes[:, d], minlength=sizes[d])
            value_count[d, : sizes[d]] = counts_v
            value_start[d, : sizes[d]] = np.cumsum(counts_v) - counts_v
        t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        self.n, self.k, self.sizes = n, k, sizes
        self.classes = t(classes)
        self.flat = t(flat)
        self.line_order, self.line_start, self.line_count, self.rank = map(
            t, (line_order, line_start, line_count, rank)
        )
        self.value_order, self.value_start, self.value_count = map(t, (value_order, value_start, value_count))
        # has_alternative[r, d]: another code differs from row r in factor d only.
        self.has_alternative = t(line_count.T >= 2)

    def _uniform_below(self, high: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Uniform integers in [0, high) per element (float64 keeps large counts exact)."""
        u = torch.rand(high.shape, generator=generator, dtype=torch.float64, device=high.device)
        return torch.minimum((u * high).long(), high - 1)

    def choose_factor(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A factor, uniformly among those in which row r has another code."""
        u = torch.rand((rows.shape[0], self.k), generator=generator, device=rows.device)
        return torch.where(self.has_alternative[rows], u, -1.0).argmax(1)

    def line_neighbour(self, rows: torch.Tensor, d: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A uniformly random other row equal to `rows` except in factor d."""
        start, count = self.line_start[d, rows], self.line_count[d, rows]
        own = self.rank[d, rows] - start
        j = self._uniform_below(count - 1, generator)
        j = j + (j >= own).long()
        return self.line_order[d, start + j]

    def command(self, target: torch.Tensor, d: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The command row for each (target, d), drawn as the original's `TripletDataset`.

        Original: `src/dataset/tuples.py` (mmrl/lost-in-latent-space), `TripletDataset.__getitem__`
        lines 190-194 start from the target's code and, for every factor f != d in index order,
        replace f by `sample_factor` (lines 209-230): the values of f that keep the *current* code
        (earlier factors already resampled) in the dataset's subset are valid (lines 212-218; the
        subset is the training one: `scripts/experiments/composition.py` line 126,
        `src/dataset/dsprites.py` lines 142-143, `IndexMap`, `src/dataset/tuples.py` lines 18-37); if
        more than one is valid the current value is excluded and one of the others is drawn
        uniformly (lines 221, 227-230), else the current value is kept (lines 223-225). The current
        value of f != d is the reference's (the target differs from it in d only), so the command
        differs from the reference in every factor where, at its turn, another valid value exists.
        Here the valid codes are the rows of these tables, and a factor's step is a move to a
        uniformly random other member of the current row's line in f: k whole-batch steps.
        """
        cur = target
        for f in range(self.k):
            start, count = self.line_start[f, cur], self.line_count[f, cur]
            own = self.rank[f, cur] - start
            j = self._uniform_below((count - 1).clamp_min(1), generator)
            j = j + (j >= own).long()
            j = torch.where((d != f) & (count >= 2), j, own)  # no step: stay on the current row
            cur = self.line_order[f, start + j]
        return cur

    def command_same_value(
        self, target: torch.Tensor, d: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """The command row for each (target, d) as the ICLR code's `Triplets.__getitem__`
        (mmrl/disent-and-gen, `src/dataset/transforms.py` lines 41-44): uniformly any row whose
        value of d is the target's, the target itself included; the other factors are free."""
        value = self.classes[target, d]
        j = self._uniform_below(self.value_count[d, value], generator)
        return self.value_order[d, self.value_start[d, value] + j]

    def draw_command(
        self, target: torch.Tensor, d: torch.Tensor, generator: torch.Generator, command: str
    ) -> torch.Tensor:
        if check_command(command) == "same_value":
            return self.command_same_value(target, d, generator)
        return self.command(target, d, generator)

    def triplets_from_targets(
        self, target: torch.Tensor, generator: torch.Generator, command: str = "resample_others"
    ) -> Triplets:
        """Triplets built backwards from given targets: d, then the reference, then the command.

        The command is drawn as in training (`command`), with these tables' codes as the valid ones.
        The original builds no held-out triplets (its test pass, `scripts/experiments/composition.py`
        lines 208-216, is commented out, and its analysis scores single images), so its procedure
        is followed with the tables' pool (for `heldout_triplets`: train and test codes) as validity.
        """
        d = self.choose_factor(target, generator)
        ref = self.line_neighbour(target, d, generator)
        cmd = self.draw_command(target, d, generator, command)
        return Triplets(ref, cmd, target, d)


class TripletSampler:
    """Composition triplets (ref, cmd, target, d) as row indices into the training subset.

    Random numbers come from `generator` (tables live on its device); results move to `device`.
    A reference is drawn uniformly among rows that have another valid value in some factor (or, with
    `ref_weights`, one weight per row of `train_classes`, by those weights: `training.rebalance`); d
    uniformly among those factors; the target is a random training code differing from the
    reference in d only; the command as the NeurIPS code's (`CodeTables.command`), or with
    `command="same_value"` as the ICLR code's (`CodeTables.command_same_value`).
    """

    def __init__(
        self,
        train_classes: np.ndarray,
        sizes,
        generator: torch.Generator,
        device="cpu",
        ref_weights: torch.Tensor | None = None,
        command: str = "resample_others",
    ):
        self.generator = generator
        self.device = torch.device(device)
        self.command = check_command(command)
        self.tables = CodeTables(train_classes, sizes, device=generator.device)
        self.eligible = torch.nonzero(self.tables.has_alternative.any(1)).flatten()
        if self.eligible.numel() == 0:
            raise ValueError(
                "no training code has another valid value in any factor: no composition triplets exist"
            )
        self.ref_weights = None
        if ref_weights is not None:
            if len(ref_weights) != self.tables.n:
                raise ValueError(f"{len(ref_weights)} reference weights for {self.tables.n} training codes")
            weights = torch.as_tensor(ref_weights, dtype=torch.float64, device=generator.device)
            self.ref_weights = weights[self.eligible]

    @property
    def n_factors(self) -> int:
        return self.tables.k

    def sample(self, batch_size: int) -> Triplets:
        g = self.generator
        if self.ref_weights is None:
            pick = torch.randint(self.eligible.numel(), (batch_size,), generator=g, device=g.device)
        else:
            pick = torch.multinomial(self.ref_weights, batch_size, replacement=True, generator=g)
        ref = self.eligible[pick]
        d = self.tables.choose_factor(ref, g)
        target = self.tables.line_neighbour(ref, d, g)
        cmd = self.tables.draw_command(target, d, g, self.command)
        return Triplets(*(t.to(self.device) for t in (ref, cmd, target, d)))


def heldout_triplets(
    grid_sizes,
    train_classes: np.ndarray,
    test_classes: np.ndarray,
    n: int,
    generator: torch.Generator,
    command: str = "resample_others",
) -> Triplets:
    """`n` triplets whose target is a held-out (test) code; ref and cmd come from train and test,
    the command drawn as `command` says (TripletSampler).

    Returns numpy int64 full-grid (C-order flat) indices of ref, cmd and target, and d.
    """
    sizes = tuple(int(s) for s in grid_sizes)
    pool_flat = np.unique(
        flat_index(np.concatenate([np.asarray(train_classes), np.asarray(test_classes)]), sizes)
    )
    test_flat = np.unique(flat_index(test_classes, sizes))
    pool_classes = np.stack(np.unravel_index(pool_flat, sizes), axis=1)
    tables = CodeTables(pool_classes, sizes, device=generator.device)
    is_test = torch.as_tensor(np.isin(pool_flat, test_flat), device=generator.device)
    eligible = torch.nonzero(is_test & tables.has_alternative.any(1)).flatten()
    if eligible.numel() == 0:
        raise ValueError("no held-out code has another valid value in any factor: no held-out triplets exist")
    target = eligible[torch.randint(eligible.numel(), (n,), generator=generator, device=generator.device)]
    rows = tables.triplets_from_targets(target, generator, command)
    flat = tables.flat.cpu().numpy()
    return Triplets(
        flat[rows.ref.cpu().numpy()],
        flat[rows.cmd.cpu().numpy()],
        flat[rows.target.cpu().numpy()],
        rows.d.cpu().numpy().astype(np.int64),
    )
