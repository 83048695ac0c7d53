"""The ICLR 2021 figures of a dataset (compgen.summary.iclr_figures, iclr_plots): what each draws is
the scores and arrays it comes from, the ground-truth decoder at D = 1; the ICLR study plans them."""

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from compgen.analysis.dci_choice import DCI_PREFIXES, dci_key
from compgen.summary.iclr_figures import GT_DECODER_D, dci_bars, nll_points, recon_panels
from compgen.summary.iclr_plots import draw_iclr_figure, model_colours
from conftest import ROOT, run_snakemake

NAN = float("nan")
# Given out of the paper's order: the figures put recombination to element first, extrapolation last.
FAMILIES = {"blank_side": "extrp", "sqr2tx": "recomb2range", "leave1out": "recomb2element"}


def scores(recon_train, recon_test, d=NAN, c=NAN):
    """A scores.json with distinct D and C for each DCI variant (variant k adds k / 100)."""
    out = {"recon_train": recon_train, "recon_test": recon_test}
    for k, variant in enumerate(DCI_PREFIXES):
        out[dci_key(variant)] = d + k / 100
        out[dci_key(variant, "completeness")] = c + k / 100
    return out


def study_runs():
    """Per condition: a VAE (2 seeds), a beta-VAE (1 seed) and a ground-truth decoder (1 seed)."""
    runs, all_scores = [], []
    for i, (condition, family) in enumerate(FAMILIES.items()):
        for model, task, label, seeds in (
            ("vae", "unsupervised", "VAE", [(100 + i, 200 + i, 0.2, 0.3), (110 + i, 260 + i, 0.4, 0.5)]),
            ("beta8", "unsupervised", "β-VAE (β=8)", [(150 + i, 400 + i, 0.7, 0.6)]),
            ("gt_decoder", "gt_decoder", "GT decoder", [(50 + i, 90 + i, NAN, NAN)]),
        ):
            for seed, (train, test, d, c) in enumerate(seeds):
                runs.append(
                    {
                        "condition": condition,
                        "family": family,
                        "model": model,
                        "label": label,
                        "task": task,
                        "seed": seed,
                    }
                )
                all_scores.append(scores(train, test, d, c))
    return runs, all_scores


@pytest.mark.parametrize("variant", list(DCI_PREFIXES))
def test_nll_points_are_seed_means_with_the_gt_decoder_at_one(variant):
    runs, all_scores = study_runs()
    drawn = nll_points(runs, all_scores, variant)
    assert drawn.conditions == ["leave1out", "sqr2tx", "blank_side"]  # the paper's panel order
    assert drawn.left_out == []
    table = drawn.table.set_index(["condition", "model", "data"]).sort_index()
    k = list(DCI_PREFIXES).index(variant)
    for i, condition in enumerate(FAMILIES):
        vae = table.loc[(condition, "vae")]
        assert vae.loc["train", "nll"] == pytest.approx((100 + i + 110 + i) / 2)
        assert vae.loc["test", "nll"] == pytest.approx((200 + i + 260 + i) / 2)
        assert list(vae["disentanglement"]) == pytest.approx([0.3 + k / 100] * 2)  # mean of 0.2, 0.4
        assert list(vae["seeds"]) == [2, 2]
        beta = table.loc[(condition, "beta8")]
        assert list(beta.loc[["train", "test"], "nll"]) == [150 + i, 400 + i]
        assert list(beta["disentanglement"]) == pytest.approx([0.7 + k / 100] * 2)
        # The decoder has no D in its scores (NaN); the figure places it at 1, as the original.
        gt = table.loc[(condition, "gt_decoder")]
        assert list(gt["disentanglement"]) == [GT_DECODER_D] * 2 == [1.0, 1.0]
        assert list(gt.loc[["train", "test"], "nll"]) == [50 + i, 90 + i]


