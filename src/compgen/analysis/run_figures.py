"""The per-run figures, drawn from the arrays the analysis kept (no model needed), and their
registry: each `RunFigure` carries its drawing and its report caption.

Light to import (no matplotlib): the workflow reads the registry while planning, and the drawings
import the plotting code when they draw. A figure defined elsewhere joins with
`register_figure(name, RunFigure(...))` or an entry point of the group `compgen.figures`
(compgen.registry); a task lists the figures that apply to it (`Task.figures`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from compgen.analysis.dci_choice import DCI_LABELS, DCI_PREFIXES
from compgen.registry import Registry, RegistryError, resolve


@dataclass(frozen=True)
class RunFigure:
    """A per-run figure.

    `draw(arrays, out_path, **settings)` draws it from the analysis arrays (a dict of numpy arrays,
    `compgen.analysis.arrays.load_arrays`), or with `source="train_log"` `draw(train_log_path,
    out_path, **settings)` from the training log; settings are `dci` (config `analysis.dci`) and
    `n_images` (config `analysis.n_images`), which a drawing may ignore (take `**settings`). `draw`
    may be a "module:function" reference, imported when the figure is drawn. `caption` is the
    report's caption (reStructuredText), in which {model}, {seed}, {dataset} and {condition} are
    filled in. `settings` names the settings the drawing reads (of SETTINGS): only those reach its
    job, so a change to another redraws it not."""

    caption: str
    draw: Callable | str
    source: str = "arrays"
    settings: tuple[str, ...] = ()

    def drawing(self) -> Callable:
        return resolve(self.draw) if isinstance(self.draw, str) else self.draw

    def caption_for(self, model, seed, dataset, condition) -> str:
        fields = {"model": model, "seed": seed, "dataset": dataset, "condition": condition}
        return self.caption.format_map(fields)


SOURCES = ("arrays", "train_log")
# The settings a per-run figure may read, each a key of the config's `analysis` section.
SETTINGS = ("dci", "n_images")


def _check_figure(name: str, figure) -> None:
    if not isinstance(figure, RunFigure):
        raise RegistryError(
            f"figure {name!r}: expected a compgen.analysis.run_figures.RunFigure, got {type(figure).__name__}"
        )
    if figure.source not in SOURCES:
        raise RegistryError(f"figure {name!r}: source {figure.source!r} is not one of {', '.join(SOURCES)}")
    unknown = [key for key in figure.settings if key not in SETTINGS]
    if unknown or isinstance(figure.settings, str):
        raise RegistryError(
            f"figure {name!r}: settings {figure.settings!r} must be a tuple of {', '.join(SETTINGS)}"
        )
    try:
        figure.caption_for("m", 0, "d", "c")
    except (KeyError, IndexError, ValueError) as err:
        raise RegistryError(
            f"figure {name!r}: its caption may name only {{model}}, {{seed}}, {{dataset}} and "
            f"{{condition}} (write other braces twice): {err!r}"
        ) from None


def _curves(train_log_path, out_path, **settings) -> None:
    from compgen.analysis import figures

    figures.plot_training_curves(train_log_path, out_path)


def _reconstructions(arrays: dict, out_path, n_images: int | None = None, **settings) -> None:
    """The first `n_images` (config `analysis.n_images`; None: all) of the reconstructions the
    analysis kept: a sample, since the analysis keeps them in random order."""
    from compgen.analysis import figures

    k = slice(n_images)
    sections = {"training combinations": (arrays["recon_train_inputs"][k], arrays["recon_train_outputs"][k])}
    if len(arrays["recon_test_inputs"]):  # an all-data reference has no held-out combination
        sections["held-out combinations"] = (arrays["recon_test_inputs"][k], arrays["recon_test_outputs"][k])
    figures.plot_reconstructions(sections, out_path)


# The analysis arrays' importance matrix of each DCI variant (`analysis.dci`).
HINTON_ARRAYS = {"standard": "importance", "neurips": "importance_paper", "iclr": "importance_iclr"}


def _hinton(arrays: dict, out_path, dci: str = "neurips", **settings) -> None:
    from compgen.analysis import figures

    # Files written before the variants were kept hold the standard matrix only.
    key = HINTON_ARRAYS[dci] if HINTON_ARRAYS[dci] in arrays else "importance"
    label = DCI_LABELS[dci] if key == HINTON_ARRAYS[dci] else DCI_LABELS["standard"]
    figures.plot_hinton(arrays[key], list(arrays["importance_factors"]), out_path, label=label)


def _latents(arrays: dict, out_path, **settings) -> None:
    from compgen.analysis import figures
    from compgen.analysis.arrays import latent_plot_inputs

    figures.plot_latent_representation(path=out_path, **latent_plot_inputs(arrays))


def _traversals(arrays: dict, out_path, **settings) -> None:
    from compgen.analysis import figures

    figures.plot_traversals(
        arrays["traversal_images"], arrays["traversal_latents"], arrays["traversal_kl"], out_path
    )


_RUN = "**{model}** (seed {seed}) on {dataset} / {condition}"

FIGURES = Registry(
    "figure",
    {
        "curves": RunFigure(
            f"""Training curves of {_RUN}: each loss part per epoch, averaged over
