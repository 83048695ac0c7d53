"""Conditions: filters on factor values or classes -> train/test masks -> split index files.

A filter is a list of clauses, all of which must hold. A clause names a factor and any of
`values` (list), `classes` (full-grid classes), `gt`, `ge`, `lt`, `le` (thresholds on values).
Modifiers are filters that shrink the grid on both sides before the condition applies.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

import numpy as np

from compgen.atomic import atomic_path, write_json
from compgen.grid import Grid

# Factor values come from linspace; thresholds in configs are written with finite precision.
TOLERANCE = 1e-6


class ConditionError(ValueError):
    """A condition that cannot be applied to its grid."""


class SplitError(ValueError):
    """A split file that is unreadable or was not made for the dataset it is used with."""


@dataclass(frozen=True)
class Condition:
    name: str  # e.g. "ell2tx+sparse_posX": the condition, then its modifiers
    family: str
    test: tuple[dict, ...]
    train: tuple[dict, ...] | None = None  # None: the complement of test
    modifiers: tuple[tuple[str, tuple[dict, ...]], ...] = ()
    factors: tuple[str, ...] = ()  # the two factors a figure shows; derived when empty
    description: str = ""

    @classmethod
    def from_params(cls, params: dict) -> Condition:
        """Rebuild from `Study.condition_params` (plain values passed through the workflow)."""
        return cls(
            name=params["name"],
            family=params["family"],
            test=tuple(params["test"]),
            train=tuple(params["train"]) if params.get("train") is not None else None,
            modifiers=tuple((name, tuple(clauses)) for name, clauses in params["modifiers"].items()),
            factors=tuple(params.get("factors", ())),
            description=params.get("description", ""),
        )

    def params(self) -> dict:
        return {
            "name": self.name,
            "family": self.family,
            "test": [dict(c) for c in self.test],
            "train": [dict(c) for c in self.train] if self.train is not None else None,
            "modifiers": {name: [dict(c) for c in clauses] for name, clauses in self.modifiers},
            "factors": list(self.factors),
            "description": self.description,
        }

    def definition(self) -> dict:
        return {
            "name": self.name,
            "family": self.family,
            "test": list(self.test),
            "train": list(self.train) if self.train is not None else "complement of test",
            "modifiers": {name: list(clauses) for name, clauses in self.modifiers},
            "description": self.description,
        }


def clause_mask(grid: Grid, clause: dict, where: str = "filter") -> np.ndarray:
    """Boolean mask over the whole grid (C order) for one clause."""
    name = clause.get("factor")
    if name not in grid.names:
        raise ConditionError(f"{where}: unknown factor {name!r}; allowed: {', '.join(grid.names)}")
    k = grid.axis(name)
    factor = grid.factors[k]
    values = np.asarray(factor.values, dtype=np.float64)
    keep = np.ones(factor.size, dtype=bool)  # per value of this factor
    if "values" in clause:
        wanted = np.asarray(clause["values"], dtype=np.float64)
        hits = np.isclose(values[:, None], wanted[None, :], atol=TOLERANCE, rtol=0)
        missing = wanted[~hits.any(axis=0)]
        if missing.size:
            raise ConditionError(
                f"{where}: factor {name!r} has no value {missing.tolist()} on this grid; "
                f"allowed: {[round(v, 6) for v in values.tolist()]}"
            )
        keep &= hits.any(axis=1)
    if "classes" in clause:
        full = np.asarray(factor.full_classes)
        wanted = np.asarray(clause["classes"], dtype=np.int64)
        bad = wanted[(wanted < 0) | (wanted >= factor.full_size)]
        if bad.size:
            raise ConditionError(
                f"{where}: factor {name!r} has no class {bad.tolist()}; allowed: 0..{factor.full_size - 1}"
            )
        keep &= np.isin(full, wanted)
    if "gt" in clause:
        keep &= values > clause["gt"] + TOLERANCE
    if "ge" in clause:
        keep &= values >= clause["ge"] - TOLERANCE
    if "lt" in clause:
        keep &= values < clause["lt"] - TOLERANCE
    if "le" in clause:
        keep &= values <= clause["le"] + TOLERANCE
    shape = [1] * len(grid.sizes)
    shape[k] = factor.size
    return np.broadcast_to(keep.reshape(shape), grid.sizes).reshape(-1)


def filter_mask(grid: Grid, clauses, where: str = "filter") -> np.ndarray:
    mask = np.ones(grid.n, dtype=bool)
    for i, clause in enumerate(clauses):
        mask &= clause_mask(grid, clause, f"{where}[{i}]")
    return mask


def split_masks(grid: Grid, condition: Condition) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) masks over the grid; raises when either side is empty."""
    where = f"condition {condition.name!r}"
    kept = np.ones(grid.n, dtype=bool)
    for mod_name, clauses in condition.modifiers:
        kept &= filter_mask(grid, clauses, f"{where} modifier {mod_name!r}")
    test = filter_mask(grid, condition.test, f"{where} test") & kept
    if condition.train is None:
        train = kept & ~test
    else:
        train = filter_mask(grid, condition.train, f"{where} train") & kept & ~test
    if not test.any():
        raise ConditionError(f"{where}: the test set is empty on this grid (sizes {grid.sizes})")
    if not train.any():
        raise ConditionError(f"{where}: the training set is empty on this grid (sizes {grid.sizes})")
    return train, test


