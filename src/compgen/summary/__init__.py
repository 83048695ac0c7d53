"""Scores of many runs: a tidy table, means over seeds, and LaTeX tables for the paper's groups."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from compgen.analysis.dci_choice import DCI_LABELS, DCI_PREFIXES, dci_key
from compgen.atomic import atomic_path
from compgen.datasets.provenance import STAND_IN, data_note
from compgen.scores import read_scores
from compgen.summary.published import attach_paper, paper_scores, paper_sources, with_nll_measures

RUN_COLUMNS = ["run_id", "dataset", "condition", "model", "seed"]
# The paper's group tables: reconstruction on train and held-out combinations, the gap (held-out
# over training excess, compgen.metrics.excess) with its difference beside it, readout, D. These
# tables are compared with the paper, so D is the paper's DCI variant (dummy-padded, entropy base
# = latent size); the standard Eastwood & Williams D is `dci_disentanglement` in the CSVs.
GROUP_TABLE_COLUMNS = {
    "recon_train": "Recon.\\ train",
    "recon_test": "Recon.\\ test",
    "gap": "Gap",
    "excess_delta": "Excess $\\Delta$",
    "gap_composed": "Gap (composed)",
    "excess_delta_composed": "Excess $\\Delta$ (composed)",
    "r2_test_mean": "$R^2$ test",
    "dci_paper_disentanglement": "Disentanglement (paper's DCI)",
}
GROUP_TABLE_LOWER_IS_BETTER = {
    "recon_train",
    "recon_test",
    "gap",
    "excess_delta",
    "gap_composed",
    "excess_delta_composed",
}
# Scores only the composition task reports: a group table without such runs leaves them out.
GROUP_TABLE_OPTIONAL = {"gap_composed", "excess_delta_composed"}
GROUP_COLUMNS = ["dataset", "condition", "model"]
TIDY_COLUMNS = RUN_COLUMNS + ["metric", "value"]
# The D column's score keys, one per DCI variant (config `analysis.dci` picks one).
DCI_DISENTANGLEMENT = {dci_key(variant) for variant in DCI_PREFIXES}
# With a paper's published values (config `published`): compgen's NLL ratio and difference join the
# table after the held-out NLL, and each compared score gets the paper's value in the next column.
NLL_COLUMNS = {"nll_ratio": "NLL ratio", "nll_delta": "NLL $\\Delta$"}
PAPER_HEADINGS = {
    "recon_train": "Paper train",
    "recon_test": "Paper test",
    "nll_ratio": "Paper ratio",
    "nll_delta": "Paper $\\Delta$",
    "disentanglement": "Paper D",
}
# Marks a paper value its authors set rather than measured (the note is in the CSVs' paper_note).
PAPER_NOTE_MARK = "*"

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def _flatten_numeric(scores: Mapping, prefix: str = "") -> Iterable[tuple[str, float]]:
    """(metric name, value) for every number in a nested dict; `a/b` names nested keys."""
    for key, value in scores.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten_numeric(value, prefix=f"{name}/")
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            yield name, float(value)
        elif value is None:
            # JSON null is how a NaN score (e.g. R² of a single-valued factor) may be stored.
            yield name, math.nan


# Keys of scores.json that describe the analysis rather than score the model.
NOT_METRICS = ("run_id", "preset", "samples", "provenance")


def provenance_columns(scores: Mapping) -> dict[str, object]:
    """What defines a run, as flat columns ("model.beta", "training.lr", "versions.torch",
    "data.source", "data.sha256", ...) so that any row of a table can be read alone."""
    columns: dict[str, object] = {"analysis.preset": scores["preset"]} if "preset" in scores else {}
    # False for an all-data reference run: its *_test scores are not applicable.
    if "heldout" in scores:
        columns["analysis.heldout"] = bool(scores["heldout"])

    def flatten(value, name: str) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                flatten(inner, f"{name}.{key}" if name else str(key))
        elif isinstance(value, (list, tuple)):
            columns[name] = json.dumps(value)
        else:
            columns[name] = value

    flatten(scores.get("provenance", {}), "")
    if "data" in scores.get("provenance", {}):
        columns["data.note"] = data_note(scores["provenance"]["data"])
    return columns


def collect_scores(entries: list[dict]) -> pd.DataFrame:
    """Tidy frame, one row per (run, metric), with the run's provenance columns; lists, strings
    and booleans among the scores are skipped."""
    rows = []
    for entry in entries:
        run = {column: entry[column] for column in RUN_COLUMNS}
        metrics = {k: v for k, v in entry["scores"].items() if k not in NOT_METRICS}
        context = provenance_columns(entry["scores"])
        for metric, value in _flatten_numeric(metrics):
            rows.append({**run, "metric": metric, "value": value, **context})
    tidy = pd.DataFrame(rows)
    extra = sorted(set(tidy.columns) - set(TIDY_COLUMNS))
    tidy = tidy.reindex(columns=TIDY_COLUMNS + extra)
    return tidy.astype({"value": "float64"})


def _one_value(values: pd.Series):
    """A provenance column over a run's seeds: its value, or every distinct value joined by "; "."""
    distinct = values.dropna().astype(str).unique()
    if len(distinct) == 1:
        return values.dropna().iloc[0]
    return "; ".join(sorted(distinct)) if len(distinct) else None