the epoch's training batches, and the reconstruction loss on the validation slice (`training.val_fraction`
of the training subset, 20 % by default).
The saved model is the epoch with the lowest validation loss. With `training.fit_probe`, a panel shows the excess
reconstruction loss (loss less the image's pixel-entropy floor) of a fixed sample of training and of held-out images,
and another their ratio, the generalisation gap (dotted: no gap); neither selects the model. With
`training.patience`, the curves end where the validation loss stopped improving.""",
            _curves,
            source="train_log",
        ),
        "reconstructions": RunFigure(
            f"""Reconstructions by {_RUN}. Left: training combinations; right:
held-out combinations. In each block the top row is the input, the bottom row the model's reconstruction.
Good reconstructions on the left but not on the right mean the model did not generalise to the unseen combinations.""",
            _reconstructions,
            settings=("n_images",),
        ),
        "hinton": RunFigure(
            f"""Hinton matrix of {_RUN}: the size of each square is the importance
of a latent unit (row) for predicting a factor (column), from one Lasso regression (alpha = 0.02) per factor on
the latent means of training images, in the study's DCI variant (config ``analysis.dci``, named in the title):
z-scored latents (Eastwood & Williams; the NeurIPS code's, whose dummy targets are not drawn) or mean-centred ones
(the ICLR code's). A disentangled model has one large square per row and per column.""",
            _hinton,
            settings=("dci",),
        ),
        "latents": RunFigure(
            f"""Latent representation of {_RUN}. The axes are the two latent units matched
(Hungarian matching on the DCI importances) to the condition's two factors, the first factor's on the y-axis and the
second's on the x-axis, as the original's figures. Each coloured contour is the density of
one training combination of those two factors, coloured by the first factor's value; held-out combinations are red.
If the red points fall outside the region where their factor values would place them, the encoder already maps
unseen combinations to the wrong place (the paper's main diagnostic).
Dark-red crosses, when present, are the oracle's expected test distribution (the original's `expected_test_dist`):
samples from the mean and std, over training images, of each plotted latent given the value of its matched factor, one
cloud per held-out combination, i.e. where a disentangled encoder should put the red contours.""",
            _latents,
        ),
        "traversals": RunFigure(
            f"""Latent traversals of {_RUN}. Each row sweeps one latent unit from the 2nd
to the 98th percentile of its values over training images (left to right) while the other units keep the code of one
training image; rows are ordered by the unit's mean KL divergence to the prior (label), most informative first. A
disentangled unit changes one factor of the image; units with KL near 0 are unused.""",
            _traversals,
        ),
    },
    check=_check_figure,
)


def register_figure(name: str, figure: RunFigure) -> RunFigure:
    """Add a per-run figure under `name` (a name may be registered once)."""
    return FIGURES.register(name, figure)


def figure_caption(figure: str, model, seed, dataset, condition) -> str:
    """The report caption of a per-run figure of one run."""
    return FIGURES.get_or_error(figure).caption_for(model, seed, dataset, condition)


def draw_run_figure(
    figure: str,
    arrays_path,
    train_log_path,
    out_path: str | os.PathLike,
    run_info_path=None,
    dci: str = "neurips",
    n_images: int | None = None,
) -> None:
    """Draw one per-run figure; each carries the data's note ("procedural stand-in"), read from the
    dataset provenance the analysis kept (from the training log: the one the training recorded in
    run.json). `dci` (config `analysis.dci`) picks the DCI variant whose importances the Hinton
    matrix draws; `n_images` (config `analysis.n_images`) how many of the kept reconstructions a
    strip shows."""
    from compgen.figio import noted

    if dci not in DCI_PREFIXES:
        raise ValueError(f"unknown DCI variant {dci!r}; allowed: {', '.join(DCI_PREFIXES)}")
    spec = FIGURES.get_or_error(figure)
    draw = spec.drawing()
    if spec.source == "train_log":
        note = ""
        if run_info_path is not None:
            from compgen.datasets.provenance import data_note

            with open(run_info_path) as fh:
                note = data_note(json.load(fh)["data"])
        with noted(note):
            draw(train_log_path, out_path, dci=dci, n_images=n_images)
        return
    from compgen.analysis.arrays import load_arrays

    arrays = load_arrays(arrays_path)
    with noted(str(arrays["data_note"]) if "data_note" in arrays else ""):
        draw(arrays, out_path, dci=dci, n_images=n_images)
