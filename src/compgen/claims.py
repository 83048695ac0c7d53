"""The papers' claims, checked by the pipeline: one row per claim, run target and model.

A claim (config `claims`; the defaults C1-C11 in config/claims.yaml, which a study config may extend
but not change: compgen.config.check_claims) names the runs it applies to (a task or models; per
check, datasets and conditions), a measure (MEASURES: a score in each run's scores.json) and, per
check, up to two criteria that must all hold:

- `criterion`: ge, gt, le or lt with a number, or with `versus`, the same measure of the same
  model on another condition of the same dataset (C3, C4, C7);
- `task_ratio`: ge, gt, le or lt with a number r and a task: the measure against r times its mean
  over that task's runs on the same target (C8: the VAEs' NLL difference against the ground-truth
  decoders'); that task's models get no rows in the check;
- `control_ratio`: ge, gt, le or lt with a number r: the measure is compared with r times its value
  on the run target's `control` condition (same dataset, same model; an `iid` split of the same
  size, whose held-out images are unseen images of *trained* combinations). A gap above 1 comes
  from overfitting as well as from held-out combinations; the control says how much of it is the
  former.

Each row of the table:

- **value**: the measure's mean over the seeds of one (dataset, condition, model), its sample
  standard deviation (ddof 1; none for one seed) and every seed's value; beside a gap, its
  `excess_delta` (recon_excess_test - recon_excess_train: the ratio is unstable when the training
  excess is small) and the control's value.
- **training fit**: a verdict needs the model to have learned the condition's two factors on its
  training images: the kind-aware, chance-corrected readout `fit_main` (compgen.metrics.fit: 0
  is chance, 1 perfect) of each at least the claim's `fit.min` (0.8; `fit.tasks`: supervised 0.9),
  for every seed of the row, of its versus reference and of its control (on the same two factors).
  A task without a representation (gt_decoder, fed the factors themselves) has no readout: the
  check does not apply.
- **convergence**: a verdict needs runs that stopped learning (`fit.converged`): trained until
  early stopping said so (`training.patience`; run.json `stopped: converged`) or whose best
  validation epoch lies at least `fit.plateau` epochs before their last. Else `inconclusive (still
  learning: ...)`, with the run's last held-out gap probes (training.fit_probe) shown.
- **verdict**: `not run` when the row's runs, or its reference's, are missing; `inconclusive` when
  a control is missing, the training fit fails, a run is still learning, or a value is not a number
  (all shown, never guessed); else `holds` or `does not hold`, by the criteria on the means over
  seeds.

A claim with `correlation` (C11) instead has one row per run target across its models: Spearman's
rho of the measure against another score (per model, means over seeds), `holds` unless it is
significant (one-sided p < alpha) in the direction the claim denies.

Light to import (no torch): the workflow plans the claims rule with it.
"""

from __future__ import annotations

import csv
import html
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from compgen.atomic import atomic_path
from compgen.scores import read_scores
from compgen.tasks import get_task

