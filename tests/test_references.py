"""All-data reference runs (no held-out set) through training, analysis, figures and tables, and the
"procedural stand-in" note that follows a generated dataset into every figure and table."""

import json

import numpy as np
import pytest

from compgen.analysis.arrays import load_arrays
from compgen.analysis.run_figures import draw_run_figure
from compgen.datasets.provenance import STAND_IN, data_note
from compgen.scores import read_scores
from compgen.summary import collect_scores, group_table, write_group_table
from compgen.tasks import TASKS
from compgen.training.run import train_run
from conftest import analyse_toy
from test_engine import make_run


@pytest.mark.parametrize("task", ["unsupervised", "composition", "supervised"])
def test_reference_run_scores_training_data_and_marks_test_scores_not_applicable(all_data, tmp_path, task):
    run = make_run(task, epochs=2)
    train_run(all_data / "toy.h5", all_data / "split.npz", run, tmp_path / "run", tmp_path / "ckpt")
    scores = analyse_toy(
        all_data / "toy.h5", all_data / "split.npz", tmp_path / "run", tmp_path, with_run_info=True
    )
    assert scores["heldout"] is False and scores["samples"]["test"] == 0
    assert np.isnan(scores["recon_test"]) and np.isnan(scores["r2_test_mean"])
    assert all(np.isnan(v) for v in scores["r2_test"].values())
    # Its file as the summary and claims read it: NaN where a score does not apply is accepted.
    assert np.isnan(read_scores(tmp_path / "scores.json")["recon_test"])
    assert np.isfinite(scores["r2_train_mean"]) and np.isfinite(scores["dci_disentanglement"])
    if task != "supervised":
        assert np.isfinite(scores["recon_train"])
    if task == "composition":
        assert np.isnan(scores["composition_loss_test"])
    arrays = load_arrays(tmp_path / "arrays.npz")
    assert arrays["latent_is_train"].all() and len(arrays["recon_test_inputs"]) == 0
    assert str(arrays["data_note"]) == STAND_IN  # read from the dataset's provenance
    for figure in {"reconstructions", "latents", "curves"} & set(TASKS[task].figures):
        draw_run_figure(
            figure,
            tmp_path / "arrays.npz",
            tmp_path / "run" / "train_log.csv",
            tmp_path / f"{figure}.png",
            run_info_path=tmp_path / "run" / "run.json",
        )
        assert (tmp_path / f"{figure}.png").stat().st_size > 5_000


def _scores(recon_test, heldout, source="procedural", dataset="mpi3d"):
    return {
        "preset": "fast",
        "heldout": heldout,
        "recon_train": 10.0,
        "recon_test": recon_test,
        "r2_test_mean": 0.5 if heldout else float("nan"),
        "dci_paper_disentanglement": 0.3,
        "provenance": {"data": {"dataset": dataset, "source": source}},
    }


def _entries(source):
    runs = [("cyl2vx", True, 30.0), ("none", False, float("nan"))]
    return [
        {"run_id": f"{c}-{s}", "dataset": "mpi3d", "condition": c, "model": "vae", "seed": s,
         "scores": _scores(r, h, source)}
        for c, h, r in runs
        for s in (0, 1)
    ]  # fmt: skip


def test_group_table_shows_not_applicable_for_a_reference_and_bold_only_among_conditions():
    tidy = collect_scores(_entries("official"))
    latex = group_table(
        tidy, {"recon_train": "train", "recon_test": "test", "r2_test_mean": "R2"}, set(), "t", "l"
    )
    reference = next(line for line in latex.splitlines() if "none" in line)
    condition = next(line for line in latex.splitlines() if "cyl2vx" in line)
    assert reference.count("n/a") == 2 and "--" not in reference
    assert "30.0" in condition and "n/a" not in condition


def test_stand_in_note_reaches_the_group_table(tmp_path):
    entries = _entries("procedural")
    paths = []
    for entry in entries:
        path = tmp_path / f"{entry['run_id']}.json"
        path.write_text(json.dumps(entry["scores"]))
        paths.append(path)
    runs = [
        {k: e[k] for k in ("run_id", "dataset", "condition", "seed")} | {"model_name": e["model"]}
        for e in entries
    ]
    write_group_table(runs, paths, tmp_path / "t.tex", tmp_path / "t.csv", "MPI3D", {"vae": "VAE"}, "tab:x")
    latex = (tmp_path / "t.tex").read_text()
    assert f"mpi3d ({STAND_IN})" in latex and "rendered by compgen's generator" in latex
    official = tmp_path / "official"
    official.mkdir()
    for entry, path in zip(_entries("official"), paths, strict=True):
        path.write_text(json.dumps(entry["scores"]))
    write_group_table(runs, paths, official / "t.tex", official / "t.csv", "MPI3D", {"vae": "VAE"}, "tab:x")
    assert STAND_IN not in (official / "t.tex").read_text()


@pytest.mark.parametrize(
    ("provenance", "note"),
    [
        ({"dataset": "mpi3d", "source": "procedural"}, STAND_IN),
        ({"dataset": "dsprites", "source": "procedural"}, STAND_IN),
        ({"dataset": "mpi3d", "source": "official"}, ""),
        ({"dataset": "circles", "source": "procedural"}, ""),  # generated in the papers too
    ],
)
def test_data_note(provenance, note):
    assert data_note(provenance) == note
