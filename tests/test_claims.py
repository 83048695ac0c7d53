"""The papers' claims, checked by the pipeline: the reconstruction floor and excess, the
claims table's verdicts for every criterion kind, its determinism, the shipped claims' protection,
and the claims rule in every study's plan."""

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from compgen.claims import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    MEASURES,
    NOT_RUN,
    RunRecord,
    claim_rows,
    claim_sources,
    write_claims_table,
)
from compgen.config import CLAIMS_PATH, ConfigError, default_claims, load_schema
from compgen.config import validate_config as validate_study
from compgen.losses import reconstruction_per_image
from compgen.metrics.excess import excess_summary, gap, main_factor_scores, reconstruction_floor
from compgen.tasks import TASKS
from compgen.training.run import train_run
from conftest import ROOT, analyse_toy, merged, run_snakemake
from test_engine import make_run

SCHEMA = load_schema()
DEFAULT_FIT = {"min": 0.8, "converged": True, "plateau": 3, "tasks": {"supervised": 0.9}}
CLAIM_SCHEMA = SCHEMA["properties"]["claims"]["additionalProperties"]
# Every study config shipped in config/ (the conditions library and the claims are not studies).
STUDY_CONFIGS = sorted(
    p.stem for p in (ROOT / "config").glob("*.yaml") if p.stem not in ("conditions", "claims")
)


# -- the floor and the excess -------------------------------------------------------------------


def _bce_of_perfect_logits(x: torch.Tensor) -> torch.Tensor:
    """The BCE of logits = logit(x), clipped so that pixels of exactly 0 or 1 stay finite."""
    return reconstruction_per_image(torch.logit(x.double()).clamp(-40, 40), x, "bce").double()


def test_bce_floor_is_the_loss_of_a_perfect_reconstruction():
    g = torch.Generator().manual_seed(0)
    uniform = torch.rand((4, 3, 64, 64), generator=g)
    stored = torch.randint(0, 256, (4, 3, 64, 64), generator=g).float() / 255  # as images are stored
    for x in (uniform, stored):
        floor = reconstruction_floor(x, "bce")
        assert floor.shape == (4,) and floor.dtype == torch.float64
        assert floor.min() > 0.3 * 3 * 64 * 64  # most of a random image's BCE is its own entropy
        torch.testing.assert_close(_bce_of_perfect_logits(x), floor, rtol=1e-5, atol=1e-2)
        # No prediction beats it.
        worse = torch.logit(x.double()).clamp(-40, 40) + 0.3 * torch.randn(x.shape, generator=g).double()
        assert (reconstruction_per_image(worse, x, "bce").double() > floor).all()
    binary = (torch.rand((4, 1, 64, 64), generator=g) > 0.5).float()
    assert reconstruction_floor(binary, "bce").eq(0).all()
    assert _bce_of_perfect_logits(binary).max() < 1e-6


def test_mse_floors_are_zero_and_unknown_kinds_are_refused():
    x = torch.rand((3, 1, 64, 64), generator=torch.Generator().manual_seed(1))
    for kind in ("mse", "mse_raw"):
        assert reconstruction_floor(x, kind).eq(0).all()
    assert reconstruction_per_image(x, x, "mse_raw").eq(0).all()  # mse_raw's decoder draws pixels
    with pytest.raises(ValueError, match="unknown reconstruction loss 'l1'"):
        reconstruction_floor(x, "l1")


def test_gap_is_the_ratio_of_excesses_and_nan_without_a_measure():
    assert excess_summary(np.array([1.0, 3.0]), np.array([4.0, 6.0, 5.0])) == {
        "recon_excess_train": 2.0,
        "recon_excess_test": 5.0,
        "gap": 2.5,
        "excess_delta": 3.0,
    }
    composed = excess_summary(np.array([4.0]), np.array([5.0]), suffix="_composed")
    assert composed == {
        "recon_excess_train_composed": 4.0,
        "recon_excess_test_composed": 5.0,
        "gap_composed": 1.25,
        "excess_delta_composed": 1.0,
    }
    reference = excess_summary(np.array([2.0]), np.zeros(0))  # an all-data reference
    assert reference["recon_excess_train"] == 2.0 and math.isnan(reference["recon_excess_test"])
    assert math.isnan(reference["gap"]) and math.isnan(reference["excess_delta"])
    assert math.isnan(gap(0.0, 1.0)) and math.isnan(gap(-1.0, 1.0)) and math.isnan(gap(math.nan, 1.0))


