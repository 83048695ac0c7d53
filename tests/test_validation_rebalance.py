"""Model selection and rebalancing as the original computed them.

The original is github:mmrl/lost-in-latent-space; file:line references below are to its HEAD."""

import math

import numpy as np
import pytest
import torch
import yaml

from compgen.batches import TripletSampler, balanced_weights
from compgen.config import load_schema
from compgen.grid import Factor, Grid
from compgen.study import Study, StudyError
from compgen.tasks import TASKS, TrainingData
from compgen.training.run import VALIDATION_KINDS, setup_run, summarise, validation_split
from conftest import load_config
from test_engine import make_run

# shape x 40 x 50 with a recomb2range-like hole: shape 1 never with y above 9, so the training
# subset holds 2000, 400 and 2000 images of shapes 0, 1 and 2.
SIZES = (3, 40, 50)
GRID = Grid(
    (
        Factor("shape", (1.0, 2.0, 3.0)),
        Factor("x", tuple(float(v) for v in range(SIZES[1]))),
        Factor("y", tuple(float(v) for v in range(SIZES[2]))),
    ),
    (64, 64, 1),
)


def training_data(rebalance=None) -> TrainingData:
    """A training subset without images: what the epoch samplers read."""
    classes = GRID.all_classes()
    classes = classes[~((classes[:, 0] == 1) & (classes[:, 2] > 9))]
    rows = np.arange(len(classes))
    return TrainingData(
        grid=GRID,
        train_flat=GRID.index(classes),
        classes=classes,
        fit=rows,
        val=rows[:0],
        images=lambda r: r,
        factors=torch.zeros(0),
        recon="bce",
        device=torch.device("cpu"),
        seed=11,
        rebalance=rebalance,
    )