def aggregate(tidy: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std (ddof=1; NaN for one seed) and number of seeds with a finite value, with
    the provenance columns the seeds share."""
    keys = GROUP_COLUMNS + ["metric"]
    grouped = tidy.groupby(keys, sort=False)
    out = grouped["value"].agg(mean="mean", std="std", n_seeds="count")
    context = [c for c in tidy.columns if c not in TIDY_COLUMNS]
    if context:
        out = out.join(grouped[context].agg(_one_value))
    return out.reset_index().astype({"n_seeds": "int64"})


def _significant(x: float, digits: int = 3) -> str:
    """`digits` significant digits, trailing zeros kept (0.250); no exponent for large values."""
    rounded = float(f"{x:.{digits - 1}e}")
    if abs(rounded) >= 10**digits:
        # Losses like 4523 read "4520", not "4.52e+03".
        return f"{rounded:.0f}"
    if rounded != 0 and abs(rounded) < 1e-3:
        return f"{rounded:.{digits - 1}e}"
    return f"{rounded:#.{digits}g}".rstrip(".")


NOT_APPLICABLE = "n/a"


def needs_heldout(metric: str) -> bool:
    """Whether a score is measured on held-out images ("n/a" for an all-data reference)."""
    return metric.endswith(("_test", "_test_mean")) or metric.startswith(("gap", "excess_delta"))


def _mean_std_cell(mean: float, std: float, applicable: bool = True) -> str:
    if not applicable:
        return NOT_APPLICABLE
    if not np.isfinite(mean):
        return "--"
    # Numbers stay in text mode so that \textbf makes them bold (math mode would not).
    if not np.isfinite(std):
        return _significant(mean)
    return f"{_significant(mean)} $\\pm$ {_significant(std)}"


def _best_mask(means: pd.Series, lower_is_better: bool) -> pd.Series:
    """True where the mean is best within its (dataset, condition); only if two or more compete."""
    best = pd.Series(False, index=means.index)
    for _, group in means.groupby(level=["dataset", "condition"], sort=False):
        finite = group.dropna()
        if len(finite) < 2:
            continue
        target = finite.min() if lower_is_better else finite.max()
        best[finite.index[finite == target]] = True
    return best


def group_table(
    tidy: pd.DataFrame,
    columns: dict[str, str],
    lower_is_better: set[str],
    caption: str,
    label: str,
    paper: dict[str, str] | None = None,
) -> str:
    """LaTeX table (booktabs) of mean ± std over seeds, best per column per condition in bold.

    `columns` maps metric name -> column heading (LaTeX, in display order); rows are
    (dataset, condition, model) in order of first appearance. Row names and the caption are
    escaped, headings are not (so "$R^2$" works).

    A row without a held-out set (an all-data reference) shows "n/a" in the columns of scores
    on held-out images (`*_test`, gaps and excess differences).

    `paper` maps a metric to the heading of a column right after it with the paper's value of
    that score (tidy's `paper` column, compgen.summary.published.attach_paper): "--" where the
    paper has none, marked PAPER_NOTE_MARK where it carries a `paper_note`; never bold.
    """
    paper = paper or {}
    stats = aggregate(tidy[tidy["metric"].isin(list(columns))])
    runs = tidy[GROUP_COLUMNS].drop_duplicates()
    index = pd.MultiIndex.from_frame(runs)
    means = stats.pivot(index=GROUP_COLUMNS, columns="metric", values="mean").reindex(index)
    stds = stats.pivot(index=GROUP_COLUMNS, columns="metric", values="std").reindex(index)
    if paper and "paper" in stats:
        papers = stats.pivot(index=GROUP_COLUMNS, columns="metric", values="paper").reindex(index)
        notes = stats.pivot(index=GROUP_COLUMNS, columns="metric", values="paper_note").reindex(index)
    else:
        papers = notes = pd.DataFrame(index=index)

    if "analysis.heldout" in tidy:
        heldout = tidy.groupby(GROUP_COLUMNS, sort=False)["analysis.heldout"].agg(lambda v: bool(v.any()))
        heldout = heldout.reindex(index).fillna(True).astype(bool)
    else:
        heldout = pd.Series(True, index=index)
    cells = pd.DataFrame(index=index)
    headings = [h for m, h in columns.items() for h in ([h, paper[m]] if m in paper else [h])]
    bold = pd.DataFrame(False, index=index, columns=headings)
    for metric, heading in columns.items():
        mean = means[metric] if metric in means else pd.Series(np.nan, index=index)
        std = stds[metric] if metric in stds else pd.Series(np.nan, index=index)
        applicable = heldout.to_numpy() if needs_heldout(metric) else [True] * len(index)
        cells[heading] = [_mean_std_cell(m, s, a) for m, s, a in zip(mean, std, applicable, strict=True)]
        bold[heading] = _best_mask(mean, metric in lower_is_better).to_numpy()
        if metric in paper:
            value = papers[metric] if metric in papers else pd.Series(np.nan, index=index)
            note = notes[metric] if metric in notes else pd.Series("", index=index)
            cells[paper[metric]] = [_paper_cell(v, n) for v, n in zip(value, note, strict=True)]

    cells.index = pd.MultiIndex.from_tuples(
        [tuple(latex_escape(part) for part in row) for row in index], names=GROUP_COLUMNS
    )
    bold.index = cells.index

    styler = cells.style.apply(lambda column: np.where(bold[column.name], "textbf:--rwrap;", ""), axis=0)
    return styler.to_latex(
        hrules=True,
        caption=latex_escape(caption),
        label=label,
        position_float="centering",
        column_format="lll" + "r" * len(headings),
        multirow_align="naive",
    )


def _paper_cell(value, note) -> str:
    value = pd.to_numeric(value, errors="coerce")
    if value is None or not np.isfinite(value):
        return "--"
    return _significant(float(value)) + (PAPER_NOTE_MARK if isinstance(note, str) and note else "")


def with_paper(tidy: pd.DataFrame, published: pd.DataFrame | None, dci: str) -> pd.DataFrame:
    """The tidy scores, with a paper's published values (compgen.summary.published.read_published)
    in a `paper` column beside `value` and each run's NLL ratio and difference added as metrics;
    unchanged without published values."""
    if published is None:
        return tidy
    return attach_paper(with_nll_measures(tidy), paper_scores(published, dci_key(dci)))


def write_table(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def load_entries(runs: list[dict], score_paths: list[str | os.PathLike]) -> list[dict]:
    """Entries for collect_scores from run specs (run_id, dataset, condition, model_name, seed)
    and their scores.json files, given in the same order (read and checked by read_scores)."""
    if len(runs) != len(score_paths):
        raise ValueError(f"{len(runs)} runs but {len(score_paths)} score files")
    entries = []
    for run, score_path in zip(runs, score_paths, strict=True):
        scores = read_scores(score_path)
        entries.append(
            {
                "run_id": run["run_id"],
                "dataset": run["dataset"],
                "condition": run["condition"],
                "model": run["model_name"],
                "seed": run["seed"],
                "scores": scores,
            }
        )
    return entries


def write_study_csv(
    runs: list[dict],
    score_paths: list[str | os.PathLike],
    csv_path: str | os.PathLike,
    aggregated_path: str | os.PathLike,
    published: pd.DataFrame | None = None,
    dci: str = "neurips",
) -> None:
    """Every score of every run (tidy CSV) and its mean/std over seeds. With a paper's published
    values, the paper's value of each compared score sits beside compgen's (with_paper)."""
    tidy = with_paper(collect_scores(load_entries(runs, score_paths)), published, dci)
    write_csv(tidy, csv_path)
    write_csv(aggregate(tidy), aggregated_path)


def distinct_labels(tidy: pd.DataFrame, labels: dict[str, str]) -> pd.Series:
    """The model column shown by label; where two models of one (dataset, condition) share a
    label, each gets its name in brackets, so their rows never merge."""
    shown = tidy["model"].map(lambda model: labels.get(model, model))
    models = tidy[["dataset", "condition", "model"]].assign(label=shown).drop_duplicates()
    clash = models.duplicated(["dataset", "condition", "label"], keep=False)
    renamed = {
        (r.dataset, r.condition, r.model): f"{r.label} [{r.model}]" for r in models[clash].itertuples()
    }
    keys = zip(tidy["dataset"], tidy["condition"], tidy["model"], strict=True)
    return pd.Series(
        [renamed.get(key, label) for key, label in zip(keys, shown, strict=True)], index=tidy.index
    )


def write_group_table(
    runs: list[dict],
    score_paths: list[str | os.PathLike],
    table_path: str | os.PathLike,
    csv_path: str | os.PathLike,
    title: str,
    labels: dict[str, str],
    label: str,
    columns: dict[str, str] = GROUP_TABLE_COLUMNS,
    lower_is_better: set[str] = GROUP_TABLE_LOWER_IS_BETTER,
    dci: str | None = None,
    published: pd.DataFrame | None = None,
) -> None:
    """A group's LaTeX table (models shown by their labels) and mean/std of all its scores.
    Optional columns (GROUP_TABLE_OPTIONAL) appear only where a run of the group has them.

    `dci` (config `analysis.dci`) picks the D column's DCI variant (None: as `columns` says). With
    a paper's published values (needs `dci`), a group with a published run gets compgen's NLL
    ratio and difference and the paper's columns (PAPER_HEADINGS) beside compgen's."""
    if dci is not None:
        shown = f"Disentanglement ({DCI_LABELS[dci]})"
        columns = {
            (dci_key(dci) if m in DCI_DISENTANGLEMENT else m): (shown if m in DCI_DISENTANGLEMENT else h)
            for m, h in columns.items()
        }
    tidy = collect_scores(load_entries(runs, score_paths))
    paper = {}
    if published is not None:
        tidy = with_paper(tidy, published, dci or "neurips")
        if tidy["paper"].notna().any():
            at = list(columns).index("recon_test") + 1 if "recon_test" in columns else len(columns)
            items = list(columns.items())
            columns = dict(items[:at] + list(NLL_COLUMNS.items()) + items[at:])
            lower_is_better = set(lower_is_better) | set(NLL_COLUMNS)
            paper = {
                m: PAPER_HEADINGS[m] for m in ("recon_train", "recon_test", *NLL_COLUMNS) if m in columns
            }
            d_key = dci_key(dci or "neurips")
            if d_key in columns:
                paper[d_key] = PAPER_HEADINGS["disentanglement"]
            here = published.merge(tidy[GROUP_COLUMNS].drop_duplicates(), on=GROUP_COLUMNS)
            title = (
                f"{title}. Paper columns: the values published with the original code ({paper_sources(here)})"
            )
            if tidy["paper_note"].astype(str).str.len().gt(0).any():
                title += f"; {PAPER_NOTE_MARK} set by hand there, not measured"
    measured = set(tidy["metric"])
    columns = {m: h for m, h in columns.items() if m not in GROUP_TABLE_OPTIONAL or m in measured}
    tidy["model"] = distinct_labels(tidy, labels)
    notes = (
        tidy["data.note"].fillna("").astype(str) if "data.note" in tidy else pd.Series("", index=tidy.index)
    )
    tidy["dataset"] = tidy["dataset"].where(notes == "", tidy["dataset"] + " (" + notes + ")")
    if (notes != "").any():
        title = f"{title}. Datasets marked ({STAND_IN}) were rendered by compgen's generator, not the papers' data"
    write_table(
        group_table(tidy, columns, lower_is_better, caption=title, label=label, paper=paper), table_path
    )
    write_csv(aggregate(tidy), csv_path)
