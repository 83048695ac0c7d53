import json
import math

import numpy as np
import pandas as pd
import pytest

from compgen.summary import (
    GROUP_TABLE_COLUMNS,
    aggregate,
    collect_scores,
    distinct_labels,
    group_table,
    write_csv,
    write_group_table,
    write_study_csv,
    write_table,
)

RECON_TEST = {  # (model, seed) -> test reconstruction loss
    ("beta_vae", 0): 10.0,
    ("beta_vae", 1): 14.0,
    ("beta_vae", 2): 12.0,
    ("wae", 0): 8.0,
    ("wae", 1): 9.0,
    ("wae", 2): 10.0,
}


def _entries(condition="sqr2tx", models=("beta_vae", "wae")):
    entries = []
    for model in models:
        for seed in range(3):
            recon = RECON_TEST[(model, seed)]
            entries.append(
                {
                    "run_id": f"dsprites-{condition}-{model}-s{seed}",
                    "dataset": "dsprites",
                    "condition": condition,
                    "model": model,
                    "seed": seed,
                    "scores": {
                        "recon_train": recon / 2,
                        "recon_test": recon,
                        "dci_disentanglement": 0.5 if model == "wae" else 0.25,
                        "mig": 0.1 * seed,
                        "r2_test": {"posX": 0.9, "shape": None},
                        "matching": [1, 0],  # a list: skipped
                        "model_name": model,  # a string: skipped
                        "converged": True,  # a boolean: skipped
                    },
                }
            )
    return entries


def test_collect_scores_is_tidy_with_flattened_names():
    tidy = collect_scores(_entries())
    assert list(tidy.columns) == ["run_id", "dataset", "condition", "model", "seed", "metric", "value"]
    metrics = ["recon_train", "recon_test", "dci_disentanglement", "mig", "r2_test/posX", "r2_test/shape"]
    assert len(tidy) == 6 * len(metrics)
    assert set(tidy["metric"]) == set(metrics)
    assert tidy.groupby("run_id").size().eq(len(metrics)).all()
    assert math.isnan(tidy.loc[tidy["metric"] == "r2_test/shape", "value"].iloc[0])


def test_every_row_carries_its_runs_provenance():
    entries = _entries()
    for entry in entries:
        beta = 8.0 if entry["model"] == "beta_vae" else None
        entry["scores"]["preset"] = "fast"
        entry["scores"]["provenance"] = {
            "model": {"loss": entry["model"], "beta": beta, "latent_size": 10},
            "training": {"lr": 1e-4, "epochs": 100},
            "versions": {"torch": "2.14.1"},
            "data": {
                "source": "procedural",
                "generator_version": 3,
                "subsample": {"posX": 2},
                "factors": ["a", "b"],
            },
            "device": f"cpu{entry['seed'] % 2}",
        }
    tidy = collect_scores(entries)
    assert list(tidy.columns[:7]) == ["run_id", "dataset", "condition", "model", "seed", "metric", "value"]
    assert {
        "model.beta",
        "training.lr",
        "versions.torch",
        "data.source",
        "data.subsample.posX",
        "analysis.preset",
    } <= set(tidy.columns)
    row = tidy[(tidy["model"] == "beta_vae") & (tidy["metric"] == "recon_test")].iloc[0]
    assert row["model.beta"] == 8.0 and row["training.lr"] == 1e-4 and row["data.source"] == "procedural"
    assert row["data.subsample.posX"] == 2
    assert json.loads(row["data.factors"]) == ["a", "b"]  # lists as JSON text
    assert "provenance" not in set(tidy["metric"].str.split("/").str[0])
    stats = aggregate(tidy).set_index(["model", "metric"])
    assert stats.loc[("beta_vae", "recon_test"), "model.beta"] == 8.0
    assert stats.loc[("wae", "recon_test"), "training.epochs"] == 100
    # Seeds that ran on different devices: both named, not one silently kept.
    assert stats.loc[("wae", "recon_test"), "device"] == "cpu0; cpu1"


def test_aggregate_mean_std_over_seeds():
    stats = aggregate(collect_scores(_entries())).set_index(["model", "metric"])
    row = stats.loc[("beta_vae", "recon_test")]
    assert row["mean"] == pytest.approx(12.0)
    assert row["std"] == pytest.approx(2.0)  # sample std of 10, 14, 12
    assert row["n_seeds"] == 3
    assert stats.loc[("wae", "mig"), "mean"] == pytest.approx(0.1)
    assert stats.loc[("wae", "r2_test/shape"), "n_seeds"] == 0