def value_shares(values: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(values, minlength=k) / len(values)


# -- rebalancing ---------------------------------------------------------------------------


def test_weights_are_the_originals_by_hand():
    """The original's `ImbalancedSampler` (src/dataset/wrappers.py:161-175) counts each label among
    the dataset's rows with pandas `value_counts` (:171) and weighs a row by 1 / the count of its
    label (:173) as float64 (:175); `get_balanced_sampler` (:59-62) takes the labels from the
    factor's column of the (training-subset) dataset. On labels 1, 2, 2, 3, 3, 3 by hand: counts
    1, 2, 3, so weights 1, 1/2, 1/2, 1/3, 1/3, 1/3, and each label gets a third of the draws."""
    labels = np.array([3.0, 2.0, 1.0, 3.0, 2.0, 3.0])
    weights = balanced_weights(labels)
    assert weights.dtype == torch.float64
    assert weights.tolist() == pytest.approx([1 / 3, 1 / 2, 1.0, 1 / 3, 1 / 2, 1 / 3])
    p = weights / weights.sum()
    assert [float(p[labels == v].sum()) for v in (1.0, 2.0, 3.0)] == pytest.approx([1 / 3] * 3)

    # On a grid: the factor's classes among the fitted rows (shape 1 has 400 rows, the others 2000).
    data = training_data("shape")
    w = data.fit_weights.numpy()
    shape = data.classes[:, 0]
    assert np.allclose(w[shape == 1], 1 / 400) and np.allclose(w[shape != 1], 1 / 2000)
    assert training_data().fit_weights is None


def test_rebalanced_batches_make_values_equally_frequent():
    """The original draws `torch.multinomial(weights, len(dataset), replacement=True)` per epoch
    (src/dataset/wrappers.py:177-179) instead of shuffling (scripts/ingredients/training.py:61,
    92-94), so over epochs every value of the factor is drawn equally often. Here: shapes drawn in
    proportion 5:1:5 without rebalancing, a third each with it (200,000 draws, seeded)."""
    task = TASKS["unsupervised"]
    data = training_data("shape")
    n = data.fit.size
    draws = np.concatenate(
        [
            torch.cat(list(task.epoch_batches(data, 1000, math.ceil(n / 1000))(e))).numpy()
            for e in range(1, 51)
        ]
    )
    assert len(draws) == 50 * n == 220_000
    shares = value_shares(data.classes[draws, 0], 3)
    assert np.abs(shares - 1 / 3).max() < 0.005

    plain = training_data()
    rows = np.concatenate(list(task.epoch_batches(plain, 1000, math.ceil(n / 1000))(1)))
    assert np.sort(rows).tolist() == list(range(n))  # without rebalancing: a permutation
    assert value_shares(plain.classes[rows, 0], 3) == pytest.approx([5 / 11, 1 / 11, 5 / 11])


def test_rebalanced_composition_references_make_values_equally_frequent():
    """The original's composition data set is a `TripletDataset` whose item idx is the reference
    image (src/dataset/tuples.py:171-172), rebalanced by the same sampler over its rows
    (tuples.py:98-101), so the references' values of the factor are equally frequent; targets and
    commands follow from the references. Ours weighs `TripletSampler`'s reference draw."""
    data = training_data("shape")
    batches = TASKS["composition"].epoch_batches(data, 50_000, 4)
    refs = torch.cat([t.ref for t in batches(1)]).numpy()
    assert np.abs(value_shares(data.classes[refs, 0], 3) - 1 / 3).max() < 0.005

    # The sampler's parameter alone, on a grid with a lonely code that is never a reference.
    train = np.array([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [2, 3]])
    weights = balanced_weights(train[:, 0])
    sampler = TripletSampler(train, (3, 4), torch.Generator().manual_seed(0), ref_weights=weights)
    ref = sampler.sample(90_000).ref.numpy()
    assert 5 not in ref  # (2, 3) has no other valid value in any factor
    # Eligible rows keep their weights 1/3, 1/3, 1/3, 1/2, 1/2: values 0 and 1 in proportion 1:1.
    assert value_shares(train[ref, 0], 3) == pytest.approx([0.5, 0.5, 0.0], abs=0.005)
    with pytest.raises(ValueError, match="5 reference weights for 6 training codes"):
        TripletSampler(train, (3, 4), torch.Generator(), ref_weights=weights[:5])


@pytest.mark.parametrize("task", ["unsupervised", "composition"])
def test_rebalanced_epochs_replay_exactly(task):
    """Epoch e's draw depends on (seed, e) alone, so a resumed run replays it (the engine test
    trains through an interruption with rebalancing on)."""
    data = training_data("shape")

    def epoch(batches, e):
        out = list(batches(e))
        return torch.cat([b.ref if task == "composition" else b for b in out])

    a, b = TASKS[task].epoch_batches(data, 256, 3), TASKS[task].epoch_batches(data, 256, 3)
    assert torch.equal(epoch(a, 2), epoch(b, 2)) and torch.equal(epoch(a, 2), epoch(a, 2))
    assert not torch.equal(epoch(a, 2), epoch(a, 3))


def test_study_refuses_an_unknown_rebalance_factor(tmp_path):
    base = {
        "datasets": {"circles": {}},
        "models": {"vae_fixint": {"task": "composition", "op": "fixint"}},
        "experiments": [
            {
                "name": "circles",
                "dataset": "circles",
                "conditions": ["midpos"],
                "models": ["vae_fixint"],
                "seeds": [0],
            }
        ],
    }

    def study(**changes):
        config = {**base, **changes}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        return Study(load_config(path))

    assert study(training={"rebalance": "y"}).runs[0].spec["training"]["rebalance"] == "y"
    with pytest.raises(
        StudyError, match=r"config key training\.rebalance: unknown factor 'shape'.*allowed: x, y"
    ):
        study(training={"rebalance": "shape"})
    model = {"task": "composition", "op": "fixint", "training": {"rebalance": "colour"}}
    with pytest.raises(
        StudyError, match=r"config key models\.vae_fixint\.training\.rebalance: unknown factor"
    ):
        study(models={"vae_fixint": model})
    experiment = {**base["experiments"][0], "training": {"rebalance": "colour"}}
    with pytest.raises(StudyError, match=r"config key experiments\[0\] \(circles\)\.training\.rebalance"):
        study(experiments=[experiment])


def test_the_study_rebalances_the_runs_the_original_did():
    """scripts/bin/run-composition.sh:426-431 (and the interp variant, :419-424) trains the MPI3D
    cyl2vx (four_shapes, fix_hx) WAE with `training.rebalance_dataset=True`, which rebalances the
    factor named like `shape` (scripts/ingredients/training.py:92, wrappers.py:60); its bkg2cyl
    WAEs and every VAE train without (run-composition.sh:447-480); the retrain runs rebalance by
    shape (run-retrain.sh)."""
    from conftest import ROOT

    study = Study(load_config(ROOT / "config/config.yaml"))
    rebalanced = {(r.condition, r.model) for r in study.runs if r.spec["training"]["rebalance"]}
    assert {("cyl2vx+four_shapes+fix_hx", m) for m in ("wae_fixint_mpi", "wae_interp_mpi")} <= rebalanced
    composition = {(c, m) for c, m in rebalanced if "retrained" not in m}
    # The cyl2vx WAEs and their iid control, trained alike.
    assert all(c.startswith(("cyl2vx+", "iid_like_cyl2vx+")) and m.startswith("wae_") for c, m in composition)
    assert {m for _, m in rebalanced - composition} == {
        f"vae_{op}_{half}_retrained" for op in ("fixint", "interp") for half in ("encoder", "decoder")
    }
    assert {r.spec["training"]["rebalance"] for r in study.runs} == {None, "object_shape", "shape"}


# -- validation ----------------------------------------------------------------------------


def test_validation_kinds_are_the_schemas():
    training = load_schema()["properties"]["training"]["properties"]
    assert training["validation"]["enum"] == list(VALIDATION_KINDS)
    assert training["validation"]["default"] == "train_sample" and training["val_fraction"]["default"] == 0.2


def test_train_sample_validation_rows_are_also_fitted():
    """The original selects the best model on the training loader itself: `init_loader` without
    `train_val_split` returns the same loader twice (scripts/ingredients/training.py:91-97), and
    the validator scores ceil(0.2 x its batches) of it after every epoch
    (scripts/experiments/composition.py:165-168, disent.py:183-186), the best kept by that score
    (composition.py:177-188). Its supervised regressors split off 20 % instead
    (scripts/configs/training.py:172, training.py:76-89): our `holdout`."""
    fit, val = validation_split(1000, 0.2, 5, "train_sample")
    assert fit.tolist() == list(range(1000)) and val.size == 200 and np.isin(val, fit).all()
    assert np.all(np.diff(val) > 0)
    fit_h, val_h = validation_split(1000, 0.2, 5, "holdout")
    assert np.array_equal(val_h, val)  # the same rows select in both kinds
    assert not np.isin(val_h, fit_h).any() and np.union1d(fit_h, val_h).tolist() == list(range(1000))
    assert not np.array_equal(validation_split(1000, 0.2, 6)[1], val)  # seeded
    assert validation_split(3, 0.9, 0, "train_sample")[1].size == 3
    assert validation_split(3, 0.9, 0, "holdout")[1].size == 2
    with pytest.raises(ValueError, match="training.validation: unknown kind 'both'"):
        validation_split(10, 0.2, 0, "both")


@pytest.mark.parametrize("kind", ["train_sample", "holdout"])
def test_composition_validation_targets_the_sample_and_run_json_says_so(data, kind):
    """Validation triplets take their target from the validation rows, reference and command from
    the whole training subset (the original drew its validation triplets from the whole training
    data set, whose item is the reference: src/dataset/tuples.py:171-201)."""
    dataset, split = data
    training = setup_run(dataset, split, make_run("composition", validation=kind), progress=False)
    d = training.data
    n = d.train_flat.size
    assert (d.fit.size, d.val.size) == ((28, 6) if kind == "train_sample" else (22, 6))
    triplets = training.task.validation_set(d)
    assert triplets.target.numel() == 6 and set(triplets.target.tolist()) <= set(d.val.tolist())
    refs, cmds = triplets.ref.numpy(), triplets.cmd.numpy()
    assert min(refs.min(), cmds.min()) >= 0 and max(refs.max(), cmds.max()) < n
    assert not np.isin(refs, d.val).all()  # references come from beyond the validation rows
    summary = summarise(training, 0)
    assert summary["validation"] == {
        "kind": kind,
        "n": 6,
        "fraction": 0.2,
        "trained_on": kind == "train_sample",
    }
    assert summary["n_train"] == d.fit.size and summary["run"]["training"]["validation"] == kind
