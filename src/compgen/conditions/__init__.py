"""Conditions: filters on factor values or classes -> train/test masks -> split index files.

A filter is a list of clauses, all of which must hold. A clause names a factor and any of
`values` (list), `classes` (full-grid classes), `gt`, `ge`, `lt`, `le` (thresholds on values);
or it is `{any: [clause, clause, ...]}`, which holds where at least one of its clauses holds (an
OR: a factor outside a range, or either of two factors, as some of the original's masks need).
Modifiers are filters that shrink the grid on both sides before the condition applies.

Family `none` is the all-data reference: nothing is held out (its test filter is empty) and the
training set is the whole grid left by its modifiers.

Family `iid` is the overfitting control: no filter; a seeded random sample of the images left by
its modifiers is held out, as many as its `like` condition holds out on the same modified grid (or
a `fraction` of them). The pairs of factor values of its held-out images are trained on (on any
grid with more images than pairs), so a gap it shows is overfitting, not a failure to compose. Its
modifiers apply to its like condition too: `iid_like_cyl2vx+four_shapes+fix_hx` draws from the
images `cyl2vx+four_shapes+fix_hx` holds out from, as many as that holds out.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

import numpy as np

from compgen.atomic import atomic_path, write_json
from compgen.grid import Grid

# Factor values come from linspace; thresholds in configs are written with finite precision.
TOLERANCE = 1e-6
# The keys of a factor clause; a clause with `any` has that key alone.
FACTOR_CLAUSE_KEYS = ("factor", "values", "classes", "gt", "ge", "lt", "le")
# The all-data reference family: train on the whole (modified) grid, hold nothing out.
NONE_FAMILY = "none"
# The overfitting control: a seeded random sample held out, no combination structure.
IID_FAMILY = "iid"


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
    # Family iid only: the condition whose test-set size it copies (with this condition's
    # modifiers), or the share of images it holds out; and the seed of its draw.
    like: Condition | None = None
    fraction: float | None = None
    seed: int = 0

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
            like=cls.from_params(params["like"]) if params.get("like") is not None else None,
            fraction=params.get("fraction"),
            seed=params.get("seed", 0),
        )

    def params(self) -> dict:
        params = {
            "name": self.name,
            "family": self.family,
            "test": [dict(c) for c in self.test],
            "train": [dict(c) for c in self.train] if self.train is not None else None,
            "modifiers": {name: [dict(c) for c in clauses] for name, clauses in self.modifiers},
            "factors": list(self.factors),
            "description": self.description,
        }
        if self.family == IID_FAMILY:  # only here: other splits' params (rerun triggers) stay as they were
            like = self.like.params() if self.like is not None else None
            params.update(like=like, fraction=self.fraction, seed=self.seed)
        return params

    def definition(self) -> dict:
        if self.family == IID_FAMILY:
            size = (
                f"as many as condition {self.like.name!r} holds out"
                if self.like is not None
                else f"a fraction {self.fraction} of them"
            )
            return {
                "name": self.name,
                "family": self.family,
                "test": f"a random sample (seed {self.seed}) of the grid after modifiers, {size}",
                "train": "the rest of the grid (after modifiers)",
                "modifiers": {name: list(clauses) for name, clauses in self.modifiers},
                "seed": self.seed,
                **(
                    {"like": self.like.definition()} if self.like is not None else {"fraction": self.fraction}
                ),
                "description": self.description,
            }
        return {
            "name": self.name,
            "family": self.family,
            "test": list(self.test),
            "train": (
                list(self.train)
                if self.train is not None
                else "the whole grid (after modifiers); nothing held out"
                if self.family == NONE_FAMILY
                else "complement of test"
            ),
            "modifiers": {name: list(clauses) for name, clauses in self.modifiers},
            "description": self.description,
        }


def clause_mask(grid: Grid, clause: dict, where: str = "filter") -> np.ndarray:
    """Boolean mask over the whole grid (C order) for one clause."""
    if not isinstance(clause, dict):
        raise ConditionError(f"{where}: a clause is a mapping (factor and tests, or any), got {clause!r}")
    if "any" in clause:
        return _any_mask(grid, clause, where)
    unknown = [key for key in clause if key not in FACTOR_CLAUSE_KEYS]
    if unknown:
        raise ConditionError(
            f"{where}: unknown clause key {unknown[0]!r}; allowed: {', '.join(FACTOR_CLAUSE_KEYS)}, "
            "or any alone"
        )
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


def _any_mask(grid: Grid, clause: dict, where: str) -> np.ndarray:
    """Where at least one of the clauses listed under `any` holds."""
    others = [key for key in clause if key != "any"]
    if others:
        raise ConditionError(
            f"{where}: a clause with 'any' takes no other key, got {others[0]!r}; "
            "put each test inside the list under any"
        )
    alternatives = clause["any"]
    if not isinstance(alternatives, list | tuple) or len(alternatives) < 2:
        raise ConditionError(
            f"{where}: 'any' takes a list of at least two clauses, one of which must hold; "
            f"got {alternatives!r}"
        )
    mask = np.zeros(grid.n, dtype=bool)
    for i, alternative in enumerate(alternatives):
        mask |= clause_mask(grid, alternative, f"{where}.any[{i}]")
    return mask


def clause_factors(clause: dict) -> list[str]:
    """The factors a clause tests, in order (those of each alternative of an `any` clause)."""
    if "any" in clause:
        return [name for alternative in clause["any"] for name in clause_factors(alternative)]
    return [clause["factor"]]


def filter_mask(grid: Grid, clauses, where: str = "filter") -> np.ndarray:
    mask = np.ones(grid.n, dtype=bool)
    for i, clause in enumerate(clauses):
        mask &= clause_mask(grid, clause, f"{where}[{i}]")
    return mask


def split_masks(grid: Grid, condition: Condition) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) masks over the grid; raises when either side is empty, except that a
    condition of family `none` (the all-data reference) has an empty test set by definition."""
    where = f"condition {condition.name!r}"
    kept = np.ones(grid.n, dtype=bool)
    for mod_name, clauses in condition.modifiers:
        kept &= filter_mask(grid, clauses, f"{where} modifier {mod_name!r}")
    if condition.family == IID_FAMILY:
        return _iid_masks(grid, condition, kept, where)
    if condition.like is not None or condition.fraction is not None:
        raise ConditionError(
            f"{where}: like and fraction belong to family 'iid'; family {condition.family!r} holds "
            "out what its test filter selects"
        )
    if condition.family == NONE_FAMILY:
        if condition.test or condition.train is not None:
            raise ConditionError(
                f"{where}: family 'none' trains on the whole grid and holds nothing out; give it "
                "an empty test filter (test: []) and no train filter, and shrink the grid with modifiers"
            )
        if not kept.any():
            raise ConditionError(f"{where}: the modifiers leave no image on this grid (sizes {grid.sizes})")
        return kept, np.zeros(grid.n, dtype=bool)
    if not condition.test:
        raise ConditionError(
            f"{where}: the test filter is empty; a condition of family {condition.family!r} must "
            "hold something out (family 'none' is the all-data reference)"
        )
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