def _table(entries):
    return group_table(
        collect_scores(entries),
        columns={"recon_test": "Recon (test)", "dci_disentanglement": "$D$", "mig": "MIG"},
        lower_is_better={"recon_test"},
        caption="dSprites sqr2tx_cent and sqr2tx",
        label="tab:dsprites_recomb",
    )


def _body_rows(latex):
    body = latex.split("\\midrule")[1].split("\\bottomrule")[0]
    return [line for line in body.strip().splitlines() if line.strip().endswith("\\\\")]


def test_group_table_rows_bold_and_syntax():
    latex = _table(_entries("sqr2tx") + _entries("sqr2tx_cent"))
    assert "\\begin{tabular}" in latex and "\\end{tabular}" in latex
    assert "\\toprule" in latex and "\\bottomrule" in latex
    assert latex.count("{") == latex.count("}")
    assert "sqr2tx\\_cent" in latex and "beta\\_vae" in latex
    assert "& $D$ &" in latex  # headings are LaTeX, not escaped
    assert "tab:dsprites_recomb" in latex  # labels are not escaped
    rows = _body_rows(latex)
    assert len(rows) == 4  # (condition, model) pairs
    for row in rows:
        cells = [c.strip() for c in row.rstrip("\\").split("&")]
        recon, disent, mig_cell = cells[3:]
        if "wae" in row:  # lower recon and higher D: both bold
            assert recon.startswith("\\textbf{9")
            assert disent.startswith("\\textbf{0.5")
        else:
            assert recon == "12.0 $\\pm$ 2.00"
            assert "\\textbf" not in disent
        # MIG ties between models (0, 0.1, 0.2 for both): both bold.
        assert mig_cell.startswith("\\textbf{0.1")


def test_group_table_single_model_not_bold_and_missing_metric():
    latex = group_table(
        collect_scores(_entries(models=("wae",))),
        columns={"recon_test": "Recon", "composition_test": "Comp"},
        lower_is_better={"recon_test", "composition_test"},
        caption="c",
        label="tab:c",
    )
    rows = _body_rows(latex)
    assert len(rows) == 1 and "\\textbf" not in rows[0]
    assert rows[0].rstrip("\\").split("&")[-1].strip() == "--"


def test_writers_are_atomic_and_roundtrip(tmp_path):
    tidy = collect_scores(_entries())
    write_csv(tidy, tmp_path / "out" / "scores.csv")
    back = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert len(back) == len(tidy)
    np.testing.assert_allclose(back["value"], tidy["value"])
    write_table("x\n", tmp_path / "out" / "t.tex")
    assert (tmp_path / "out" / "t.tex").read_text() == "x\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scores.csv", "t.tex"]


def as_written(scores: dict) -> dict:
    """`scores` as the analysis writes them: NaN for a score that does not apply, and none of the
    non-score keys _entries adds for collect_scores to skip (read_scores refuses them in a file)."""
    skipped = ("matching", "model_name", "converged")
    return {
        k: {f: math.nan if x is None else x for f, x in v.items()} if isinstance(v, dict) else v
        for k, v in scores.items()
        if k not in skipped
    }


def test_workflow_writers_from_run_specs_and_score_files(tmp_path):
    entries = _entries()
    runs, paths = [], []
    for entry in entries:
        runs.append(
            {
                "run_id": entry["run_id"],
                "dataset": entry["dataset"],
                "condition": entry["condition"],
                "model_name": entry["model"],
                "seed": entry["seed"],
                "model": {"beta": 4.0},
            }
        )
        path = tmp_path / "scores" / f"{entry['run_id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(as_written(entry["scores"])))
        paths.append(path)
    write_study_csv(runs, paths, tmp_path / "scores.csv", tmp_path / "by_model.csv")
    assert len(pd.read_csv(tmp_path / "scores.csv")) == 6 * 6
    assert set(pd.read_csv(tmp_path / "by_model.csv")["model"]) == {"beta_vae", "wae"}
    write_group_table(
        runs,
        paths,
        tmp_path / "g.tex",
        tmp_path / "g.csv",
        title="Group_1",
        labels={"beta_vae": "VAE (fixint)"},
        label="tab:g",
    )
    latex = (tmp_path / "g.tex").read_text()
    assert "VAE (fixint)" in latex and "Group\\_1" in latex and "$R^2$ test" in latex
    assert len(_body_rows(latex)) == 2