def main_factors(grid: Grid, condition: Condition) -> tuple[str, str]:
    """The two factors a split or latent figure shows: declared, else those the test filter names."""
    named = list(condition.factors)
    for clause in condition.test:
        if clause["factor"] not in named:
            named.append(clause["factor"])
    for name in grid.names:  # pad single-factor conditions with the next factor of the grid
        if len(named) >= 2:
            break
        if name not in named:
            named.append(name)
    return named[0], named[1]


def split_summary(grid: Grid, condition: Condition, dataset: str) -> tuple[dict, np.ndarray, np.ndarray]:
    train_mask, test_mask = split_masks(grid, condition)
    train, test = np.flatnonzero(train_mask), np.flatnonzero(test_mask)
    summary = {
        "dataset": dataset,
        "condition": condition.name,
        "n_train": int(train.size),
        "n_test": int(test.size),
        "n_total": int(grid.n),
        "n_excluded": int(grid.n - train.size - test.size),
        "main_factors": list(main_factors(grid, condition)),
        "grid": {"factor_names": list(grid.names), "factor_sizes": list(grid.sizes)},
        "definition": condition.definition(),
    }
    return summary, train.astype(np.int64), test.astype(np.int64)


def write_split(grid: Grid, condition: Condition, dataset: str, npz_path, json_path) -> dict:
    """Materialise a condition as train/test index files (atomically) and return its summary."""
    summary, train, test = split_summary(grid, condition, dataset)
    with atomic_path(npz_path) as tmp:
        with open(tmp, "wb") as fh:
            # The grid's sizes travel with the indices, so a split is never applied to another grid.
            np.savez(fh, train=train, test=test, grid_sizes=np.asarray(grid.sizes, dtype=np.int64))
    write_json(json_path, summary)
    return summary


def load_split(
    npz_path, grid: Grid | None = None, summary: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices. Given the dataset's `grid` (and the split's .json `summary`), the
    split is refused unless it was made for that grid: same sizes, indices in range, unique and
    disjoint, counts as summarised."""
    try:
        with np.load(npz_path, allow_pickle=False) as f:
            missing = sorted({"train", "test"} - set(f.files))
            if missing:
                raise SplitError(f"{npz_path}: missing {missing}; not a split file (has {sorted(f.files)})")
            train, test = f["train"], f["test"]
            sizes = tuple(int(s) for s in f["grid_sizes"]) if "grid_sizes" in f.files else None
    except SplitError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise SplitError(f"{npz_path}: not a readable split file ({err})") from None
    if grid is not None:
        _check_split(npz_path, grid, train, test, sizes, summary)
    return train, test


def _check_split(npz_path, grid: Grid, train, test, sizes, summary) -> None:
    def refuse(what: str) -> None:
        raise SplitError(f"{npz_path}: {what}; it does not belong to this dataset (make the split again)")

    if sizes is not None and sizes != grid.sizes:
        refuse(f"made for grid sizes {list(sizes)}, the dataset has {list(grid.sizes)}")
    if summary is not None:  # what the summary records must match
        recorded = summary.get("grid", {})
        sizes_differ = recorded.get("factor_sizes", list(grid.sizes)) != list(grid.sizes)
        names_differ = recorded.get("factor_names", list(grid.names)) != list(grid.names)
        if summary.get("n_total", grid.n) != grid.n or sizes_differ or names_differ:
            names, sizes = recorded.get("factor_names", []), recorded.get("factor_sizes", [])
            recorded_grid = zip(names, sizes, strict=False)
            refuse(
                f"its summary records {summary.get('n_total')} images on grid {dict(recorded_grid)}, "
                f"the dataset has {grid.n} on {dict(zip(grid.names, grid.sizes, strict=True))}"
            )
        if (summary.get("n_train", train.size), summary.get("n_test", test.size)) != (train.size, test.size):
            refuse(
                f"holds {train.size} train and {test.size} test indices, its summary says "
                f"{summary.get('n_train')} and {summary.get('n_test')}"
            )
    for name, idx in (("train", train), ("test", test)):
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            refuse(f"{name!r} is {idx.dtype} with shape {idx.shape}, expected 1-D integer indices")
        if idx.size and (idx.min() < 0 or idx.max() >= grid.n):
            refuse(f"{name!r} indices span {idx.min()}..{idx.max()}, the dataset has rows 0..{grid.n - 1}")
        if np.unique(idx).size != idx.size:
            refuse(f"{name!r} repeats indices")
    if np.intersect1d(train, test).size:
        refuse("train and test share indices")