def test_main_factor_scores_are_the_conditions_two_factors():
    scores = {"r2_train": {"x": 0.9, "y": 0.7, "size": 0.1}, "r2_test": {"x": 0.5, "y": 0.3, "size": 0.0}}
    out = main_factor_scores(scores, ["x", "y"])
    assert out["main_factors"] == ["x", "y"] and out["r2_train_main_min"] == 0.7
    assert out["r2_train_main"] == pytest.approx(0.8) and out["r2_test_main"] == pytest.approx(0.4)
    assert out["r2_drop_main"] == pytest.approx(0.4)
    assert math.isnan(main_factor_scores({}, ["x", "y"])["r2_train_main_min"])  # no representation


def test_excess_and_gap_of_a_tiny_composition_model(data, all_data, tmp_path):
    """`gap` and its excesses: single images through the model's own autoencoder (the papers'
    measure), as computed here independently; `*_composed`: the composed target of the triplets
    computed here again (the held-out ones are those composition_loss_test always drew); both NaN
    without a held-out set."""
    from compgen.analysis.evaluate import PRESETS, AnalysisInputs
    from compgen.batches import derived_seed, heldout_triplets
    from compgen.datasets.store import check_dataset
    from compgen.tasks import load_trained
    from compgen.tasks.composition import TRAIN_TARGET_STREAM, target_losses

    dataset, split = data
    train_run(dataset, split, make_run("composition", epochs=2), tmp_path / "run", tmp_path / "ckpt")
    scores = analyse_toy(dataset, split, tmp_path / "run", tmp_path)
    for suffix in ("", "_composed"):
        for key in ("recon_excess_train", "recon_excess_test", "gap", "excess_delta"):
            assert math.isfinite(scores[key + suffix]), key + suffix
    assert math.isfinite(scores["r2_train_main_min"]) and math.isfinite(scores["r2_drop_main"])
    assert scores["main_factors"] == ["x", "y"]

    model, _ = load_trained(tmp_path / "run" / "model.pt")
    grid, split_arrays = check_dataset(dataset), np.load(split)
    inputs = AnalysisInputs(
        str(dataset), grid, split_arrays["train"], split_arrays["test"], "bce", PRESETS["fast"], 0
    )

    # Single images (the fast preset's samples hold every toy image): encode, decode mu, less the floor.
    def single_image_excess(indices):
        x = inputs.images(indices)
        with torch.no_grad():
            mu, _ = model.encode(x)
            loss = reconstruction_per_image(model.decode(mu), x, "bce").double()
        return float((loss - reconstruction_floor(x, "bce")).mean())

    train, test = single_image_excess(inputs.train), single_image_excess(inputs.test)
    assert scores["recon_excess_train"] == pytest.approx(train, rel=1e-5) and train > 0
    assert scores["recon_excess_test"] == pytest.approx(test, rel=1e-5)
    assert scores["gap"] == pytest.approx(test / train, rel=1e-5)
    assert scores["excess_delta"] == pytest.approx(test - train, rel=1e-4, abs=1e-3)

    # The composed target: training-target triplets from their own stream, the held-out ones the
    # triplets composition_loss_test always drew (a generator seeded with the analysis' seed).
    n, train_classes = PRESETS["fast"]["n_triplets"], grid.classes(inputs.train)
    train_gen = torch.Generator().manual_seed(derived_seed(0, 0, TRAIN_TARGET_STREAM))
    loss_train, floor_train = target_losses(
        model, inputs, heldout_triplets(grid.sizes, train_classes, train_classes, n, train_gen)
    )
    test_triplets = heldout_triplets(
        grid.sizes, train_classes, grid.classes(inputs.test), n, torch.Generator().manual_seed(0)
    )
    loss_test, floor_test = target_losses(model, inputs, test_triplets)
    composed_train, composed_test = (loss_train - floor_train).mean(), (loss_test - floor_test).mean()
    assert scores["composition_loss_test"] == pytest.approx(float(loss_test.mean()), rel=1e-6)
    assert scores["composition_loss_train"] == pytest.approx(float(loss_train.mean()), rel=1e-6)
    assert scores["recon_excess_train_composed"] == pytest.approx(composed_train, rel=1e-6)
    assert scores["recon_excess_test_composed"] == pytest.approx(composed_test, rel=1e-6)
    assert scores["gap_composed"] == pytest.approx(composed_test / composed_train, rel=1e-6)
    assert scores["excess_delta_composed"] == pytest.approx(composed_test - composed_train, rel=1e-6)
    # Two measures, not one: a composed target is not a single image's reconstruction.
    assert scores["recon_excess_train_composed"] != pytest.approx(scores["recon_excess_train"])

    # The same model analysed as an all-data reference: no held-out set, no gap.
    (tmp_path / "ref").mkdir()
    reference = analyse_toy(all_data / "toy.h5", all_data / "split.npz", tmp_path / "run", tmp_path / "ref")
    for suffix in ("", "_composed"):
        assert 0 < reference["recon_excess_train" + suffix] < math.inf
        for key in ("recon_excess_test", "gap", "excess_delta"):
            assert math.isnan(reference[key + suffix]), key + suffix