def test_a_model_without_nll_or_d_is_named_not_drawn():
    runs = [
        {"condition": "sqr2tx", "family": "recomb2range", "model": m, "label": m, "task": t, "seed": 0}
        for m, t in (("vae", "unsupervised"), ("regressor", "supervised"), ("odd", "unsupervised"))
    ]
    drawn = nll_points(runs, [scores(10, 20, 0.5), scores(NAN, NAN, 0.9), scores(10, 30)], "standard")
    assert set(drawn.table["model"]) == {"vae"}
    assert drawn.left_out == ["sqr2tx/regressor: no reconstruction", "sqr2tx/odd: no dci_disentanglement"]
    # An all-data reference: a training point only.
    ref = [{**runs[0], "condition": "none", "family": "none"}]
    table = nll_points(ref, [scores(10, NAN, 0.5)], "standard").table
    assert list(table["data"]) == ["train"] and list(table["nll"]) == [10]


def write_scores(tmp_path, runs, all_scores):
    paths = []
    for run, s in zip(runs, all_scores, strict=True):
        path = tmp_path / f"{run['condition']}_{run['model']}_{run['seed']}.json"
        path.write_text(json.dumps(s))
        paths.append(path)
    return paths


def test_disent_vs_nll_draws_each_models_points(tmp_path):
    runs, all_scores = study_runs()
    out = tmp_path / "dsprites_disent_vs_nll.png"
    fig = draw_iclr_figure(
        "disent_vs_nll", runs, write_scores(tmp_path, runs, all_scores), [out], "neurips", title="dsprites"
    )
    table = nll_points(runs, all_scores, "neurips").table
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.collections]
    assert [ax.get_title().split("\n")[0] for ax in panels] == ["leave1out", "sqr2tx", "blank_side"]
    for ax in panels:
        condition = ax.get_title().split("\n")[0]
        drawn = np.concatenate([c.get_offsets() for c in ax.collections])
        expected = table[table["condition"] == condition][["disentanglement", "nll"]].to_numpy()
        # Per model a training then a held-out point, models in order: what the table holds.
        np.testing.assert_allclose(drawn, expected)
        assert (drawn[:, 0] == 1.0).sum() == 2  # the decoder's two points at D = 1
        assert ax.get_xlim() == (0, 1.03)
        # Each model's training and held-out points are joined by a line.
        assert len(ax.lines) == 3 and all(len(line.get_xdata()) == 2 for line in ax.lines)
    assert "NeurIPS code's DCI" in panels[0].get_xlabel()
    image = mpimg.imread(out)
    assert image.shape[0] > 300 and image.std() > 0


def test_dci_bars_draw_d_and_c_per_model(tmp_path):
    runs, all_scores = study_runs()
    out = tmp_path / "dsprites_dci_bars.png"
    fig = draw_iclr_figure("dci_bars", runs, write_scores(tmp_path, runs, all_scores), [out], "iclr")
    drawn = dci_bars(runs, all_scores, "iclr")
    # The decoders have no encoder: named, not drawn.
    assert drawn.left_out == [f"{c}/GT decoder: no encoder" for c in ("leave1out", "sqr2tx", "blank_side")]
    table = drawn.table.set_index(["condition", "model", "part"])
    assert table.loc[("sqr2tx", "vae", "disentanglement"), "value"] == pytest.approx(0.3 + 0.02)
    assert table.loc[("sqr2tx", "vae", "completeness"), "value"] == pytest.approx(0.4 + 0.02)
    assert table.loc[("sqr2tx", "vae", "completeness"), "seed_values"] == pytest.approx((0.32, 0.52))
    axes = np.array([ax for ax in fig.axes]).reshape(2, 3)
    for col, condition in enumerate(["leave1out", "sqr2tx", "blank_side"]):
        for row, part in enumerate(["disentanglement", "completeness"]):
            ax = axes[row, col]
            heights = [p.get_height() for p in ax.patches]
            assert heights == pytest.approx(
                [table.loc[(condition, m, part), "value"] for m in ("vae", "beta8")]
            )
            # A model's colour is the one it has in the NLL figure, where the decoder is drawn too.
            colours = model_colours(["VAE", "β-VAE (β=8)", "GT decoder"])
            assert [p.get_facecolor() for p in ax.patches] == [colours["VAE"], colours["β-VAE (β=8)"]]
            # The VAE's two seeds as dots on its bar; the one-seed beta-VAE has none.
            dots = np.concatenate([c.get_offsets() for c in ax.collections])
            assert list(dots[:, 1]) == pytest.approx(table.loc[(condition, "vae", part), "seed_values"])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["VAE", "β-VAE (β=8)"]
    assert mpimg.imread(out).std() > 0


