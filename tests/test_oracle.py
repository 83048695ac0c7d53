"""The latent oracle: where held-out combinations should land, and how far the encoder puts them."""

import json

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from compgen.analysis.arrays import latent_plot_inputs, load_arrays
from compgen.analysis.evaluate import PRESETS, AnalysisInputs, figure_arrays, sample, score_run
from compgen.analysis.figures import ORACLE_LABEL, draw_latent_representation, plot_latent_representation
from compgen.analysis.oracle import (
    N_ORACLE_SAMPLES,
    expected_test_arrays,
    fit_oracle,
    latent_error,
    latent_factors,
)
from compgen.analysis.run_figures import draw_run_figure
from compgen.datasets.store import check_dataset
from compgen.losses import reconstruction_per_image
from compgen.metrics import representation
from compgen.tasks import get_task, load_trained
from compgen.training.run import train_run
from conftest import analyse_toy
from test_engine import make_run

NOISE = 0.1
REPEATS = 100  # images per (x, y) combination


def synthetic(shift: float = 0.0, train_x_below: int | None = None):
    """An 8 x 8 grid of (x, y), REPEATS images per combination, latents a fixed linear function of
    the factors plus noise: z0 = 2x + 1, z1 = -y, z2 = pure noise (codes nothing). Held out: the
    corner x >= 5 and y >= 5 (or, with `train_x_below`, every x from there on: an extrapolation).
    `shift` moves z1 of held-out images: an encoder that misplaces them."""
    rng = np.random.default_rng(0)
    classes = np.repeat(
        np.stack(np.meshgrid(range(8), range(8), indexing="ij"), -1).reshape(-1, 2), REPEATS, 0
    )
    true = np.stack([2.0 * classes[:, 0] + 1.0, -classes[:, 1].astype(float)], 1)
    z = np.concatenate(
        [true + NOISE * rng.standard_normal(true.shape), rng.standard_normal((len(true), 1))], 1
    )
    if train_x_below is None:
        held = (classes[:, 0] >= 5) & (classes[:, 1] >= 5)
    else:
        held = classes[:, 0] >= train_x_below
    z[held, 1] += shift
    return classes, true, z, held


def fitted_oracle(classes, z, held):
    # The DCI matching finds z0 for x and z1 for y; the noise latent stays unmatched.
    matching = representation.dci(z[~held], classes[~held])["matching"]
    assert matching == [0, 1]
    return fit_oracle(z[~held], classes[~held], latent_factors(matching, [0, 1], 3), (8, 8))


def test_a_correct_encoder_places_held_out_images_as_well_as_training_images():
    classes, true, z, held = synthetic()
    oracle = fitted_oracle(classes, z, held)
    mean, std = oracle.predict(classes[held])
    # Each x or y value has at least 300 training images: the oracle mean is the true latent up to
    # NOISE / sqrt(300) ~ 0.006, far inside 0.05; the std is the per-value noise itself.
    np.testing.assert_allclose(mean[:, :2], true[held], atol=0.05)
    np.testing.assert_allclose(std[:, :2], NOISE, rtol=0.15)
    # The unmatched latent sits at its training mean with its training spread.
    np.testing.assert_allclose(mean[:, 2], z[~held, 2].mean())
    np.testing.assert_allclose(std[:, 2], z[~held, 2].std(ddof=1))
    error = latent_error(oracle, z[~held], classes[~held], z[held], classes[held])
    # Distances are chi with 2 degrees of freedom (mean 1.25, sd 0.66): over 900 held-out and 5500
    # training images the ratio's standard error is about 0.02, so 0.1 is five of them.
    assert error["latent_error_test"] == pytest.approx(1.0, abs=0.1)
    assert error["latent_error_train_distance"] == pytest.approx(np.sqrt(np.pi / 2), rel=0.05)
    assert error["oracle_test_excluded"] == 0


def test_an_encoder_that_misplaces_held_out_images_has_a_large_latent_error():
    classes, true, z, held = synthetic(shift=3.0)
    oracle = fitted_oracle(classes, z, held)
    error = latent_error(oracle, z[~held], classes[~held], z[held], classes[held])
    # 3 / NOISE = 30 oracle standard deviations off, against about 1.25 for training images.
    assert error["latent_error_test"] > 10
    # The oracle still says where they belong: it is fitted on training images only.
    np.testing.assert_allclose(oracle.predict(classes[held])[0][:, 1], true[held, 1], atol=0.05)