# -- claims as data ------------------------------------------------------------------------------


def _validated_claims(claims: dict) -> dict:
    """Claims as a study sees them: checked against the schema, defaults filled in."""
    study = {
        "datasets": {"any": {}},
        "conditions": {},
        "models": {"m": {"task": "unsupervised"}},
        "experiments": [{"name": "any", "dataset": "any", "conditions": ["any"], "models": ["m"]}],
        "claims": copy.deepcopy(claims),
    }
    return validate_study(study)["claims"]


def _claim(criterion, runs, task="composition", measure="gap", **extra):
    return {
        "paper": "test",
        "wording": "a claim",
        "task": task,
        "measure": measure,
        "checks": [{"runs": runs, "criterion": criterion}],
        **extra,
    }


CLAIMS = _validated_claims(
    {
        "NUMBER": _claim({"ge": 2}, [{"dataset": "d", "condition": "fail"}]),
        "VERSUS": _claim({"gt": "versus"}, [{"dataset": "d", "condition": "fail", "versus": "ok"}]),
        "SUPERVISED": _claim(
            {"ge": 0.2}, [{"dataset": "d", "condition": "fail"}], "supervised", "r2_drop_main"
        ),
        "DECODER": _claim({"ge": 2}, [{"dataset": "d", "condition": "fail"}], "gt_decoder"),
        "CONTROLLED": {
            **_claim({"ge": 2}, [{"dataset": "d", "condition": "fail", "control": "iid"}]),
            "checks": [
                {
                    "runs": [{"dataset": "d", "condition": "fail", "control": "iid"}],
                    "criterion": {"ge": 2},
                    "control_ratio": {"ge": 2},
                }
            ],
        },
        "SUCCESS": {
            **_claim({"ge": 2}, [{"dataset": "d", "condition": "ok"}]),
            "checks": [
                {
                    "runs": [{"dataset": "d", "condition": "ok", "control": "iid"}],
                    "control_ratio": {"le": 1.5},
                }
            ],
        },
    }
)


CONVERGED = {"stopped": "converged", "stopped_epoch": 9, "best_epoch": 6, "probe_gap_tail": [2.0, 2.1, 2.1]}


def _run(condition, seed, value, fit=0.95, model="m", task="composition", measure="gap", training=CONVERGED):
    scores = {
        measure: value,
        "fit_train": {"a": fit, "b": 0.99, "c": 0.1},
        "main_factors": ["a", "b"],
        "training": training,
    }
    return RunRecord("d", condition, model, seed, task, scores)


