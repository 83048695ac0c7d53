"""A paper's published values beside compgen's (config `published`, compgen.summary.published): the
shipped ICLR 2021 table, the checks that refuse a malformed one, the paper columns of the tables
and CSVs, and the comparison figure's points."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from compgen.study import Study
from compgen.summary import write_group_table, write_study_csv
from compgen.summary.paper_figure import draw_paper_comparison
from compgen.summary.published import (
    MEASURES,
    PublishedError,
    check_published,
    comparison,
    finite_pairs,
    load_published,
    read_published,
    rows_run,
    with_nll_measures,
)
from conftest import ROOT, load_config, run_snakemake

ICLR = ROOT / "config/iclr2021.yaml"
SHIPPED = ROOT / "config/published/iclr2021.csv"
HEADER = "dataset,condition,model,train_nll,test_nll,disentanglement,disentanglement_note,source\n"


# -- the shipped table ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iclr_study():
    return Study(load_config(ICLR))


def test_iclr2021_declares_the_shipped_table_and_the_iclr_dci():
    config = load_config(ICLR)
    assert config["published"] == "config/published/iclr2021.csv"
    assert config["analysis"]["dci"] == "iclr"


def test_the_shipped_table_names_only_runs_of_iclr2021(iclr_study):
    table = load_published(SHIPPED, iclr_study)
    runs = {(r.dataset, r.condition, r.model) for r in iclr_study.runs}
    assert set(zip(table["dataset"], table["condition"], table["model"], strict=True)) <= runs
    # 2 datasets x 3 conditions x (6 VAEs + the ground-truth decoder)
    assert len(table) == 42
    assert table.groupby(["dataset", "condition"]).size().to_dict() == {
        ("dsprites", "blank_side"): 7,
        ("dsprites", "leave1out"): 7,
        ("dsprites", "sqr2tx"): 7,
        ("shapes3d", "leave1out"): 7,
        ("shapes3d", "missing_fh"): 7,
        ("shapes3d", "shape2ohue"): 7,
    }
    assert set(table["source"].str.split(",").str[0]) == {"mmrl/disent-and-gen"}


def test_the_shipped_table_holds_the_papers_numbers():
    table = read_published(SHIPPED).set_index(["dataset", "condition", "model"])
    vae_r2r = table.loc[("dsprites", "sqr2tx", "vae_dsprites")]
    assert (vae_r2r["train_nll"], vae_r2r["test_nll"]) == pytest.approx((18.82, 200.36), abs=0.01)
    assert vae_r2r["test_nll"] / vae_r2r["train_nll"] == pytest.approx(10.65, abs=0.01)
    extrp = table.loc[("shapes3d", "missing_fh", "factorvae_gamma50")]
    assert extrp["test_nll"] - extrp["train_nll"] == pytest.approx(17887, abs=1)
    assert table.loc[("shapes3d", "leave1out", "betavae_beta12"), "disentanglement"] == pytest.approx(
        0.835, abs=1e-3
    )
    # The ground-truth decoder's D is the original's hand-set 1, flagged; every other D is measured.
    decoders = table[table.index.get_level_values("model").str.startswith("gt_decoder")]
    assert set(decoders.index.get_level_values("model")) == {
        "gt_decoder_decoderhiggins",
        "gt_decoder_decoderkim_bn",
    }
    assert (decoders["disentanglement"] == 1.0).all()
    assert decoders["disentanglement_note"].str.contains("by hand").all()
    assert (table.drop(decoders.index)["disentanglement_note"] == "").all()


# -- malformed tables -----------------------------------------------------------------------------


def _write(tmp_path, body, header=HEADER):
    path = tmp_path / "published.csv"
    path.write_text(header + body)
    return path


GOOD_ROW = "dsprites,sqr2tx,vae,10.0,50.0,0.4,,paper\n"


@pytest.mark.parametrize(
    ("body", "line", "says"),
    [
        (GOOD_ROW + "dsprites,sqr2tx,wae,ten,50.0,0.4,,paper\n", 3, "train_nll 'ten' is not a number"),
        (GOOD_ROW + "dsprites,sqr2tx,wae,10.0,nan,0.4,,paper\n", 3, "test_nll 'nan' is not a finite number"),
        ("dsprites,sqr2tx,vae,10.0,50.0,1.5,,paper\n", 2, "disentanglement '1.5' is outside [0, 1]"),
        (GOOD_ROW + "\n" + GOOD_ROW, 4, "dsprites/sqr2tx/vae is also on line 2"),
        (GOOD_ROW + "dsprites,sqr2tx,wae,10.0,50.0\n", 3, "5 fields, the header has 8"),
        (GOOD_ROW + ",sqr2tx,wae,10.0,50.0,0.4,,paper\n", 3, "dataset is empty"),
    ],
)
def test_a_malformed_table_is_refused_naming_file_and_line(tmp_path, body, line, says):
    path = _write(tmp_path, body)
    with pytest.raises(PublishedError) as err:
        read_published(path)
    assert str(err.value).startswith(f"{path} line {line}: ")
    assert says in str(err.value)


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("dataset,condition,model,train_nll,disentanglement,source\n", "missing test_nll"),
        (HEADER.replace("source", "sorce"), "missing source; unknown 'sorce'"),
        (HEADER.strip() + ",model\n", "repeated model"),
    ],
)
def test_a_wrong_header_is_refused_naming_the_columns(tmp_path, header, says):
    path = _write(tmp_path, "", header=header)
    with pytest.raises(PublishedError, match=r" line 1: header has ") as err:
        read_published(path)
    assert str(path) in str(err.value) and says in str(err.value)


def test_an_empty_or_missing_table_is_refused(tmp_path):
    with pytest.raises(PublishedError, match="no rows after the header"):
        read_published(_write(tmp_path, ""))
    with pytest.raises(PublishedError, match=r"no such file \(config key `published`\)"):
        read_published(tmp_path / "absent.csv")


def test_a_row_naming_no_run_of_the_study_is_refused_naming_line_and_value(tmp_path):
    runs = [("dsprites", "sqr2tx", "vae"), ("dsprites", "sqr2tx", "wae"), ("dsprites", "leave1out", "vae")]
    for row, says in [
        (
            "shapes3d,sqr2tx,vae,1,2,0.5,,p\n",
            "dataset 'shapes3d' is not run by this study (its datasets: dsprites)",
        ),
        (
            "dsprites,sqr2txx,vae,1,2,0.5,,p\n",
            "condition 'sqr2txx' is not run on dsprites by this study (its conditions there: leave1out, sqr2tx)",
        ),
        (
            "dsprites,leave1out,wae,1,2,0.5,,p\n",
            "model 'wae' is not run on dsprites/leave1out by this study (its models there: vae)",
        ),
    ]:
        path = _write(tmp_path, GOOD_ROW + row)
        with pytest.raises(PublishedError) as err:
            check_published(read_published(path), runs, path)
        assert str(err.value) == f"{path} line 3: {says}"


def test_the_iclr_check_compares_the_six_rows_it_runs():
    """config/iclr_check.yaml reruns part of the ICLR table (published_rows: run): the VAE and the
    ground-truth decoder on the three dSprites conditions, and no other row."""
    config = load_config(ROOT / "config/iclr_check.yaml")
    assert config["published_rows"] == "run"
    table = load_published(ROOT / config["published"], Study(config), config["published_rows"])
    assert sorted(zip(table["condition"], table["model"], strict=True)) == sorted(
        (condition, model)
        for condition in ("leave1out", "sqr2tx", "blank_side")
        for model in ("vae_dsprites", "gt_decoder_decoderhiggins")
    )
    assert set(table["dataset"]) == {"dsprites"}
    # The same table under the default (every row must be run) is refused, naming a row it lacks.
    with pytest.raises(PublishedError, match="is not run"):
        load_published(ROOT / config["published"], Study(config))


def test_published_rows_run_refuses_a_table_with_no_row_of_the_study(tmp_path):
    path = _write(tmp_path, "shapes3d,sqr2tx,vae,1,2,0.5,,p\n")
    with pytest.raises(PublishedError) as err:
        rows_run(read_published(path), [("dsprites", "sqr2tx", "vae")], path)
    assert str(err.value) == (
        f"{path}: no row names a run of this study (config key `published_rows: run` keeps only those)"
    )


def test_snakemake_refuses_a_study_whose_table_names_no_run(tmp_path):
    study = yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text())
    study["published"] = str(_write(tmp_path, "dsprites,sqr2tx,wae,1,2,0.5,,p\n"))
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study, allow_unicode=True))
    done = run_snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "study.yaml"), timeout=300)
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert f"published: {study['published']} line 2: model 'wae' is not run on dsprites/sqr2tx" in said


# -- the paper columns ----------------------------------------------------------------------------

# (model, seed) -> (recon_train, recon_test, ICLR D) of a tiny study: two models on dsprites/sqr2tx.
SCORES = {
    ("vae", 0): (10.0, 40.0, 0.30),
    ("vae", 1): (12.0, 60.0, 0.50),
    ("gt", 0): (20.0, 30.0, math.nan),
}
TINY_PUBLISHED = (
    HEADER
    + "dsprites,sqr2tx,vae,11.0,55.0,0.45,,the paper's table 1\n"
    + "dsprites,sqr2tx,gt,25.0,35.0,1,set by hand,the paper's table 1\n"
)


def _tiny_study(tmp_path, with_other_group=False):
    runs, paths = [], []
    items = list(SCORES.items()) + ([(("vae", 0), (5.0, 6.0, 0.2))] if with_other_group else [])
    for i, ((model, seed), (train, test, d)) in enumerate(items):
        condition = "leave1out" if i >= len(SCORES) else "sqr2tx"
        run_id = f"dsprites/{condition}/{model}/seed{seed}"
        runs.append(
            {
                "run_id": run_id,
                "dataset": "dsprites",
                "condition": condition,
                "model_name": model,
                "seed": seed,
            }
        )
        scores = {
            "recon_train": train,
            "recon_test": test,
            "dci_iclr_disentanglement": d,
            "dci_paper_disentanglement": 0.9,
        }
        paths.append(tmp_path / "scores" / f"{i}.json")
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        paths[-1].write_text(json.dumps(scores))  # NaN as scores.json writes it
    published = tmp_path / "published.csv"
    published.write_text(TINY_PUBLISHED)
    return runs, paths, read_published(published)


def _cells(latex, model):
    (row,) = [line for line in latex.splitlines() if f"& {model} &" in line]
    cells = [cell.strip() for cell in row.rstrip("\\ ").split("&")]
    return [c.removeprefix("\\textbf{").removesuffix("}") if c.startswith("\\textbf{") else c for c in cells]


def test_group_tables_show_the_papers_columns_beside_compgens(tmp_path):
    runs, paths, published = _tiny_study(tmp_path)
    write_group_table(
        runs,
        paths,
        tmp_path / "g.tex",
        tmp_path / "g.csv",
        "Tiny",
        {"gt": "GT decoder"},
        "tab:g",
        dci="iclr",
        published=published,
    )
    latex = (tmp_path / "g.tex").read_text()
    header = latex.split("\\midrule")[0]
    order = [
        "Recon.\\ train",
        "Paper train",
        "Recon.\\ test",
        "Paper test",
        "NLL ratio",
        "Paper ratio",
        "NLL $\\Delta$",
        "Paper $\\Delta$",
        "Disentanglement (ICLR code's DCI)",
        "Paper D",
    ]
    at = [header.index(f"& {h} ") for h in order]
    assert at == sorted(at)
    assert "dci_paper" not in header and "Disentanglement (paper's DCI)" not in header
    vae = _cells(latex, "vae")
    # compgen: means over seeds (ratios 4 and 5, differences 30 and 48); the paper's: one value each.
    assert vae[3:11] == [
        "11.0 $\\pm$ 1.41",
        "11.0",
        "50.0 $\\pm$ 14.1",
        "55.0",
        "4.50 $\\pm$ 0.707",
        "5.00",
        "39.0 $\\pm$ 12.7",
        "44.0",
    ]
    assert vae[-2:] == ["0.400 $\\pm$ 0.141", "0.450"]  # the ICLR D (not the NeurIPS 0.9) beside the paper's
    gt = _cells(latex, "GT decoder")
    assert gt[4] == "25.0" and gt[-1] == "1.00*"  # the hand-set D is marked
    assert "set by hand there, not measured" in latex and "the paper's table 1" in latex

    table = pd.read_csv(tmp_path / "g.csv")
    assert list(table.columns[:8]) == [
        "dataset",
        "condition",
        "model",
        "metric",
        "mean",
        "std",
        "n_seeds",
        "paper",
    ]
    paper = table.set_index(["model", "metric"])["paper"]
    assert paper[("vae", "nll_ratio")] == pytest.approx(5.0)
    assert paper[("GT decoder", "dci_iclr_disentanglement")] == 1.0
    assert math.isnan(paper[("vae", "dci_paper_disentanglement")])  # not the study's D


def test_a_group_without_published_runs_has_no_paper_columns(tmp_path):
    runs, paths, published = _tiny_study(tmp_path, with_other_group=True)
    write_group_table(
        runs[-1:],
        paths[-1:],
        tmp_path / "g.tex",
        tmp_path / "g.csv",
        "t",
        {},
        "tab:g",
        dci="iclr",
        published=published,
    )
    latex = (tmp_path / "g.tex").read_text()
    assert "Paper" not in latex and "NLL ratio" not in latex


def test_the_study_csvs_carry_the_papers_value_beside_compgens(tmp_path):
    runs, paths, published = _tiny_study(tmp_path)
    write_study_csv(
        runs, paths, tmp_path / "scores.csv", tmp_path / "by_model.csv", published=published, dci="iclr"
    )
    tidy = pd.read_csv(tmp_path / "scores.csv")
    assert list(tidy.columns[6:9]) == ["value", "paper", "paper_note"]
    ratio = tidy[(tidy["metric"] == "nll_ratio")].set_index("run_id")
    assert (
        ratio.loc["dsprites/sqr2tx/vae/seed1", "value"] == 5.0
        and ratio.loc["dsprites/sqr2tx/vae/seed1", "paper"] == 5.0
    )
    by_model = pd.read_csv(tmp_path / "by_model.csv")
    assert list(by_model.columns[4:8]) == ["mean", "std", "n_seeds", "paper"]
    # Without published values the CSVs are as before: no paper column, no derived NLL measures.
    write_study_csv(runs, paths, tmp_path / "plain.csv", tmp_path / "plain_by_model.csv")
    plain = pd.read_csv(tmp_path / "plain.csv")
    assert "paper" not in plain and "nll_ratio" not in set(plain["metric"])


def test_nll_measures_come_from_each_runs_recon_scores():
    tidy = pd.DataFrame(
        [
            {
                "run_id": "a",
                "dataset": "d",
                "condition": "c",
                "model": "m",
                "seed": 0,
                "metric": "recon_train",
                "value": 4.0,
            },
            {
                "run_id": "a",
                "dataset": "d",
                "condition": "c",
                "model": "m",
                "seed": 0,
                "metric": "recon_test",
                "value": 10.0,
            },
            {
                "run_id": "b",
                "dataset": "d",
                "condition": "c",
                "model": "r",
                "seed": 0,
                "metric": "r2_test_mean",
                "value": 0.5,
            },
        ]
    )
    out = with_nll_measures(tidy).set_index(["run_id", "metric"])["value"]
    assert out[("a", "nll_ratio")] == 2.5 and out[("a", "nll_delta")] == 6.0
    assert ("b", "nll_ratio") not in out.index  # a run without both NLLs gets none


# -- the comparison -------------------------------------------------------------------------------


def test_compare_rows_join_compgens_means_and_the_papers_values(tmp_path):
    runs, paths, published = _tiny_study(tmp_path)
    from compgen.summary import collect_scores, load_entries

    compare = comparison(collect_scores(load_entries(runs, paths)), published, "dci_iclr_disentanglement")
    assert len(compare) == 2 * len(MEASURES)
    got = compare.set_index(["model", "measure"])
    assert got.loc[("vae", "train_nll"), ["compgen", "paper", "n_seeds"]].tolist() == [11.0, 11.0, 2]
    assert got.loc[("vae", "test_nll"), "compgen_std"] == pytest.approx(np.std([40.0, 60.0], ddof=1))
    assert got.loc[("vae", "disentanglement"), "compgen_metric"] == "dci_iclr_disentanglement"
    assert got.loc[("gt", "nll_delta"), ["compgen", "paper"]].tolist() == [10.0, 10.0]
    assert math.isnan(got.loc[("gt", "disentanglement"), "compgen"])  # no D measured: no point
    assert got.loc[("gt", "disentanglement"), "paper_note"] == "set by hand"


def test_the_scatters_draw_exactly_the_joined_values(tmp_path):
    runs, paths, published = _tiny_study(tmp_path)
    from compgen.summary import collect_scores, load_entries

    compare = comparison(collect_scores(load_entries(runs, paths)), published, "dci_iclr_disentanglement")
    compare["label"] = compare["model"].map({"vae": "VAE", "gt": "GT decoder"})
    fig = draw_paper_comparison(compare, title="tiny")
    drawn = {}
    for ax in fig.axes:
        for collection in ax.collections:
            if collection.get_gid():
                measure, label, condition = collection.get_gid().split("|")
                for x, y in collection.get_offsets():
                    drawn[(measure, label, condition)] = (float(x), float(y))
    expected = {
        (measure, row.label, row.condition): (row.paper, row.compgen)
        for measure in MEASURES
        for row in finite_pairs(compare, measure).itertuples()
    }
    assert drawn.keys() == expected.keys()
    for key, point in expected.items():
        assert drawn[key] == pytest.approx(point), key
    assert ("disentanglement", "GT decoder", "sqr2tx") not in drawn  # compgen has no D for it
    assert drawn[("nll_ratio", "VAE", "sqr2tx")] == pytest.approx((5.0, 4.5))


@pytest.mark.workflow
def test_iclr2021_plans_the_side_by_side_page(tmp_path):
    done = run_snakemake(tmp_path, "-n", "--configfile", str(ICLR), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    plan = done.stdout + done.stderr
    for target in (
        "results/summary/paper/compare.csv",
        "results/summary/paper/iclr2021_dsprites.png",
        "results/summary/paper/iclr2021_shapes3d.png",
    ):
        assert target in plan
    assert "rule paper_compare:" in plan and "rule paper_figure:" in plan
    assert "results/summary/paper/iclr2021_mpi3d.png" not in plan  # the paper published no MPI3D numbers