# What a claim may measure: score keys of scores.json (the schema's claims.*.measure enumeration).
MEASURES = {
    "gap": "recon_excess_test / recon_excess_train: excess reconstruction loss (loss less its floor) "
    "of single held-out over single training images (the paper's measure, for every task)",
    "gap_composed": "the composition task's gap on composed targets (triplets whose target is held out "
    "over triplets of training combinations)",
    "excess_delta": "recon_excess_test - recon_excess_train (single images)",
    "excess_delta_composed": "the same difference on composed targets",
    "recon_train": "reconstruction loss (the negative log-likelihood, nats per image), training images",
    "recon_test": "reconstruction loss (the negative log-likelihood, nats per image), held-out images",
    "nll_ratio": "recon_test / recon_train: the ICLR paper's measure on dSprites (raw NLLs, no floor)",
    "nll_delta": "recon_test - recon_train: the ICLR paper's measure on 3DShapes, whose NLL sits on a floor",
    "recon_excess_train": "reconstruction loss less its floor, training images",
    "recon_excess_test": "reconstruction loss less its floor, held-out images",
    "latent_error_test": "distance of encoded held-out images from the latent oracle's prediction, "
    "relative to training images (compgen.analysis.oracle)",
    "recon_test_oracle": "reconstruction loss of the oracle's latents of held-out images",
    "r2_train_main": "mean readout R² of the condition's two factors, training images",
    "r2_test_main": "mean readout R² of the condition's two factors, held-out images",
    "r2_drop_main": "r2_train_main - r2_test_main",
    "r2_train_mean": "mean readout R² of the scored factors, training images",
    "r2_test_mean": "mean readout R² of the scored factors, held-out images",
}
# Measures of training images alone: the only ones an all-data reference (family none) has.
TRAINING_MEASURES = ("recon_train", "recon_excess_train", "r2_train_main", "r2_train_mean")
# Measures computed here from a run's scores (kept out of scores.json: they follow from it).
DERIVED = {
    "nll_ratio": lambda s: s["recon_test"] / s["recon_train"] if s["recon_train"] else math.nan,
    "nll_delta": lambda s: s["recon_test"] - s["recon_train"],
}
# Shown beside a measure that is a ratio of excesses.
DELTA_OF = {"gap": "excess_delta", "gap_composed": "excess_delta_composed"}
CRITERIA = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
VERSUS = "versus"
# Kind-aware, chance-corrected readout of each of the condition's two factors (compgen.metrics.fit).
FIT_SCORE = "fit_main"
HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, NOT_RUN)
COLUMNS = [
    "claim",
    "paper",
    "dataset",
    "condition",
    "model",
    "measure",
    "value",
    "per_seed",
    "excess_delta",
    "control",
    "criterion",
    "verdict",
    "note",
    "training_fit",
    "convergence",
    "mean",
    "sd",
    "n_seeds",
    "figures",
    "config",
    "wording",
]


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


@dataclass(frozen=True)
class RunRecord:
    """One run as the claims see it: where it ran, its model's task, and its scores (or None)."""

    dataset: str
    condition: str
    model: str
    seed: int
    task: str
    scores: Mapping | None = None

    def score(self, key: str) -> float:
        if key in DERIVED:
            parts = {k: self.score(k) for k in ("recon_train", "recon_test")}
            return DERIVED[key](parts)
        return _number((self.scores or {}).get(key))

    def factor_fit(self, factors: Iterable[str]) -> dict[str, float]:
        """The kind-aware readout of each of `factors` on training images (NaN where missing)."""
        per_factor = (self.scores or {}).get("fit_train") or {}
        return {f: _number(per_factor.get(f)) for f in factors}

    @property
    def training(self) -> Mapping:
        """How training ended (compgen.analysis.evaluate.training_end): stopped, epochs, gap probes."""
        return (self.scores or {}).get("training") or {}


def run_record(spec: Mapping, scores: Mapping | None = None) -> RunRecord:
    """A record from a run spec (compgen.study.Run.spec) and its scores."""
    return RunRecord(
        spec["dataset"],
        spec["condition"],
        spec["model_name"],
        int(spec["seed"]),
        spec["model"]["task"],
        scores,
    )


def load_records(runs: list[Mapping], score_paths: list[str | os.PathLike]) -> list[RunRecord]:
    """Records of the study's runs (specs) with their scores.json files, given in the same order."""
    if len(runs) != len(score_paths):
        raise ValueError(f"{len(runs)} runs but {len(score_paths)} score files")
    records = []
    for spec, path in zip(runs, score_paths, strict=True):
        records.append(run_record(spec, read_scores(path)))
    return records


@dataclass(frozen=True)
class RowKey:
    """A row to fill: a claim's check at one run target, for one model (None: no model ran there)."""

    claim: str
    check: int
    dataset: str
    condition: str
    versus: str | None
    model: str | None
    control: str | None = None


def claim_tasks(claim: Mapping) -> list[str]:
    """The tasks whose runs a claim applies to (`task`: one name or a list; none with `models`)."""
    task = claim.get("task", [])
    return [task] if isinstance(task, str) else list(task)