def test_unseen_values_have_no_oracle_and_are_counted():
    classes, _, z, held = synthetic(train_x_below=6)  # x = 6, 7 never trained on
    oracle = fitted_oracle(classes, z, held)
    mean, _ = oracle.predict(classes[held])
    assert np.isnan(mean[:, 0]).all() and np.isfinite(mean[:, 1:]).all()
    error = latent_error(oracle, z[~held], classes[~held], z[held], classes[held])
    assert error["oracle_test_excluded"] == held.sum()
    assert np.isnan(error["latent_error_test"]) and np.isfinite(error["latent_error_train_distance"])


def test_expected_test_distribution_arrays_and_overlay(tmp_path):
    classes, true, z, held = synthetic()
    oracle = fitted_oracle(classes, z, held)
    arrays = expected_test_arrays(oracle, classes[held], (0, 1), (0, 1), seed=4)
    assert arrays["oracle_combinations"].tolist() == [[x, y] for x in (5, 6, 7) for y in (5, 6, 7)]
    expected = np.stack(
        [2.0 * arrays["oracle_combinations"][:, 0] + 1, -arrays["oracle_combinations"][:, 1]], 1
    )
    np.testing.assert_allclose(arrays["oracle_mean"], expected, atol=0.05)
    np.testing.assert_allclose(arrays["oracle_std"], NOISE, rtol=0.15)
    assert arrays["oracle_samples"].shape == (9, N_ORACLE_SAMPLES, 2)
    # Seeded: the same seed draws the same samples, another seed others.
    again = expected_test_arrays(oracle, classes[held], (0, 1), (0, 1), seed=4)
    other = expected_test_arrays(oracle, classes[held], (0, 1), (0, 1), seed=5)
    np.testing.assert_array_equal(arrays["oracle_samples"], again["oracle_samples"])
    assert not np.array_equal(arrays["oracle_samples"], other["oracle_samples"])
    # Swapped plot axes: a latent matched to a factor outside the pair gives the mixture over its images.
    swapped = expected_test_arrays(oracle, classes[held], (0, 1), (2, 0), seed=4)
    np.testing.assert_allclose(swapped["oracle_std"][:, 0], z[~held, 2].std(ddof=1))

    inputs = {
        "z": z,
        "factor_classes": classes,
        "train_mask": ~held,
        "factor_axes": (0, 1),
        "latent_axes": (0, 1),
        "factor_names": ["x", "y"],
    }
    fig = Figure()
    ax = fig.add_subplot()
    draw_latent_representation(ax, **inputs, oracle_samples=arrays["oracle_samples"])
    overlay = [c for c in ax.collections if c.get_label() == ORACLE_LABEL]
    assert len(overlay) == 1 and len(overlay[0].get_offsets()) == 9 * N_ORACLE_SAMPLES
    assert ORACLE_LABEL in [t.get_text() for t in ax.get_legend().get_texts()]
    plot_latent_representation(**inputs, oracle_samples=arrays["oracle_samples"], path=tmp_path / "l.png")
    assert (tmp_path / "l.png").stat().st_size > 5_000
    # Analysis files from before the oracle have no such key: the plot draws without the overlay.
    old = {
        "latents": z,
        "latent_classes": classes,
        "latent_is_train": ~held,
        "factor_axes": np.array([0, 1]),
        "latent_axes": np.array([0, 1]),
        "factor_names": np.array(["x", "y"]),
    }
    fig = Figure()
    ax = fig.add_subplot()
    draw_latent_representation(ax, **latent_plot_inputs(old))
    assert not [c for c in ax.collections if c.get_label() == ORACLE_LABEL]


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """Tiny models of three tasks on the toy corner split, and the analysis inputs."""
    dataset, split = data
    root = tmp_path_factory.mktemp("oracle")
    models = {}
    for task in ("unsupervised", "composition", "supervised"):
        train_run(dataset, split, make_run(task, epochs=2), root / task, root / f"{task}-ckpt")
        models[task] = load_trained(root / task / "model.pt")[0]
    with np.load(split) as s:
        train, test = s["train"], s["test"]
    inputs = AnalysisInputs(str(dataset), check_dataset(dataset), train, test, "bce", PRESETS["fast"], seed=0)
    return models, inputs