def _only(claims, records, claim) -> dict:
    rows = [row for row in claim_rows(claims, records) if row["claim"] == claim]
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize(
    "records, verdict, note",
    [
        ([_run("fail", 0, 3.0), _run("fail", 1, 2.5)], HOLDS, ""),
        ([_run("fail", 0, 1.2), _run("fail", 1, 2.2)], FAILS, ""),
        ([_run("fail", 0, 3.0), _run("fail", 1, 3.0, fit=0.7)], INCONCLUSIVE, "training fit below 0.8"),
        ([_run("fail", 0, 3.0, fit=math.nan)], INCONCLUSIVE, "training fit below 0.8"),
        ([_run("fail", 0, math.nan)], INCONCLUSIVE, "value is not a number"),
        ([_run("ok", 0, 3.0)], NOT_RUN, "no runs on d/fail"),
    ],
    ids=["meets", "misses", "one-seed-unfit", "fit-unknown", "no-value", "not-run"],
)
def test_a_number_criterion(records, verdict, note):
    row = _only(CLAIMS, records, "NUMBER")
    assert (row["verdict"], row["note"], row["criterion"]) == (verdict, note, "gap ≥ 2")
    if verdict == NOT_RUN:
        assert row["model"] == "(any composition model)" and row["value"] == "" and row["n_seeds"] == 0
        return
    assert row["model"] == "m" and row["n_seeds"] == len(records)
    if len(records) == 2:
        values = [r.scores["gap"] for r in records]
        assert row["mean"] == pytest.approx(np.mean(values)) and row["sd"] == pytest.approx(
            np.std(values, ddof=1)
        )
        assert row["value"] == f"{np.mean(values):.3g} ± {np.std(values, ddof=1):.3g}"
        assert row["per_seed"] == f"seed 0: {values[0]:.3g}; seed 1: {values[1]:.3g}"
    if verdict == INCONCLUSIVE and "fit" in note:
        assert "needs ≥ 0.8 for each" in row["training_fit"]
        assert "a 0.7, b 0.99 (seed 1)" in row["training_fit"] or "a nan, b 0.99" in row["training_fit"]


@pytest.mark.parametrize(
    "records, verdict, note",
    [
        ([_run("fail", 0, 3.0), _run("ok", 0, 1.0), _run("ok", 1, 1.4)], HOLDS, ""),
        ([_run("fail", 0, 1.0), _run("ok", 0, 2.0)], FAILS, ""),
        ([_run("fail", 0, 3.0), _run("ok", 0, 1.0, fit=0.5)], INCONCLUSIVE, "training fit below 0.8"),
        (
            [_run("fail", 0, 3.0), _run("ok", 0, math.nan)],
            INCONCLUSIVE,
            "value it is compared with is not a number",
        ),
        ([_run("fail", 0, 3.0)], NOT_RUN, "no runs on d/ok"),
        ([_run("ok", 0, 3.0)], NOT_RUN, "no runs on d/fail"),
    ],
    ids=["meets", "misses", "reference-unfit", "reference-no-value", "reference-not-run", "not-run"],
)
def test_a_versus_criterion(records, verdict, note):
    row = _only(CLAIMS, records, "VERSUS")
    assert (row["verdict"], row["note"]) == (verdict, note)
    if verdict in (HOLDS, FAILS):
        reference = np.mean([r.scores["gap"] for r in records if r.condition == "ok"])
        assert row["criterion"] == f"gap > its value on ok: {reference:.3g}"
    if note == "training fit below 0.8":
        assert "on ok: a 0.5, b 0.99 (seed 0)" in row["training_fit"]


