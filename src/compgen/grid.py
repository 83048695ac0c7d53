"""Factor grids: names, sizes and values; image index <-> factor classes (C order)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# What a factor's values are, which decides how a readout reads it (compgen.metrics.fit):
# positions on a line, angles on a circle of `period`, or unordered classes.
ORDINAL, CIRCULAR, CATEGORICAL = "ordinal", "circular", "categorical"
FACTOR_KINDS = (ORDINAL, CIRCULAR, CATEGORICAL)


@dataclass(frozen=True)
class Factor:
    """One generative factor: its values, its kind and, after subsampling, which full-grid classes
    they are. A factor declared without a kind is ordinal."""

    name: str
    values: tuple[float, ...]
    labels: tuple[str, ...] | None = None
    # Class of each kept value on the dataset's full grid (identity unless subsampled).
    full_classes: tuple[int, ...] | None = None
    full_size: int | None = None  # number of values on the full grid
    kind: str = ORDINAL
    period: float | None = None  # circular only: values v and v + period are the same angle

    def __post_init__(self) -> None:
        if self.full_classes is None:
            object.__setattr__(self, "full_classes", tuple(range(len(self.values))))
        if self.full_size is None:
            object.__setattr__(self, "full_size", len(self.values))
        if len(self.full_classes) != len(self.values):
            raise ValueError(f"factor {self.name!r}: full_classes and values differ in length")
        if self.kind not in FACTOR_KINDS:
            raise ValueError(f"factor {self.name!r}: kind {self.kind!r}; allowed: {', '.join(FACTOR_KINDS)}")
        if (self.kind == CIRCULAR) != (self.period is not None) or (
            self.period is not None and self.period <= 0
        ):
            raise ValueError(
                f"factor {self.name!r}: a positive period is for circular factors, and only them"
            )

    @property
    def size(self) -> int:
        return len(self.values)

    def subsample(self, step: int) -> Factor:
        if step < 1:
            raise ValueError(f"factor {self.name!r}: subsample step must be >= 1, got {step}")
        keep = slice(None, None, step)
        return Factor(
            self.name,
            self.values[keep],
            self.labels[keep] if self.labels else None,
            self.full_classes[keep],
            self.full_size,
            self.kind,
            self.period,
        )


@dataclass(frozen=True)
class Grid:
    """A full factor grid; image i has classes unravel_index(i, sizes) (last factor fastest)."""

    factors: tuple[Factor, ...]
    image_shape: tuple[int, int, int]  # H, W, C

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.factors)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(f.size for f in self.factors)

    @property
    def n(self) -> int:
        return int(np.prod(self.sizes, dtype=np.int64))

    def factor(self, name: str) -> Factor:
        for f in self.factors:
            if f.name == name:
                return f
        raise KeyError(f"unknown factor {name!r}; allowed: {', '.join(self.names)}")

    def axis(self, name: str) -> int:
        self.factor(name)
        return self.names.index(name)

    def classes(self, indices: np.ndarray) -> np.ndarray:
        """Factor classes (N x K, int64) of flat image indices."""
        return np.stack(np.unravel_index(np.asarray(indices, dtype=np.int64), self.sizes), axis=1)

    def index(self, classes: np.ndarray) -> np.ndarray:
        """Flat image indices of factor classes (N x K)."""
        classes = np.asarray(classes, dtype=np.int64)
        return np.ravel_multi_index(tuple(classes.T), self.sizes).astype(np.int64)

    def values(self, classes: np.ndarray) -> np.ndarray:
        """Factor values (N x K, float64) of factor classes."""
        classes = np.asarray(classes, dtype=np.int64)
        out = np.empty(classes.shape, dtype=np.float64)
        for k, f in enumerate(self.factors):
            out[:, k] = np.asarray(f.values, dtype=np.float64)[classes[:, k]]
        return out

    def full_classes(self, classes: np.ndarray) -> np.ndarray:
        """Classes on the dataset's full (not subsampled) grid."""
        classes = np.asarray(classes, dtype=np.int64)
        out = np.empty_like(classes)
        for k, f in enumerate(self.factors):
            out[:, k] = np.asarray(f.full_classes, dtype=np.int64)[classes[:, k]]
        return out

    def all_classes(self) -> np.ndarray:
        return self.classes(np.arange(self.n))

    def subsample(self, steps: dict[str, int] | None) -> Grid:
        """Keep every k-th value of the named factors."""
        steps = dict(steps or {})
        for name in steps:
            self.factor(name)
        return Grid(tuple(f.subsample(steps.get(f.name, 1)) for f in self.factors), self.image_shape)

    def standardised(self, values: np.ndarray) -> np.ndarray:
        """(v - mean(unique values)) / (max - min), per factor; constant factors give 0."""
        out = np.zeros_like(np.asarray(values, dtype=np.float64))
        for k, f in enumerate(self.factors):
            vals = np.asarray(f.values, dtype=np.float64)
            span = vals.max() - vals.min()
            out[:, k] = (values[:, k] - vals.mean()) / span if span > 0 else 0.0
        return out

    def to_attrs(self) -> dict:
        """Plain description for HDF5 attributes and JSON."""
        return {
            "factor_names": list(self.names),
            "factor_sizes": list(self.sizes),
            "factor_values": [list(map(float, f.values)) for f in self.factors],
            "factor_labels": [list(f.labels) if f.labels else None for f in self.factors],
            "factor_full_classes": [list(map(int, f.full_classes)) for f in self.factors],
            "factor_full_sizes": [int(f.full_size) for f in self.factors],
            "factor_kinds": [f.kind for f in self.factors],
            "factor_periods": [None if f.period is None else float(f.period) for f in self.factors],
            "image_shape": list(self.image_shape),
        }

    @classmethod
    def from_attrs(cls, d: dict, old_kinds: Sequence[tuple[str, float | None]] | None = None) -> Grid:
        """The grid `to_attrs` described. A description written before factors had kinds takes
        `old_kinds` ((kind, period) per factor; the datasets know them: compgen.datasets.
        declared_kinds), else every factor ordinal, Factor's default."""
        names = d["factor_names"]
        if "factor_kinds" in d:
            kinds = list(zip(d["factor_kinds"], d["factor_periods"], strict=True))
        else:
            kinds = list(old_kinds) if old_kinds is not None else [(ORDINAL, None)] * len(names)
        factors = tuple(
            Factor(name, tuple(vals), tuple(labels) if labels else None, tuple(full), full_size, kind, period)
            for name, vals, labels, full, full_size, (kind, period) in zip(
                names,
                d["factor_values"],
                d["factor_labels"],
                d["factor_full_classes"],
                d["factor_full_sizes"],
                kinds,
                strict=True,
            )
        )
        return cls(factors, tuple(d["image_shape"]))
