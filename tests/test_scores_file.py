"""A run's scores.json as the summary and the claims read it: a corrupted
file or a hand-edited non-number is refused naming the file (and key) and how to recompute it;
NaN, how the analysis writes a score that does not apply, is read as such."""

import json
import math
import re

import pytest

from compgen.claims import load_records
from compgen.scores import ScoresError, read_scores
from compgen.summary import write_group_table, write_study_csv

RECOMPUTE = "delete the file and rerun snakemake, which recomputes it (rule analyse)"


def scores(heldout=True) -> dict:
    """A scores.json as analyse_run writes it (abridged); an all-data reference (heldout False)
    has NaN for every score on held-out images."""
    nan = math.nan
    return {
        "run_id": "circles/shape2px/vae/seed0",
        "preset": "fast",
        "heldout": heldout,
        "samples": {"train": 192, "test": 64 if heldout else 0},
        "recon_train": 10.0,
        "recon_test": 12.0 if heldout else nan,
        "gap": 1.5 if heldout else nan,
        "mig": 0.2,
        "r2_test": {"x": 0.9 if heldout else nan, "y": nan},
        "factors_scored": ["x"],
        "main_factors": ["x", "y"],
        "fit_kinds": {"x": "ordinal", "y": "categorical"},
        "training": {"stopped": "budget", "stopped_epoch": 2, "best_epoch": 2, "probe_gap_tail": [1.2]},
        "provenance": {"model": {"beta": None}, "data": {"source": "procedural"}},
    }


def study(tmp_path, *texts) -> tuple[list[dict], list]:
    """Run specs and scores.json files of one model's seeds, one per text."""
    runs, paths = [], []
    for seed, text in enumerate(texts):
        runs.append(
            {
                "run_id": f"circles/shape2px/vae/seed{seed}",
                "dataset": "circles",
                "condition": "shape2px",
                "model_name": "vae",
                "seed": seed,
                "model": {"task": "unsupervised"},
            }
        )
        paths.append(tmp_path / f"seed{seed}" / "scores.json")
        paths[-1].parent.mkdir()
        paths[-1].write_text(text)
    return runs, paths


def summarise(tmp_path, runs, paths) -> None:
    """What the summary and claims rules do with the files: the study CSV, a group table, the claims' records."""
    write_study_csv(runs, paths, tmp_path / "scores.csv", tmp_path / "by_model.csv")
    write_group_table(runs, paths, tmp_path / "g.tex", tmp_path / "g.csv", "t", {}, "tab:g")
    load_records(runs, paths)


def test_a_corrupted_scores_file_is_named_with_how_to_recompute_it(tmp_path):
    good = json.dumps(scores())
    runs, paths = study(tmp_path, good, good[: len(good) // 2])  # e.g. a copy cut short
    expected = (
        rf"^{re.escape(str(paths[1]))} is not valid JSON \(.*: line 1 column \d+\); {re.escape(RECOMPUTE)}$"
    )
    with pytest.raises(ScoresError, match=expected):
        write_study_csv(runs, paths, tmp_path / "scores.csv", tmp_path / "by_model.csv")
    with pytest.raises(ScoresError, match=expected):
        write_group_table(runs, paths, tmp_path / "g.tex", tmp_path / "g.csv", "t", {}, "tab:g")
    with pytest.raises(ScoresError, match=expected):
        load_records(runs, paths)
    paths[1].write_text("[1, 2]")
    with pytest.raises(ScoresError) as err:
        load_records(runs, paths)
    assert str(err.value) == f"{paths[1]} is not a JSON object of scores; {RECOMPUTE}"
    assert not (tmp_path / "scores.csv").exists()


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("gap", "big", '"big"'),
        ("gap", None, "null"),
        ("gap", True, "true"),
        ("r2_test", {"x": None, "y": 0.5}, "null"),
        ("recon_test", [12.0], "[12.0]"),
    ],
)
def test_a_hand_edited_non_number_is_refused_naming_file_and_key(tmp_path, key, value, shown):
    edited = scores()
    edited[key] = value
    runs, paths = study(tmp_path, json.dumps(scores()), json.dumps(edited))
    name = "r2_test/x" if key == "r2_test" else key
    expected = (
        f"{paths[1]}: key '{name}' is {shown}, not a number (NaN where the score does not apply); "
        f"{RECOMPUTE}, or correct the value by hand"
    )
    for reader in (
        lambda: write_study_csv(runs, paths, tmp_path / "scores.csv", tmp_path / "by_model.csv"),
        lambda: write_group_table(runs, paths, tmp_path / "g.tex", tmp_path / "g.csv", "t", {}, "tab:g"),
        lambda: load_records(runs, paths),
    ):
        with pytest.raises(ScoresError) as err:
            reader()
        assert str(err.value) == expected


def test_every_bad_key_of_a_file_is_named_at_once(tmp_path):
    edited = {**scores(), "gap": "big", "mig": None, "heldout": "yes", "fit_kinds": {"x": 1, "y": "ordinal"}}
    (tmp_path / "scores.json").write_text(json.dumps(edited))
    with pytest.raises(ScoresError) as err:
        read_scores(tmp_path / "scores.json")
    assert str(err.value).startswith(
        f"{tmp_path / 'scores.json'}: key 'heldout' is \"yes\", not true or false; "
        "key 'gap' is \"big\", not a number (NaN where the score does not apply); "
        "key 'mig' is null, not a number (NaN where the score does not apply); "
        "key 'fit_kinds/x' is 1, not a string; "
    )


def test_nan_is_a_score_that_does_not_apply_and_is_read_as_such(tmp_path):
    """An all-data reference's held-out scores are NaN in its file: read, and shown n/a."""
    runs, paths = study(tmp_path, json.dumps(scores()), json.dumps(scores(heldout=False)))
    runs[1]["condition"] = "none"
    assert "NaN" in paths[1].read_text()
    read = read_scores(paths[1])
    assert math.isnan(read["gap"]) and math.isnan(read["r2_test"]["x"]) and read["heldout"] is False
    summarise(tmp_path, runs, paths)
    assert "n/a" in (tmp_path / "g.tex").read_text()
    assert len(load_records(runs, paths)) == 2
