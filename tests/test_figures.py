import numpy as np
import pytest
from matplotlib.image import imread

from compgen.analysis.figures import (
    DPI,
    FIT_PANEL,
    ORACLE_LABEL,
    curve_panels,
    plot_hinton,
    plot_latent_representation,
    plot_reconstructions,
    plot_training_curves,
)
from compgen.summary.figure import strip_titles


def _check_png(path, figsize):
    assert path.stat().st_size > 0
    height, width = imread(path).shape[:2]
    assert (width, height) == (round(figsize[0] * DPI), round(figsize[1] * DPI))


def _twice_identical(plot, tmp_path, name):
    first, second = tmp_path / "a" / name, tmp_path / "b" / name
    plot(first)
    plot(second)
    assert first.read_bytes() == second.read_bytes()
    return first


def test_hinton(tmp_path):
    r = np.abs(np.random.default_rng(0).standard_normal((6, 4)))
    r[5] = 0.0  # a dead latent
    size = (4.0, 3.5)
    path = _twice_identical(
        lambda p: plot_hinton(r, ["shape", "scale", "posX", "posY"], p, figsize=size),
        tmp_path,
        "hinton.png",
    )
    _check_png(path, size)
    plot_hinton(np.zeros((2, 2)), ["a", "b"], tmp_path / "zeros.png")


def test_reconstructions_uint8_and_float_sections(tmp_path):
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    test = rng.random((3, 16, 16, 1))
    sections = {"train": (train, train[::-1]), "test": (test, np.clip(test + 0.2, 0, 1))}
    size = (8.0, 2.5)
    path = _twice_identical(
        lambda p: plot_reconstructions(sections, p, title="run", figsize=size),
        tmp_path,
        "recons.png",
    )
    _check_png(path, size)


def test_reconstructions_rejects_mismatched_shapes(tmp_path):
    with pytest.raises(ValueError, match="differ"):
        plot_reconstructions({"x": (np.zeros((2, 4, 4, 1)), np.zeros((3, 4, 4, 1)))}, tmp_path / "x.png")


def _two_factor_latents(seed=2):
    rng = np.random.default_rng(seed)
    classes = np.array([(a, b) for a in range(3) for b in range(6) for _ in range(40)])
    z = np.column_stack([classes[:, 1] / 5.0, classes[:, 0] / 2.0, np.zeros(len(classes))])
    z[:, :2] += 0.03 * rng.standard_normal((len(classes), 2))
    train = ~((classes[:, 0] == 1) & (classes[:, 1] >= 3))
    return z, classes, train


def test_latent_representation(tmp_path):
    z, classes, train = _two_factor_latents()
    size = (5.5, 4.5)
    path = _twice_identical(
        lambda p: plot_latent_representation(z, classes, train, (0, 1), (1, 0), ["shape", "posX"], p),
        tmp_path,
        "latents.png",
    )
    _check_png(path, size)


def test_latent_representation_axes_follow_the_original():
    """The original's latent_rep_plot (mmrl/lost-in-latent-space scripts/ingredients/analysis.py
    lines 368-369, 394-405) draws its factor1's latent on the y-axis, factor2's on the x-axis, and
    colours the training contours by factor1's class: the first of `factor_axes` is the y-axis."""
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    from compgen.analysis.figures import draw_latent_representation

    z, classes, train = _two_factor_latents()
    z[:, 0] += 100.0  # latent 0 (matched to factor 1 below) far from latent 1
    oracle = np.array([[[100.5, 0.25]]])  # one cross, (latent 0, latent 1) as latent_axes orders it
    ax = Figure().add_subplot()
    scale = draw_latent_representation(
        ax, z, classes, train, (1, 0), (0, 1), ["shape", "posX"], oracle_samples=oracle
    )
    assert ax.get_ylabel() == "z0 (matched to posX)" and ax.get_xlabel() == "z1 (matched to shape)"
    assert ax.get_ylim()[0] > 90 and ax.get_xlim()[1] < 10  # latent 0 on y, latent 1 on x
    (cross,) = [c for c in ax.collections if c.get_label() == ORACLE_LABEL]
    np.testing.assert_allclose(cross.get_offsets(), [[0.25, 100.5]])
    # Contours coloured by the first factor's class (posX, 6 classes), as the original's dim1_palette.
    assert scale.norm.vmax == 5
    colours = {tuple(to_rgba(c.get_edgecolor()[0])) for c in ax.collections if c.get_label() != ORACLE_LABEL}
    assert {tuple(scale.to_rgba(k)) for k in range(6)} <= colours


