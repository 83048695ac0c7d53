"""docs/extending.md is run as written: its plugin (a loss, a task, an encoder and a per-run figure),
installed from this test file alone as pip would install it (a package and its dist-info with entry
points on PYTHONPATH; nothing in src/ changes), trains, is analysed and reaches the report; and its
snippet of training as functions runs."""

import os
import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, run_snakemake

DOC = ROOT / "docs" / "extending.md"
BLOCK = re.compile(r"<!-- (file|run): (\S+) -->\n```\w*\n(.*?)```", re.S)


def doc_blocks(kind: str) -> dict[str, str]:
    """The doc's code blocks of this kind (file or run), by the name their marker gives."""
    blocks = {name: code for k, name, code in BLOCK.findall(DOC.read_text()) if k == kind}
    assert blocks, f"{DOC} has no <!-- {kind}: ... --> code block"
    return blocks


def install_doc_plugin(site: Path) -> Path:
    """The doc's plugin laid out as `pip install` would: its package, and a dist-info holding its
    METADATA and entry points. Returns the study config the doc gives."""
    files = doc_blocks("file")
    assert set(files) == {"toyext/__init__.py", "toyext/torch_parts.py", "entry_points.txt", "study.yaml"}
    for name in ("toyext/__init__.py", "toyext/torch_parts.py"):
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(files[name])
    info = site / "toyext-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyext\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(files["entry_points.txt"])
    study = site.parent / "study.yaml"
    study.write_text(files["study.yaml"])
    return study


def test_the_functions_snippet_trains_a_run(data, tmp_path):
    dataset, split = data
    namespace = {
        "dataset_h5": dataset,
        "split_npz": split,
        "checkpoint_dir": tmp_path / "ckpt",
        "out_dir": tmp_path / "run",
    }
    exec(doc_blocks("run")["functions"], namespace)
    log = pd.read_csv(tmp_path / "run" / "train_log.csv")
    assert list(log["epoch"]) == [1, 2] and namespace["summary"]["data"]["source"] == "test"
    assert namespace["run"]["training"]["threads"] == 1


@pytest.mark.workflow
def test_the_docs_plugin_runs_a_study_to_its_report(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    workdir = tmp_path / "study"
    workdir.mkdir()
    study = install_doc_plugin(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = run_snakemake(workdir, "--configfile", str(study), "--cores", "2", env=env)
    assert done.returncode == 0, done.stderr[-4000:]

    runs = workdir / "results" / "runs" / "circles" / "corner"
    l1 = pd.read_csv(runs / "l1" / "seed0" / "train_log.csv")
    assert {"recon", "kl", "l1", "loss", "val_recon"} <= set(l1.columns)  # the plugin loss's term
    assert (l1["l1"] > 0).all() and l1["loss"].iloc[-1] < l1["loss"].iloc[0]
    ae = pd.read_csv(runs / "ae" / "seed0" / "train_log.csv")
    assert "kl" not in ae.columns and ae["loss"].iloc[-1] < ae["loss"].iloc[0]  # no VAE loss

    analysis = workdir / "results" / "analysis" / "circles" / "corner"
    assert (analysis / "ae" / "seed0" / "latent_spread.png").stat().st_size > 5_000
    assert not (analysis / "l1" / "seed0" / "latent_spread.png").exists()  # not an unsupervised figure
    table = pd.read_csv(workdir / "results" / "summary" / "groups" / "toy.csv")  # models by label
    assert set(table["model"]) == {"mean autoencoder", "L1-VAE (λ=0.5)"}

    report = run_snakemake(workdir, "--configfile", str(study), "--report", "report.html", env=env)
    assert report.returncode == 0, report.stderr[-4000:]
    html = (workdir / "report.html").read_text(errors="replace")
    assert "Spread (standard deviation) of each latent unit of" in html  # the figure's own caption