def plan_rows(claims: Mapping, runs: Iterable[RunRecord]) -> list[RowKey]:
    """The table's rows, in the claims' order: per check and run target, one row per model the
    claim applies to (a claim naming models: each of them, run or not; a claim naming a task: each
    model of that task run on the target, in the study's order, or one `not run` row if none)."""
    runs = list(runs)
    rows = []
    for cid, claim in claims.items():
        for i, check in enumerate(claim["checks"]):
            for target in check["runs"]:
                dataset, condition = target["dataset"], target["condition"]
                if "correlation" in claim:
                    models = [None]  # one row across the models
                elif "models" in claim:
                    models = list(claim["models"])
                else:
                    tasks = set(claim_tasks(claim)) - {check.get("task_ratio", {}).get("task")}
                    here = (
                        r.model
                        for r in runs
                        if (r.dataset, r.condition) == (dataset, condition) and r.task in tasks
                    )
                    models = list(dict.fromkeys(here)) or [None]
                rows += [
                    RowKey(cid, i, dataset, condition, target.get("versus"), m, target.get("control"))
                    for m in models
                ]
    return rows


def row_groups(key: RowKey, groups: Mapping[str, Iterable]) -> list[str]:
    """The figure groups that show the row's runs (or its versus reference's or control's), in the
    groups' order."""
    wanted = {(key.dataset, key.condition, key.model)}
    for other in (key.versus, key.control):
        if other:
            wanted.add((key.dataset, other, key.model))
    return [name for name, members in groups.items() if wanted & {tuple(m) for m in members}]


def figure_links(claims: Mapping, runs: Iterable[RunRecord], groups: Mapping[str, Iterable]) -> list[dict]:
    """Per row with runs in a figure group: its label and the groups (the report caption links them)."""
    out = []
    for key in plan_rows(claims, runs):
        if key.model is None:
            continue
        names = row_groups(key, groups)
        if names:
            label = f"{key.claim} · {key.dataset} / {key.condition} / {key.model}"
            out.append({"row": label, "groups": names})
    return out


def fmt(x: float) -> str:
    """Three significant digits; whole numbers from 1000 on (a loss of 1914, not 1.91e+03)."""
    if not math.isfinite(x):
        return "nan"
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _mean_sd(values: list[float]) -> tuple[float, float]:
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = math.fsum(values) / n
    if n == 1:
        return mean, math.nan
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def _mean(runs: list[RunRecord], key: str) -> float:
    return _mean_sd([r.score(key) for r in runs])[0]


def _holds(value: float, op: str, bound: float) -> bool:
    return {"ge": value >= bound, "gt": value > bound, "le": value <= bound, "lt": value < bound}[op]


def _fit(runs: list[RunRecord], factors: list[str], threshold: float) -> tuple[bool, str]:
    """(every seed fits each factor, the per-seed fits as text)."""
    ok, parts = True, []
    for r in runs:
        fits = r.factor_fit(factors)
        ok = ok and bool(fits) and all(math.isfinite(f) and f >= threshold for f in fits.values())
        parts.append(", ".join(f"{name} {fmt(f)}" for name, f in fits.items()) + f" (seed {r.seed})")
    return ok, "; ".join(parts)


def converged(run: RunRecord, plateau: int) -> bool:
    """Stopped by early stopping, or its best validation epoch at least `plateau` before its last."""
    end = run.training
    if end.get("stopped") == "converged":
        return True
    last, best = _number(end.get("stopped_epoch")), _number(end.get("best_epoch"))
    return math.isfinite(last) and math.isfinite(best) and last - best >= plateau