@pytest.mark.parametrize(
    "records, verdict, note",
    [
        ([_run("fail", 0, 3.0), _run("iid", 0, 1.2)], HOLDS, ""),
        # Twice the training excess but not twice the control's: overfitting, not composition.
        ([_run("fail", 0, 3.0), _run("iid", 0, 1.6)], FAILS, ""),
        ([_run("fail", 0, 1.9), _run("iid", 0, 0.9)], FAILS, ""),
        ([_run("fail", 0, 3.0)], INCONCLUSIVE, "no control run"),
        ([_run("fail", 0, 3.0), _run("iid", 0, 1.2, fit=0.6)], INCONCLUSIVE, "training fit below 0.8"),
        ([_run("fail", 0, 3.0), _run("iid", 0, math.nan)], INCONCLUSIVE, "value it is compared with is not a number"),
    ],
    ids=["meets-both", "control-too-close", "below-two", "no-control", "control-unfit", "control-no-value"],
)  # fmt: skip
def test_a_criterion_and_a_control_ratio_must_both_hold(records, verdict, note):
    row = _only(CLAIMS, records, "CONTROLLED")
    assert (row["verdict"], row["note"]) == (verdict, note)
    controls = [r.scores["gap"] for r in records if r.condition == "iid"]
    shown = f"{controls[0]:.3g}" if controls else NOT_RUN
    assert row["criterion"] == f"gap ≥ 2 and gap ≥ 2 × its value on iid: {shown}"
    assert row["control"] == f"iid: {shown}"


@pytest.mark.parametrize(
    "success, control, verdict",
    [(1.4, 1.0, HOLDS), (1.6, 1.0, FAILS), (2.9, 2.0, HOLDS)],
    ids=["within", "beyond", "a-large-gap-the-control-explains"],
)
def test_a_success_is_judged_against_its_control_alone(success, control, verdict):
    row = _only(CLAIMS, [_run("ok", 0, success), _run("iid", 0, control)], "SUCCESS")
    assert row["verdict"] == verdict and row["criterion"].startswith("gap ≤ 1.5 × its value on iid")


@pytest.mark.parametrize(
    "training, verdict",
    [
        (CONVERGED, HOLDS),
        ({"stopped": "budget", "stopped_epoch": 10, "best_epoch": 7}, HOLDS),  # a plateau of 3 epochs
        ({"stopped": "budget", "stopped_epoch": 10, "best_epoch": 8}, INCONCLUSIVE),
        ({"stopped": "budget", "stopped_epoch": 10, "best_epoch": 10, "probe_gap_tail": [1.5, 1.8, 2.4]}, INCONCLUSIVE),
        ({}, INCONCLUSIVE),
    ],
    ids=["early-stopped", "plateaued", "improving", "best-is-last", "no-record"],
)  # fmt: skip
def test_a_verdict_needs_runs_that_stopped_learning(training, verdict):
    records = [_run("fail", 0, 3.0, training=training), _run("iid", 0, 1.0)]
    row = _only(CLAIMS, records, "CONTROLLED")
    assert row["verdict"] == verdict
    if verdict == INCONCLUSIVE:
        assert row["note"].startswith("still learning: fail seed 0:")
    if training.get("probe_gap_tail") == [1.5, 1.8, 2.4]:
        assert "held-out gap probes 1.5 → 1.8 → 2.4" in row["convergence"]
    # The control must have stopped learning too.
    unfinished = {"stopped": "budget", "stopped_epoch": 4, "best_epoch": 4}
    row = _only(CLAIMS, [_run("fail", 0, 3.0), _run("iid", 0, 1.0, training=unfinished)], "CONTROLLED")
    assert row["verdict"] == INCONCLUSIVE and row["note"].startswith("still learning: iid seed 0")


def test_the_excess_difference_is_shown_beside_a_gap():
    record = _run("fail", 0, 3.0)
    record.scores["excess_delta"] = 41.5
    row = _only(CLAIMS, [record], "NUMBER")
    assert row["excess_delta"] == "41.5"


@pytest.mark.parametrize(
    "fit, verdict", [(0.95, HOLDS), (0.85, INCONCLUSIVE)], ids=["fits", "below-the-supervised-threshold"]
)
def test_supervised_runs_need_the_stricter_fit(fit, verdict):
    record = _run("fail", 0, 0.4, fit=fit, task="supervised", measure="r2_drop_main")
    row = _only(CLAIMS, [record], "SUPERVISED")
    assert row["verdict"] == verdict and "needs ≥ 0.9" in row["training_fit"]