@pytest.mark.parametrize("task", ["unsupervised", "composition"])
def test_decoded_oracle_is_scored_beside_recon_test(trained, task):
    models, inputs = trained
    model = models[task]
    scores, fitted = score_run(model, get_task(task), inputs, np.random.default_rng(0))
    for key in (
        "recon_test_oracle",
        "recon_train_oracle",
        "latent_error_test",
        "latent_error_train_distance",
    ):
        assert 0 < scores[key] < np.inf, key
    assert scores["oracle_test_excluded"] == 0  # every x, y and size value is trained on
    ratio = scores["latent_error_test_distance"] / scores["latent_error_train_distance"]
    assert scores["latent_error_test"] == pytest.approx(ratio)
    # recon_test_oracle is the model's own loss of its decoded oracle latents on the held-out images.
    test = np.sort(inputs.test)  # n_test exceeds the 4 held-out images: all of them are sampled
    mean, _ = fitted["oracle"].predict(inputs.grid.classes(test))
    with torch.no_grad():
        logits = model.decode(torch.as_tensor(mean, dtype=torch.float32))
    expected = reconstruction_per_image(logits, inputs.images(test), "bce").mean().item()
    assert scores["recon_test_oracle"] == pytest.approx(expected, rel=1e-5)


def test_oracle_samples_leave_the_other_figure_samples_unchanged(trained):
    models, inputs = trained
    model, task = models["unsupervised"], get_task("unsupervised")
    rng = np.random.default_rng(0)
    _, fitted = score_run(model, task, inputs, rng)
    # The oracle draws nothing from `rng`: it is where the two samples alone leave it.
    reference = np.random.default_rng(0)
    sample(inputs.train, inputs.sizes["n_train"], reference)
    sample(inputs.test, inputs.sizes["n_test"], reference)
    assert rng.bit_generator.state == reference.bit_generator.state
    state = rng.bit_generator.state
    arrays = figure_arrays(model, task, inputs, ["x", "y"], fitted, rng, 2)
    rng.bit_generator.state = state
    without = figure_arrays(model, task, inputs, ["x", "y"], {**fitted, "oracle": None}, rng, 2)
    np.testing.assert_array_equal(arrays["latents"], without["latents"])
    np.testing.assert_array_equal(arrays["recon_test_inputs"], without["recon_test_inputs"])
    # The held-out corner: x, y in {2, 3} (with size 1), four combinations of the two main factors.
    assert arrays["oracle_combinations"].tolist() == [[2, 2], [2, 3], [3, 2], [3, 3]]
    assert np.isfinite(arrays["oracle_samples"]).all() and len(without["oracle_samples"]) == 0


def test_a_regressor_has_no_decoded_oracle(trained):
    models, inputs = trained
    scores, _ = score_run(models["supervised"], get_task("supervised"), inputs, np.random.default_rng(0))
    assert np.isnan(scores["recon_test_oracle"]) and np.isnan(scores["recon_train_oracle"])
    # Its predictions are a representation: how far it misplaces held-out images is still measured.
    assert 0 < scores["latent_error_test"] < np.inf


def test_an_all_data_reference_has_no_oracle_test_scores(all_data, tmp_path):
    train_run(
        all_data / "toy.h5", all_data / "split.npz", make_run(epochs=1), tmp_path / "run", tmp_path / "c"
    )
    scores = analyse_toy(all_data / "toy.h5", all_data / "split.npz", tmp_path / "run", tmp_path, n_images=2)
    for key in ("recon_test_oracle", "latent_error_test", "latent_error_test_distance"):
        assert np.isnan(scores[key]), key
    assert np.isfinite(scores["recon_train_oracle"]) and np.isfinite(scores["latent_error_train_distance"])
    assert np.isnan(json.loads((tmp_path / "scores.json").read_text())["recon_test_oracle"])
    arrays = load_arrays(tmp_path / "arrays.npz")
    assert arrays["oracle_samples"].shape == (0, N_ORACLE_SAMPLES, 2)
    draw_run_figure(
        "latents", tmp_path / "arrays.npz", tmp_path / "run" / "train_log.csv", tmp_path / "l.png"
    )
    assert (tmp_path / "l.png").stat().st_size > 5_000