def test_latent_representation_degenerate_inputs(tmp_path):
    z, classes, train = _two_factor_latents()
    # Constant latents on both axes.
    plot_latent_representation(z, classes, train, (0, 1), (2, 2), ["a", "b"], tmp_path / "const.png")
    # Single-point groups, and every point held out.
    few = np.array([[0, 0], [1, 1], [2, 0]])
    plot_latent_representation(
        np.ones((3, 2)), few, np.array([True, True, False]), (0, 1), (0, 1), ["a", "b"], tmp_path / "few.png"
    )
    plot_latent_representation(
        z, classes, np.zeros(len(z), bool), (0, 1), (0, 1), ["a", "b"], tmp_path / "all_test.png"
    )
    # Non-finite latents (a diverged model), and all of them non-finite.
    z_nan = z.copy()
    z_nan[::7, 0] = np.nan
    plot_latent_representation(z_nan, classes, train, (0, 1), (0, 1), ["a", "b"], tmp_path / "nan.png")
    plot_latent_representation(
        np.full_like(z, np.inf), classes, train, (0, 1), (0, 1), ["a", "b"], tmp_path / "inf.png"
    )
    for name in ("const.png", "few.png", "all_test.png", "nan.png", "inf.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_training_curves(tmp_path):
    csv = tmp_path / "train_log.csv"
    epochs = np.arange(1, 11)
    lines = ["epoch,loss,val_loss,kl,lr,phase"]
    lines += [f"{e},{100 / e},{120 / e},{0.1 * e},0.001,train" for e in epochs]
    csv.write_text("\n".join(lines) + "\n")
    size = (7.0, 5.0)
    path = _twice_identical(lambda p: plot_training_curves(csv, p, figsize=size), tmp_path, "curves.png")
    _check_png(path, size)


def test_the_fit_probe_shares_one_panel_beside_the_losses(tmp_path):
    columns = ["recon", "loss", "val_recon", "fit_shape", "fit_posX"]
    assert curve_panels(columns) == {
        "recon": ["recon", "val_recon"],
        "loss": ["loss"],
        FIT_PANEL: ["fit_shape", "fit_posX"],
    }
    csv = tmp_path / "train_log.csv"
    rows = [f"{e},{100 / e},{110 / e},{90 / e},{0.1 * e},{-0.05 + 0.09 * e}" for e in range(1, 6)]
    csv.write_text("epoch,recon,loss,val_recon,fit_shape,fit_posX\n" + "\n".join(rows) + "\n")
    _check_png(
        _twice_identical(lambda p: plot_training_curves(csv, p), tmp_path, "curves.png"), (3.6 * 3, 2.8)
    )


def test_pdf_output_is_reproducible(tmp_path):
    r = np.eye(3)
    _twice_identical(lambda p: plot_hinton(r, ["a", "b", "c"], p), tmp_path, "hinton.pdf")


def test_group_strip_titles_tell_a_regressor_from_an_all_data_reference():
    images, none = np.zeros((2, 8, 8, 1)), np.zeros((0, 8, 8, 1))
    arrays = lambda train, test: {"recon_train_inputs": train, "recon_test_inputs": test}  # noqa: E731
    assert strip_titles("VAE", arrays(images, images)) == ("VAE: training", "held out")
    assert strip_titles("VAE", arrays(images, none)) == (
        "VAE: training",
        "held out: none (all-data reference)",
    )
    assert strip_titles("Regressor", arrays(none, none)) == (
        "Regressor: no reconstructions (the model renders no images)",
        "",
    )


def test_hinton_run_figure_draws_the_chosen_dci_variant(tmp_path, monkeypatch):
    """`analysis.dci` picks the importance matrix the per-run Hinton figure draws; analysis files
    that predate the variants fall back to the standard matrix, labelled as such."""
    from compgen.analysis import figures, run_figures

    arrays = {
        "importance": np.full((3, 2), 1.0),
        "importance_paper": np.full((3, 2), 2.0),
        "importance_iclr": np.full((3, 2), 3.0),
        "importance_factors": np.array(["a", "b"]),
    }
    np.savez(tmp_path / "analysis.npz", **arrays)
    old = {k: v for k, v in arrays.items() if k in ("importance", "importance_factors")}
    np.savez(tmp_path / "old.npz", **old)
    drawn = []
    monkeypatch.setattr(
        figures, "plot_hinton", lambda r, names, path, label="": drawn.append((r[0, 0], label))
    )
    for dci in ("standard", "neurips", "iclr"):
        run_figures.draw_run_figure("hinton", tmp_path / "analysis.npz", None, tmp_path / "h.png", dci=dci)
    run_figures.draw_run_figure("hinton", tmp_path / "old.npz", None, tmp_path / "h.png", dci="iclr")
    assert drawn == [(1.0, "DCI"), (2.0, "NeurIPS code's DCI"), (3.0, "ICLR code's DCI"), (1.0, "DCI")]
    with pytest.raises(ValueError, match="unknown DCI variant"):
        run_figures.draw_run_figure("hinton", tmp_path / "analysis.npz", None, tmp_path / "h.png", dci="x")


def test_the_reconstructions_figure_shows_the_first_n_images_the_analysis_kept(tmp_path, monkeypatch):
    """analysis.n_images is the figure's choice among the RECON_KEPT reconstructions analysis.npz
    keeps (the schema's maximum), so changing it redraws the figure and reruns no analysis."""
    import yaml

    from compgen.analysis import figures, run_figures
    from compgen.analysis.evaluate import RECON_KEPT
    from conftest import SCHEMA

    images = np.arange(5 * 4 * 4).reshape(5, 4, 4, 1).astype(np.uint8)
    np.savez(
        tmp_path / "analysis.npz",
        recon_train_inputs=images,
        recon_train_outputs=images[::-1],
        recon_test_inputs=images[1:],
        recon_test_outputs=images[1:],
    )
    drawn = []
    monkeypatch.setattr(figures, "plot_reconstructions", lambda sections, path: drawn.append(sections))
    for n in (3, None):
        run_figures.draw_run_figure(
            "reconstructions", tmp_path / "analysis.npz", None, tmp_path / "r.png", n_images=n
        )
    shown, everything = drawn
    np.testing.assert_array_equal(shown["training combinations"][0], images[:3])
    np.testing.assert_array_equal(shown["training combinations"][1], images[::-1][:3])
    np.testing.assert_array_equal(shown["held-out combinations"][0], images[1:4])
    assert (
        len(everything["training combinations"][0]) == 5 and len(everything["held-out combinations"][0]) == 4
    )
    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["properties"]["analysis"]["properties"]["n_images"]["maximum"] == RECON_KEPT


def test_a_figure_declares_the_analysis_settings_it_reads():
    """Only the settings a figure declares reach its job (rules/common.smk figure_settings), so it
    must declare each it reads, and only known ones."""
    from compgen.analysis.run_figures import FIGURES, SETTINGS, RunFigure, _check_figure
    from compgen.registry import RegistryError

    assert FIGURES["reconstructions"].settings == ("n_images",) and FIGURES["hinton"].settings == ("dci",)
    assert all(set(FIGURES[name].settings) <= set(SETTINGS) for name in FIGURES)
    with pytest.raises(
        RegistryError, match=r"figure 'x': settings \('colour',\) must be a tuple of dci, n_images"
    ):
        _check_figure(
            "x", RunFigure("caption", lambda arrays, out_path, **settings: None, settings=("colour",))
        )