def test_a_decoder_has_no_readout_to_check():
    row = _only(CLAIMS, [_run("fail", 0, 2.5, fit=math.nan, task="gt_decoder")], "DECODER")
    assert row["verdict"] == HOLDS and row["training_fit"].startswith("n/a (gt_decoder")


def test_a_claim_naming_models_has_a_row_for_each_even_unrun():
    claim = {**_claim({"le": 1.5}, [{"dataset": "d", "condition": "ok"}]), "models": ["a", "b"]}
    del claim["task"]
    claims = _validated_claims({"M": claim})
    records = [_run("ok", 0, 1.0, model="a"), _run("ok", 0, 1.0, model="c")]
    rows = claim_rows(claims, records)
    assert [(r["model"], r["verdict"]) for r in rows] == [("a", HOLDS), ("b", NOT_RUN)]


def test_the_claims_table_is_deterministic(tmp_path):
    import json

    runs, paths = [], []
    for i, (condition, model, seed, value) in enumerate(
        [("fail", "m", 1, 2.5), ("fail", "m", 0, 3.0), ("ok", "m", 0, 1.0), ("fail", "n", 0, 1.0)]
    ):
        runs.append(
            {
                "dataset": "d",
                "condition": condition,
                "model_name": model,
                "seed": seed,
                "model": {"task": "composition"},
            }
        )
        paths.append(tmp_path / f"scores{i}.json")
        paths[-1].write_text(json.dumps({"gap": value, "r2_train_main_min": 0.9, "main_factors": ["a", "b"]}))
    groups = {"figure": [["d", "fail", "m"]]}
    outputs = []
    for attempt in ("a", "b"):
        files = [tmp_path / f"{attempt}.{ext}" for ext in ("csv", "md", "html")]
        write_claims_table(CLAIMS, runs, paths, *files, sources={"NUMBER": "config/x.yaml"}, groups=groups)
        outputs.append([f.read_bytes() for f in files])
    assert outputs[0] == outputs[1]
    csv_text, md_text, html_text = (b.decode() for b in outputs[0])
    assert csv_text.splitlines()[0].startswith("claim,paper,dataset,condition,model,measure,value,per_seed")
    assert "seed 0: 3; seed 1: 2.5" in csv_text  # seeds in order whatever the runs' order
    assert "[figure](groups/figure.png)" in md_text and "config/x.yaml" in md_text
    assert html_text.isascii() and "&#8805;" in html_text  # ≥ as a character reference
    assert "app.showResultInfo(&#x27;results/summary/groups/figure.png&#x27;)" in html_text


# -- the shipped claims and their protection --------------------------------------------------


def test_schema_enumerations_are_the_registries():
    assert sorted(SCHEMA["$defs"]["measure"]["enum"]) == sorted(MEASURES)
    one, several = CLAIM_SCHEMA["properties"]["task"]["oneOf"]
    assert sorted(one["enum"]) == sorted(several["items"]["enum"]) == sorted(TASKS)
    task_ratio = CLAIM_SCHEMA["properties"]["checks"]["items"]["properties"]["task_ratio"]
    assert sorted(task_ratio["properties"]["task"]["enum"]) == sorted(TASKS)
    fit_tasks = CLAIM_SCHEMA["properties"]["fit"]["properties"]["tasks"]["propertyNames"]["enum"]
    assert sorted(fit_tasks) == sorted(TASKS)