def _convergence(runs: list[RunRecord], plateau: int) -> tuple[str, str]:
    """How each run ended (stop, epochs, its last held-out gap probes), for all runs and for those
    still learning ("" when none)."""
    parts, learning = [], []
    for r in runs:
        end = r.training
        if not end:
            text = f"{r.condition} seed {r.seed}: unknown (no training record)"
        else:
            text = (
                f"{r.condition} seed {r.seed}: {end.get('stopped', '?')} at epoch "
                f"{end.get('stopped_epoch', '?')} (best {end.get('best_epoch', '?')})"
            )
            probes = [fmt(_number(g)) for g in end.get("probe_gap_tail") or []]
            if probes:
                text += f", held-out gap probes {' → '.join(probes)}"
        parts.append(text)
        if not converged(r, plateau):
            learning.append(text)
    return "; ".join(parts), "; ".join(learning)


def _correlation_row(row: dict, key: RowKey, claim: Mapping, by_task: Mapping) -> dict:
    """One row across the models run on the target: the rank correlation of the measure with
    another score (means over seeds per model), and whether it is significant in the direction the
    claim denies."""
    spec, measure = claim["correlation"], claim["measure"]
    runs = [
        r
        for task in claim_tasks(claim)
        for r in by_task.get((key.dataset, key.condition, task), [])
        if "models" not in claim or r.model in claim["models"]
    ]
    by_model: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_model.setdefault(r.model, []).append(r)
    side = {"less": "negative", "greater": "positive"}[spec["significant"]]
    row["criterion"] = (
        f"Spearman ρ of {measure} against {spec['with']} across models, not significantly {side} "
        f"(one-sided p ≥ {spec['alpha']:g}; at least {spec['min_models']} models)"
    )
    if not runs:
        row.update(verdict=NOT_RUN, note=f"no runs on {key.dataset}/{key.condition}")
        return row
    points = {m: (_mean(rs, spec["with"]), _mean(rs, measure)) for m, rs in by_model.items()}
    usable = {m: xy for m, xy in points.items() if all(math.isfinite(v) for v in xy)}
    row.update(
        per_seed="; ".join(
            f"{m}: {spec['with']} {fmt(x)}, {measure} {fmt(y)}" for m, (x, y) in points.items()
        ),
        n_seeds=len(runs),
    )
    row["convergence"], learning = _convergence(runs, int(claim["fit"]["plateau"]))
    if claim["fit"]["converged"] and learning:
        row.update(verdict=INCONCLUSIVE, note=f"still learning: {learning}")
        return row
    if len(usable) < spec["min_models"]:
        row.update(
            verdict=INCONCLUSIVE,
            note=f"{len(usable)} models with both values; the correlation needs {spec['min_models']}",
        )
        return row
    from scipy.stats import spearmanr  # only here: the claims module stays light to import

    xs, ys = zip(*usable.values(), strict=True)
    rho, p = spearmanr(xs, ys, alternative=spec["significant"])
    row.update(value=f"ρ = {fmt(float(rho))} (p = {fmt(float(p))}, {len(usable)} models)", mean=float(rho))
    if not math.isfinite(p):
        row.update(verdict=INCONCLUSIVE, note="the correlation is not a number (a constant score)")
    else:
        row["verdict"] = HOLDS if p >= spec["alpha"] else FAILS
    return row