def test_two_models_with_one_label_keep_their_rows_apart():
    tidy = collect_scores(_entries())
    shown = distinct_labels(tidy, {"beta_vae": "VAE", "wae": "VAE"})
    assert set(shown) == {"VAE [beta_vae]", "VAE [wae]"}
    assert set(distinct_labels(tidy, {"beta_vae": "β-VAE", "wae": "WAE"})) == {"β-VAE", "WAE"}


def test_group_tables_compare_with_the_paper_by_its_dci():
    """The paper's tables report the paper's DCI variant; the standard D stays in the CSVs."""
    assert "dci_paper_disentanglement" in GROUP_TABLE_COLUMNS
    assert "dci_disentanglement" not in GROUP_TABLE_COLUMNS
    entries = _entries(models=("wae",))
    for entry in entries:
        entry["scores"]["dci_disentanglement"] = 0.69
        entry["scores"]["dci_paper_disentanglement"] = 0.76
        entry["scores"]["r2_test_mean"] = 0.5
    latex = group_table(
        collect_scores(entries), GROUP_TABLE_COLUMNS, set(), caption="MPI3D", label="tab:mpi3d"
    )
    assert "Disentanglement (paper's DCI)" in latex
    assert "0.760" in latex and "0.690" not in latex


def _gap_entries(condition, model, gaps, composed=None, heldout=True):
    """Runs of one (condition, model), one per gap; composition runs also have the composed gap."""
    entries = []
    for seed, gap in enumerate(gaps):
        scores = {"recon_train": 1.0, "gap": gap, "excess_delta": gap - 1, "heldout": heldout}
        if composed is not None:
            scores.update(gap_composed=composed, excess_delta_composed=composed - 1)
        entries.append(
            {
                "run_id": f"{condition}-{model}-s{seed}",
                "dataset": "shapes3d",
                "condition": condition,
                "model": model,
                "seed": seed,
                "scores": scores,
            }
        )
    return entries


def _write_gap_table(tmp_path, entries) -> str:
    runs, paths = [], []
    for entry in entries:
        runs.append(
            {
                **{k: entry[k] for k in ("run_id", "dataset", "condition", "seed")},
                "model_name": entry["model"],
            }
        )
        paths.append(tmp_path / f"{entry['run_id']}.json")
        paths[-1].write_text(json.dumps(entry["scores"]))
    write_group_table(runs, paths, tmp_path / "g.tex", tmp_path / "g.csv", "t", {}, "tab:g")
    return (tmp_path / "g.tex").read_text()


def test_group_tables_show_the_gap_its_difference_and_the_composed_gap_where_measured(tmp_path):
    composition = _gap_entries("shape2ohue", "fixint", [3.0, 5.0], composed=2.0)
    composition += _gap_entries("shape2ohue", "vae", [1.5, 2.5])
    latex = _write_gap_table(tmp_path, composition + _gap_entries("none", "fixint", [math.nan], 1.0, False))
    header = latex.split("\\midrule")[0]
    assert "& Gap & Excess $\\Delta$ & Gap (composed) & Excess $\\Delta$ (composed) &" in header
    fixint, vae, reference = ([c.strip() for c in row.rstrip("\\").split("&")] for row in _body_rows(latex))
    # The lower gap and difference are the better ones; only composition runs have a composed gap.
    assert fixint[5:9] == ["4.00 $\\pm$ 1.41", "3.00 $\\pm$ 1.41", "2.00 $\\pm$ 0.00", "1.00 $\\pm$ 0.00"]
    assert vae[5:9] == ["\\textbf{2.00 $\\pm$ 0.707}", "\\textbf{1.00 $\\pm$ 0.707}", "--", "--"]
    assert reference[1:3] == ["none", "fixint"] and reference[5:9] == ["n/a"] * 4  # nothing held out
    # A group without composition runs has no composed columns.
    (tmp_path / "single").mkdir()
    assert "composed" not in _write_gap_table(tmp_path / "single", _gap_entries("shape2ohue", "vae", [1.5]))