def test_the_shipped_claims_are_the_papers_findings():
    claims = default_claims()
    assert list(claims) == ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10", "C11"]
    assert all(c["fit"] == DEFAULT_FIT for c in claims.values())
    failure = [("dsprites", "sqr2tx"), ("shapes3d", "shape2ohue"), ("mpi3d", "cyl2vx+four_shapes+fix_hx")]
    success = [("shapes3d", "fhue2whue"), ("mpi3d", "cyl2bkg+four_shapes+fix_hx")]
    # One iid control per dataset, sized like its failure condition's test set.
    control = {
        "dsprites": "iid_like_sqr2tx",
        "shapes3d": "iid_like_shape2ohue",
        "mpi3d": "iid_like_cyl2vx+four_shapes+fix_hx",
    }

    def checks(cid):
        c = claims[cid]
        return (
            c.get("task"),
            c["measure"],
            [
                (
                    [(r["dataset"], r["condition"], r.get("versus"), r.get("control")) for r in k["runs"]],
                    k.get("criterion"),
                    k.get("control_ratio"),
                )
                for k in c["checks"]
            ],
        )

    c1 = [*failure[:2], ("shapes3d", "shape2orient"), failure[2]]
    assert checks("C1") == (
        "composition",
        "gap",
        [([(d, c, None, control[d]) for d, c in c1], {"ge": 2}, {"ge": 2})],
    )
    assert checks("C2") == (
        "composition",
        "gap",
        [([(d, c, None, control[d]) for d, c in success], None, {"le": 1.5})],
    )
    contrast = [(*f, s[1], None) for f, s in zip(failure[1:], success, strict=True)]
    assert checks("C3") == ("composition", "gap", [(contrast, {"gt": "versus"}, None)])
    below = [(*s, f[1], None) for f, s in zip(failure[1:], success, strict=True)]
    assert checks("C4") == (
        "composition",
        "latent_error_test",
        [([(*f, None, None) for f in failure], {"ge": 2}, None), (below, {"lt": "versus"}, None)],
    )
    task, measure, [(runs, criterion, ratio)] = checks("C5")
    assert (task, measure, criterion, ratio) == ("supervised", "r2_drop_main", {"ge": 0.2}, None)
    assert {(d, c) for d, c, _, _ in runs} >= set(failure)
    iclr = [
        ("dsprites", "sqr2tx"),
        ("shapes3d", "shape2fhue"),
        ("shapes3d", "shape2ohue"),
        ("mpi3d", "cyl2hx"),
        ("mpi3d", "objc2horz"),
    ]
    assert checks("C6") == ("gt_decoder", "gap", [([(*r, None, None) for r in iclr], {"ge": 2}, None)])
    even = ("shapes3d", "shape2ohue+even_ohues")
    assert checks("C7") == (
        "composition",
        "gap",
        [
            ([(*even, "shape2ohue", None)], {"lt": "versus"}, None),
            ([(*even, None, control["shapes3d"])], None, {"le": 1.5}),
        ],
    )


SHIPPED = yaml.safe_load(CLAIMS_PATH.read_text())["claims"]


def _study_with_claims(extra_claims) -> dict:
    """config/demo.yaml as the Snakefile merges it: conditions, the shipped claims, the study."""
    library = yaml.safe_load((ROOT / "config/conditions.yaml").read_text())
    study = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    shipped = {"claims": copy.deepcopy(SHIPPED)}  # validation fills defaults in place
    return merged(merged(merged(library, shipped), study), {"claims": copy.deepcopy(extra_claims)})


@pytest.mark.parametrize(
    "change, key",
    [
        ({"C1": {"checks": [{**SHIPPED["C1"]["checks"][0], "criterion": {"ge": 1.5}}]}},
         "claims.C1.checks[0].criterion.ge: is 1.5; the shipped claim (config/claims.yaml) has 2. A study"),
        ({"C1": {"checks": [{"runs": [{"dataset": "dsprites", "condition": "sqr2tx"}], "criterion": {"ge": 1.5}}]}},
         "claims.C1.checks[0].criterion.ge: is 1.5; the shipped claim (config/claims.yaml) has 2 (also "
         "changed: claims.C1.checks[0].runs[0].control, claims.C1.checks[0].runs[1], claims.C1.checks[0].runs[2], ...)"),
        ({"C2": {"fit": {"min": 0.5}}}, "claims.C2.fit.min: is 0.5; the shipped claim"),
        ({"C2": {"fit": {"converged": False}}}, "claims.C2.fit.converged: is False; the shipped claim"),
        ({"C2": {"checks": [{**SHIPPED["C2"]["checks"][0], "control_ratio": {"le": 3}}]}},
         "claims.C2.checks[0].control_ratio.le: is 3; the shipped claim (config/claims.yaml) has 1.5"),
        ({"C5": {"fit": {"tasks": {"supervised": 0.8}}}}, "claims.C5.fit.tasks.supervised: is 0.8"),
        ({"C4": {"measure": "gap"}}, "claims.C4.measure: is 'gap'"),
        ({"C6": {"models": ["vae"]}}, "claims.C6.models: is not in the shipped claim"),
    ],
    ids=["threshold", "threshold-and-runs", "fit", "converged", "control-ratio", "supervised-fit", "measure", "models"],
)  # fmt: skip
def test_a_study_cannot_change_a_shipped_claim(change, key):
    with pytest.raises(ConfigError, match="A study config may add claims under new ids") as err:
        validate_study(_study_with_claims(change))
    assert f"config key {key}" in str(err.value)