def _row(
    key: RowKey, claim: Mapping, by_run: Mapping, by_task: Mapping, source: str, groups: Mapping
) -> dict:
    check = claim["checks"][key.check]
    measure = check.get("measure", claim["measure"])
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        claim=key.claim,
        paper=claim["paper"],
        wording=claim["wording"],
        dataset=key.dataset,
        condition=key.condition,
        model=key.model if key.model is not None else f"(any {' or '.join(claim_tasks(claim))} model)",
        measure=measure,
        config=source,
        n_seeds=0,
    )
    if "correlation" in claim:
        return _correlation_row(row, key, claim, by_task)
    runs = sorted(by_run.get((key.dataset, key.condition, key.model), []), key=lambda r: r.seed)
    reference = sorted(by_run.get((key.dataset, key.versus, key.model), []), key=lambda r: r.seed)
    controls = sorted(by_run.get((key.dataset, key.control, key.model), []), key=lambda r: r.seed)

    # The criteria as (text, op, target value); a target that is missing is NaN.
    tests: list[tuple[str, str, float]] = []
    if "criterion" in check:
        ((op, bound),) = check["criterion"].items()
        if bound == VERSUS:
            target = _mean(reference, measure) if reference else math.nan
            shown = fmt(target) if reference else NOT_RUN
            tests.append((f"{measure} {CRITERIA[op]} its value on {key.versus}: {shown}", op, target))
        else:
            tests.append((f"{measure} {CRITERIA[op]} {fmt(float(bound))}", op, float(bound)))
    if "control_ratio" in check:
        ((op, ratio),) = check["control_ratio"].items()
        control = _mean(controls, measure) if controls else math.nan
        shown = fmt(control) if controls else NOT_RUN
        tests.append(
            (f"{measure} {CRITERIA[op]} {fmt(float(ratio))} × its value on {key.control}: {shown}", op,
             float(ratio) * control)
        )  # fmt: skip
        row["control"] = f"{key.control}: {shown}"
    peers: list[RunRecord] = []  # the runs of task_ratio's task on the target
    if "task_ratio" in check:
        spec = dict(check["task_ratio"])
        peer_task = spec.pop("task")
        ((op, ratio),) = spec.items()
        peers = sorted(
            by_task.get((key.dataset, key.condition, peer_task), []), key=lambda r: (r.model, r.seed)
        )
        peer = _mean(peers, measure) if peers else math.nan
        shown = fmt(peer) if peers else NOT_RUN
        tests.append(
            (f"{measure} {CRITERIA[op]} {fmt(float(ratio))} × the {peer_task} runs' value: {shown}", op,
             float(ratio) * peer)
        )  # fmt: skip
    row["criterion"] = " and ".join(text for text, _, _ in tests)
    if not runs or (key.versus and not reference):
        missing = key.condition if not runs else key.versus
        row.update(verdict=NOT_RUN, note=f"no runs on {key.dataset}/{missing}")
        return row

    values = [r.score(measure) for r in runs]
    mean, sd = _mean_sd(values)
    row.update(
        value=fmt(mean) if not math.isfinite(sd) else f"{fmt(mean)} ± {fmt(sd)}",
        per_seed="; ".join(f"seed {r.seed}: {fmt(v)}" for r, v in zip(runs, values, strict=True)),
        mean=mean,
        sd=sd,
        n_seeds=len(runs),
        figures="; ".join(row_groups(key, groups)),
    )
    if measure in DELTA_OF:
        row["excess_delta"] = fmt(_mean(runs, DELTA_OF[measure]))

    task = runs[0].task
    fit_cfg = claim["fit"]
    threshold = float(fit_cfg["tasks"].get(task, fit_cfg["min"]))
    involved = [("", runs), (key.versus, reference), (key.control, controls)]
    factors = list((runs[0].scores or {}).get("main_factors") or [])
    if not get_task(task).has_representation:
        fit_ok, row["training_fit"] = True, f"n/a ({task}: no representation to read out)"
    else:
        fit_ok, texts = True, []
        for name, group in involved:
            if not group:
                continue
            ok, text = _fit(group, factors, threshold)
            fit_ok = fit_ok and ok
            texts.append(f"on {name}: {text}" if name else text)
        row["training_fit"] = f"fit {'; '.join(texts)}; needs ≥ {threshold:g} for each"
    all_runs = [r for _, group in involved for r in group] + peers
    row["convergence"], learning = _convergence(all_runs, int(fit_cfg["plateau"]))
    done = not (fit_cfg["converged"] and learning)

    value_ok = math.isfinite(mean) and all(math.isfinite(t) for _, _, t in tests)
    if key.control and not controls:
        row.update(verdict=INCONCLUSIVE, note="no control run")
    elif "task_ratio" in check and not peers:
        row.update(verdict=INCONCLUSIVE, note=f"no {check['task_ratio']['task']} run to compare with")
    elif not fit_ok:
        row.update(verdict=INCONCLUSIVE, note=f"training fit below {threshold:g}")
    elif not done:
        row.update(verdict=INCONCLUSIVE, note=f"still learning: {learning}")
    elif not value_ok:
        what = "value" if not math.isfinite(mean) else "value it is compared with"
        row.update(verdict=INCONCLUSIVE, note=f"{what} is not a number")
    else:
        row["verdict"] = HOLDS if all(_holds(mean, op, t) for _, op, t in tests) else FAILS
    return row