def _iid_masks(grid: Grid, condition: Condition, kept: np.ndarray, where: str):
    """Family iid: a seeded sample of the `kept` images held out, sized by `like` or `fraction`."""
    if condition.test or condition.train is not None:
        raise ConditionError(
            f"{where}: family 'iid' holds out a random sample; give it like or fraction, "
            "no test or train filter"
        )
    if (condition.like is None) == (condition.fraction is None):
        raise ConditionError(
            f"{where}: family 'iid' takes one of like (a condition whose test-set size it copies) "
            "and fraction (the share of the images it holds out), not both or neither"
        )
    pool = np.flatnonzero(kept)
    if condition.like is not None:
        like = condition.like
        if like.family in (IID_FAMILY, NONE_FAMILY):
            raise ConditionError(
                f"{where}: like names {like.name!r} of family {like.family!r}; an iid control copies "
                "the test-set size of a condition that holds out combinations"
            )
        if like.modifiers != condition.modifiers:
            raise ConditionError(
                f"{where}: like condition {like.name!r} shrinks the grid otherwise; the control must "
                "draw from the images its like condition splits (give both the same modifiers)"
            )
        n_test = int(split_masks(grid, like)[1].sum())
    else:
        if not 0 < condition.fraction < 1:
            raise ConditionError(f"{where}: fraction {condition.fraction} is not between 0 and 1")
        n_test = int(np.floor(condition.fraction * pool.size + 0.5))  # rounded half up
    if not 0 < n_test < pool.size:
        raise ConditionError(
            f"{where}: holds out {n_test} of the {pool.size} images on this grid (sizes {grid.sizes}); "
            "training and held-out sets both need images"
        )
    test = np.zeros(grid.n, dtype=bool)
    test[np.random.default_rng(condition.seed).choice(pool, size=n_test, replace=False)] = True
    return kept & ~test, test


def main_factors(grid: Grid, condition: Condition) -> tuple[str, str]:
    """The two factors a split or latent figure shows: declared, else those the test filter names;
    an iid control shows its like condition's (its held-out images are spread over every cell)."""
    named = list(condition.factors)
    if condition.like is not None:
        named += [name for name in main_factors(grid, condition.like) if name not in named]
    for clause in condition.test:
        for name in clause_factors(clause):
            if name not in named:
                named.append(name)
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