def arrays(inputs, outputs, train=True):
    empty = np.zeros((0, 8, 8, 1), np.uint8)
    return {
        "recon_train_inputs": inputs if train else empty,
        "recon_train_outputs": outputs if train else empty,
        "recon_test_inputs": inputs,
        "recon_test_outputs": outputs,
    }


def test_recon_panels_show_held_out_images_over_each_models_reconstruction(tmp_path):
    rng = np.random.default_rng(0)
    image = lambda n=6: rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)  # noqa: E731
    held_out, other = image(), image()
    outputs = {m: image() for m in ("vae", "gt", "odd")}
    empty = np.zeros((0, 8, 8, 1), np.uint8)
    runs = [
        {"condition": c, "family": f, "model": m, "label": m.upper(), "task": t, "seed": 0}
        for c, f, m, t in (
            ("blank_side", "extrp", "vae", "unsupervised"),
            ("blank_side", "extrp", "gt", "gt_decoder"),
            ("blank_side", "extrp", "odd", "unsupervised"),
            ("blank_side", "extrp", "reg", "supervised"),
            ("none", "none", "vae", "unsupervised"),
        )
    ]
    all_arrays = [
        arrays(held_out, outputs["vae"]),
        arrays(held_out, outputs["gt"]),
        arrays(other, outputs["odd"]),  # analysed on other images: they get a strip of their own
        arrays(empty, empty, train=False),  # renders nothing
        {**arrays(held_out[:0], held_out[:0]), "recon_train_inputs": held_out},  # an all-data reference
    ]
    drawn = recon_panels(runs, all_arrays, n_images=4)
    assert drawn.left_out == ["blank_side/REG: renders no images", "none/VAE: no held-out images"]
    strips = drawn.table
    assert list(strips["label"]) == ["held out", "VAE", "GT", "held out (ODD)", "ODD"]
    expected = [held_out, outputs["vae"], outputs["gt"], other, outputs["odd"]]
    for strip, images in zip(strips["images"], expected, strict=True):
        np.testing.assert_array_equal(strip, images[:4])

    paths = []
    for k, a in enumerate(all_arrays):
        paths.append(tmp_path / f"{k}.npz")
        np.savez(paths[-1], **a)
    out = tmp_path / "recon_panels.png"
    fig = draw_iclr_figure("recon_panels", runs, paths, [out], "standard", title="dsprites")
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 5 * 4
    titles = [ax.get_title(loc="left") for ax in shown if ax.get_title(loc="left")]
    assert titles == list(strips["label"])
    for k, ax in enumerate(shown):
        np.testing.assert_allclose(ax.images[0].get_array(), expected[k // 4][k % 4, ..., 0] / 255.0)
    assert mpimg.imread(out).std() > 0


def test_iclr_study_plans_the_figures(tmp_path):
    plan = run_snakemake(tmp_path, "-n", "--configfile", str(ROOT / "config/iclr2021.yaml"), timeout=300)
    assert plan.returncode == 0, plan.stderr[-3000:]
    planned = {
        line.split("results/summary/iclr/")[1].strip()
        for line in plan.stdout.splitlines()
        if line.strip().startswith("output: results/summary/iclr/")
    }
    assert plan.stdout.count("rule iclr_figure:") == 9
    assert planned == {
        f"{d}_{f}.png"
        for d in ("dsprites", "shapes3d", "mpi3d")
        for f in ("disent_vs_nll", "dci_bars", "recon_panels")
    }
    # The ground-truth decoders of run-decoders.sh on ohue_whue2fhue are trained and analysed.
    for decoder in ("higgins", "kim_bn", "deep_bn"):
        assert (
            f"results/analysis/shapes3d/ohue_whue2fhue/gt_decoder_decoder{decoder}/seed0/scores.json"
            in plan.stdout
        )

    # Off by default: a study that does not ask for them plans none.
    other = run_snakemake(
        tmp_path / "tiny", "-n", "--configfile", str(ROOT / "tests/configs/tiny.yaml"), timeout=300
    )
    assert other.returncode == 0, other.stderr[-3000:]
    assert "rule group_figure:" in other.stdout  # the plan is printed, and has no ICLR figure
    assert "results/summary/iclr/" not in other.stdout and "rule iclr_figure" not in other.stdout