def claim_rows(
    claims: Mapping,
    records: Iterable[RunRecord],
    sources: Mapping[str, str] | None = None,
    groups: Mapping[str, Iterable] | None = None,
) -> list[dict]:
    """Every row of the claims table (COLUMNS), in the claims' order (see the module docstring).
    `sources`: claim id -> the config file it came from; `groups`: figure group -> its runs as
    (dataset, condition, model)."""
    records = list(records)
    by_run: dict[tuple, list[RunRecord]] = {}
    by_task: dict[tuple, list[RunRecord]] = {}
    for r in records:
        by_run.setdefault((r.dataset, r.condition, r.model), []).append(r)
        by_task.setdefault((r.dataset, r.condition, r.task), []).append(r)
    sources, groups = sources or {}, groups or {}
    return [
        _row(key, claims[key.claim], by_run, by_task, sources.get(key.claim, ""), groups)
        for key in plan_rows(claims, records)
    ]


# -- writing ------------------------------------------------------------------------------------


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return str(value)


def write_csv(rows: list[dict], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows([_cell(row[c]) for c in COLUMNS] for row in rows)


def _tally(rows: list[dict]) -> str:
    counts = {v: sum(row["verdict"] == v for row in rows) for v in VERDICTS}
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no claims"


def _claim_list(claims: Mapping, sources: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
    return [(cid, c["paper"], c["wording"], sources.get(cid, "")) for cid, c in claims.items()]


MD_COLUMNS = [
    ("claim", "claim"),
    ("dataset", "dataset"),
    ("condition", "condition"),
    ("model", "model"),
    ("measure", "measure"),
    ("value", "value (mean ± sd)"),
    ("per_seed", "per seed"),
    ("excess_delta", "excess Δ"),
    ("control", "control"),
    ("criterion", "criterion"),
    ("verdict", "verdict"),
    ("training_fit", "training fit"),
    ("convergence", "convergence"),
    ("figures", "figures"),
    ("config", "config"),
]


def _verdict_text(row: dict) -> str:
    return f"{row['verdict']} ({row['note']})" if row["note"] else row["verdict"]


def markdown(rows: list[dict], claims: Mapping, sources: Mapping[str, str]) -> str:
    """The table in Markdown; figure groups link to results/summary/groups/<group>.png."""
    esc = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["# Paper claims", "", f"Verdicts: {_tally(rows)}.", ""]
    lines += [
        f"- **{cid}** ({esc(paper)}): {esc(wording)}" + (f" ({source})" if source else "")
        for cid, paper, wording, source in _claim_list(claims, sources)
    ]
    lines += ["", "| " + " | ".join(h for _, h in MD_COLUMNS) + " |", "|" + "---|" * len(MD_COLUMNS)]
    for row in rows:
        cells = []
        for column, _ in MD_COLUMNS:
            if column == "verdict":
                text = f"**{esc(_verdict_text(row))}**"
            elif column == "figures" and row["figures"]:
                text = ", ".join(f"[{g}](groups/{g}.png)" for g in row["figures"].split("; "))
            else:
                text = esc(_cell(row[column]))
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# Every selector under .compgen-claims: the report embeds the fragment in its own page.
_STYLE = (
    ".compgen-claims table{border-collapse:collapse;font-size:90%}"
    ".compgen-claims th,.compgen-claims td{border:1px solid #ccc;padding:2px 5px;text-align:left;"
    "vertical-align:top}.compgen-claims th{background:#f3f3f3}"
    ".compgen-claims .holds{background:#d9f2d9}.compgen-claims .does-not-hold{background:#f7d4d4}"
    ".compgen-claims .inconclusive{background:#fff1c2}"
    ".compgen-claims .not-run{background:#e8e8e8;color:#555}"
)
GROUP_FIGURE = "results/summary/groups/{group}.png"


def _figure_link(group: str) -> str:
    """A group figure: in the report, the report's own view of it (its `app`); on disk, the file."""
    path = GROUP_FIGURE.format(group=group)
    show = f"if(window.app){{app.showResultInfo('{path}');return false;}}"
    return f'<a href="groups/{html.escape(group)}.png" onclick="{html.escape(show)}">{html.escape(group)}</a>'


def html_table(rows: list[dict], claims: Mapping, sources: Mapping[str, str]) -> str:
    """The table as an HTML fragment, ASCII with character references (so no charset can garble
    it): the report embeds it on its first page (workflow/report/workflow.rst) and shows it as an
    item; a browser opens it from disk."""
    e = html.escape
    parts = [
        '<div class="compgen-claims">',
        f"<style>{_STYLE}</style>",
        f"<p>Verdicts: {e(_tally(rows))}.</p>",
        "<ul>",
    ]
    parts += [
        f"<li><b>{e(cid)}</b> ({e(paper)}): {e(wording)}"
        + (f" <i>({e(source)})</i>" if source else "")
        + "</li>"
        for cid, paper, wording, source in _claim_list(claims, sources)
    ]
    parts.append("</ul>\n<table>\n<tr>" + "".join(f"<th>{e(h)}</th>" for _, h in MD_COLUMNS) + "</tr>")
    for row in rows:
        cells = []
        for column, _ in MD_COLUMNS:
            if column == "verdict":
                css = row["verdict"].replace(" ", "-")
                cells.append(f'<td class="{css}"><b>{e(_verdict_text(row))}</b></td>')
            elif column == "figures" and row["figures"]:
                cells.append("<td>" + ", ".join(map(_figure_link, row["figures"].split("; "))) + "</td>")
            else:
                cells.append(f"<td>{e(_cell(row[column]))}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>\n</div>")
    text = "\n".join(parts) + "\n"
    return text.encode("ascii", "xmlcharrefreplace").decode("ascii")


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_claims_table(
    claims: Mapping,
    runs: list[Mapping],
    score_paths: list[str | os.PathLike],
    csv_path: str | os.PathLike,
    md_path: str | os.PathLike,
    html_path: str | os.PathLike | None = None,
    sources: Mapping[str, str] | None = None,
    groups: Mapping[str, Iterable] | None = None,
) -> list[dict]:
    """The claims table of a study (run specs and their scores.json, in the same order) as CSV,
    Markdown and (optionally) HTML; returns the rows."""
    sources = sources or {}
    rows = claim_rows(claims, load_records(runs, score_paths), sources, groups)
    write_csv(rows, csv_path)
    write_text(markdown(rows, claims, sources), md_path)
    if html_path is not None:
        write_text(html_table(rows, claims, sources), html_path)
    return rows


def claim_sources(claims: Mapping, configfiles: Iterable, basedir: str | os.PathLike | None = None) -> dict:
    """Claim id -> the config file that declares it (of those Snakemake loaded), relative to
    `basedir` when inside it: the shipped config/claims.yaml for a default claim (a study config
    may repeat one but not change it: compgen.config.check_claims), else the first file naming it."""
    from compgen.config import CLAIMS_PATH, load_config_file

    shipped = os.path.realpath(CLAIMS_PATH)
    files = sorted(configfiles, key=lambda path: os.path.realpath(path) != shipped)  # stable
    out: dict[str, str] = {}
    for path in files:
        declared = (load_config_file(path) or {}).get("claims") or {}
        shown = str(path)
        if basedir is not None:
            relative = os.path.relpath(os.path.realpath(path), os.path.realpath(basedir))
            shown = shown if relative.startswith("..") else relative
        for cid in declared:
            out.setdefault(cid, shown)
    return {cid: out.get(cid, "") for cid in claims}