def test_a_study_may_repeat_a_shipped_claim_and_add_its_own():
    own = _claim({"ge": 3}, [{"dataset": "dsprites", "condition": "sqr2tx"}])
    config = validate_study(_study_with_claims({"C1": copy.deepcopy(SHIPPED["C1"]), "S1": own}))
    assert list(config["claims"]) == [*SHIPPED, "S1"]
    assert config["claims"]["S1"]["fit"] == DEFAULT_FIT


@pytest.mark.parametrize(
    "claim, message",
    [
        (_claim({"gt": "versus"}, [{"dataset": "d", "condition": "c"}]), "claims.X.checks[0].runs[0].versus: required"),
        (_claim({"ge": 2}, [{"dataset": "d", "condition": "c", "versus": "e"}]), "versus: applies only when"),
        (_claim({"lt": "versus"}, [{"dataset": "d", "condition": "c", "versus": "c"}]), "the condition itself"),
        ({**_claim({"ge": 2}, [{"dataset": "d", "condition": "c"}]), "models": ["m"]}, "claims.X: give task or models"),
        (_claim({"ge": 2}, [{"dataset": "d", "condition": "c", "control": "i"}]), "claims.X.checks[0].runs[0].control: applies only with"),
        ({**_claim({"ge": 2}, [{"dataset": "d", "condition": "c"}]), "checks": [{"runs": [{"dataset": "d", "condition": "c"}], "control_ratio": {"le": 1.5}}]},
         "claims.X.checks[0].runs[0].control: required, the check has control_ratio"),
        ({**_claim({"ge": 2}, []), "checks": [{"runs": [{"dataset": "d", "condition": "c", "control": "c"}], "control_ratio": {"le": 1.5}}]},
         "the condition or its versus"),
    ],
    ids=["versus-missing", "versus-unused", "versus-itself", "task-and-models", "control-unused", "control-missing", "control-itself"],
)  # fmt: skip
def test_malformed_claims_are_refused(claim, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _validated_claims({"X": claim})


def test_each_claim_says_which_config_it_came_from(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({"claims": {"S1": {}, "C1": {}}}))
    sources = claim_sources({"C1": {}, "S1": {}}, [study, ROOT / "config/conditions.yaml", CLAIMS_PATH], ROOT)
    assert sources == {"C1": "config/claims.yaml", "S1": str(study)}


# -- the workflow -------------------------------------------------------------------------------


@pytest.mark.workflow
@pytest.mark.parametrize("name", STUDY_CONFIGS)
def test_every_study_plans_the_claims_rule(tmp_path, name):
    done = run_snakemake(tmp_path, "-n", "--configfile", str(ROOT / f"config/{name}.yaml"), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    plan = done.stdout + done.stderr
    assert (
        "rule claims:" in plan
        and "results/summary/claims.csv" in plan
        and "results/summary/claims.md" in plan
    )


@pytest.mark.workflow
def test_snakemake_refuses_a_study_that_loosens_a_claim(tmp_path):
    study = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    study["claims"] = {"C2": {"fit": {"min": 0.5}}}
    (tmp_path / "loose.yaml").write_text(yaml.safe_dump(study))
    done = run_snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "loose.yaml"), timeout=300)
    assert done.returncode != 0
    assert "config key claims.C2.fit.min: is 0.5" in done.stdout + done.stderr
    assert not Path(tmp_path / "results").exists()
