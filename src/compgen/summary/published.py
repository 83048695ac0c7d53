"""A paper's own numbers beside compgen's (config `published`: a CSV of the values a paper reports).

One row per (dataset, condition, model) the study runs, with the paper's training and held-out
negative log-likelihood (nats per image) and its disentanglement D:

    dataset,condition,model,train_nll,test_nll,disentanglement,source

plus, optionally, `paper_model` and `paper_condition` (the paper's own names), `disentanglement_note`
(e.g. a D set by hand rather than measured) and `notes`. compgen's side of each pair:

- train / test NLL: the run's `recon_train` / `recon_test`;
- ratio (test / train) and Δ (test − train): the same from those two (compgen.claims.DERIVED),
  the paper's from its two NLLs;
- D: the study's DCI variant (config `analysis.dci`, compgen.analysis.dci_choice).

Light to import (no torch, no matplotlib): the workflow loads the CSV while it plans.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from compgen.claims import DERIVED

KEY_COLUMNS = ("dataset", "condition", "model")
NUMBER_COLUMNS = ("train_nll", "test_nll", "disentanglement")
REQUIRED_COLUMNS = (*KEY_COLUMNS, *NUMBER_COLUMNS, "source")
OPTIONAL_COLUMNS = ("paper_model", "paper_condition", "disentanglement_note", "notes")
# A published table is a few dozen rows; this only stops a wrong file from being read whole.
MAX_ROWS = 100_000

# The measures compared, in display order: the published column (or derived value) and
# compgen's score of the same name (None: the study's DCI disentanglement key).
MEASURES = {
    "train_nll": "recon_train",
    "test_nll": "recon_test",
    "nll_ratio": "nll_ratio",
    "nll_delta": "nll_delta",
    "disentanglement": None,
}
COMPARE_COLUMNS = [
    "dataset",
    "condition",
    "model",
    "paper_model",
    "measure",
    "compgen_metric",
    "compgen",
    "compgen_std",
    "n_seeds",
    "paper",
    "paper_note",
    "source",
]


class PublishedError(ValueError):
    """A published-values file that cannot be read, or that names runs the study does not have."""


def published_path(config: dict, base_dir: str | os.PathLike) -> Path | None:
    """The study's published-values file (config `published`, relative to the workflow's base
    directory unless absolute), or None when the study declares none."""
    name = config.get("published")
    if not name:
        return None
    return Path(base_dir) / name


def _number(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PublishedError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise PublishedError(f"{where}: {column} {text!r} is not a finite number")
    if column == "disentanglement" and not 0.0 <= value <= 1.0:
        raise PublishedError(f"{where}: disentanglement {text!r} is outside [0, 1]")
    return value


def read_published(path: str | os.PathLike) -> pd.DataFrame:
    """The published values, checked: the required columns (no unknown ones), one row per
    (dataset, condition, model), finite numbers, D in [0, 1]. Each row keeps its `line` in the
    file. Errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PublishedError(f"{path}: no such file (config key `published`)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PublishedError(f"{path}: cannot be read as UTF-8 text: {err}") from None
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise PublishedError(f"{path}: empty; expected a header row with {', '.join(REQUIRED_COLUMNS)}")
        header = [cell.strip() for cell in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
        repeated = sorted({c for c in header if header.count(c) > 1})
        if missing or unknown or repeated:
            problems = [f"missing {', '.join(missing)}"] if missing else []
            problems += [f"unknown {', '.join(map(repr, unknown))}"] if unknown else []
            problems += [f"repeated {', '.join(repeated)}"] if repeated else []
            raise PublishedError(
                f"{path} line 1: header has {'; '.join(problems)} (columns: {', '.join(REQUIRED_COLUMNS)}; "
                f"optional: {', '.join(OPTIONAL_COLUMNS)})"
            )
        rows, seen = [], {}
        line = reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # a blank line
            where = f"{path} line {start}"
            if len(cells) != len(header):
                raise PublishedError(f"{where}: {len(cells)} fields, the header has {len(header)}")
            if len(rows) >= MAX_ROWS:
                raise PublishedError(f"{path}: more than {MAX_ROWS} rows; is this the published table?")
            row = dict(zip(header, (cell.strip() for cell in cells), strict=True))
            for column in KEY_COLUMNS:
                if not row[column]:
                    raise PublishedError(f"{where}: {column} is empty")
            for column in NUMBER_COLUMNS:
                row[column] = _number(row[column], column, where)
            key = tuple(row[c] for c in KEY_COLUMNS)
            if key in seen:
                raise PublishedError(f"{where}: {'/'.join(key)} is also on line {seen[key]}")
            seen[key] = start
            rows.append({**row, "line": start})
    except csv.Error as err:
        raise PublishedError(f"{path} line {reader.line_num}: not valid CSV: {err}") from None
    if not rows:
        raise PublishedError(f"{path}: no rows after the header")
    table = pd.DataFrame(rows)
    for column in OPTIONAL_COLUMNS:
        if column not in table:
            table[column] = ""
    return table[[*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "line"]]


def check_published(
    table: pd.DataFrame, runs: Iterable[tuple[str, str, str]], path: str | os.PathLike
) -> None:
    """Every row names a (dataset, condition, model) of the study's runs; else an error naming the
    file, the line and the value (and what the study runs there)."""
    runs = set(runs)
    datasets = {d for d, _, _ in runs}
    conditions = {(d, c) for d, c, _ in runs}
    for row in table.itertuples(index=False):
        where = f"{path} line {row.line}"
        if row.dataset not in datasets:
            raise PublishedError(
                f"{where}: dataset {row.dataset!r} is not run by this study (its datasets: {', '.join(sorted(datasets))})"
            )
        if (row.dataset, row.condition) not in conditions:
            there = sorted(c for d, c in conditions if d == row.dataset)
            raise PublishedError(
                f"{where}: condition {row.condition!r} is not run on {row.dataset} by this study "
                f"(its conditions there: {', '.join(there)})"
            )
        if (row.dataset, row.condition, row.model) not in runs:
            there = sorted(m for d, c, m in runs if (d, c) == (row.dataset, row.condition))
            raise PublishedError(
                f"{where}: model {row.model!r} is not run on {row.dataset}/{row.condition} by this study "
                f"(its models there: {', '.join(there)})"
            )


def rows_run(
    table: pd.DataFrame, runs: Iterable[tuple[str, str, str]], path: str | os.PathLike
) -> pd.DataFrame:
    """The rows that name one of the study's (dataset, condition, model) runs (config
    `published_rows: run`, a study that reruns part of a paper's table); an error when none does."""
    runs = set(runs)
    keep = [tuple(key) in runs for key in table[list(KEY_COLUMNS)].itertuples(index=False)]
    if not any(keep):
        raise PublishedError(
            f"{path}: no row names a run of this study (config key `published_rows: run` keeps only those)"
        )
    return table[keep].reset_index(drop=True)


def load_published(path: str | os.PathLike, study, rows: str = "all") -> pd.DataFrame:
    """read_published, then check_published against a compgen.study.Study's runs; with rows
    `run`, only the rows of the study's runs are kept (and checked)."""
    table = read_published(path)
    if rows == "run":
        table = rows_run(table, ((r.dataset, r.condition, r.model) for r in study.runs), path)
    check_published(table, ((r.dataset, r.condition, r.model) for r in study.runs), path)
    return table


def compgen_metric(measure: str, dci_metric: str) -> str:
    return MEASURES[measure] or dci_metric


def paper_scores(published: pd.DataFrame, dci_metric: str) -> pd.DataFrame:
    """The paper's values as compgen scores: one row per (dataset, condition, model, metric) with
    `paper` (the value) and `paper_note` (the disentanglement note on D, else "")."""
    rows = []
    for row in published.itertuples(index=False):
        values = {
            "train_nll": row.train_nll,
            "test_nll": row.test_nll,
            "nll_ratio": DERIVED["nll_ratio"]({"recon_train": row.train_nll, "recon_test": row.test_nll}),
            "nll_delta": DERIVED["nll_delta"]({"recon_train": row.train_nll, "recon_test": row.test_nll}),
            "disentanglement": row.disentanglement,
        }
        for measure, value in values.items():
            note = row.disentanglement_note if measure == "disentanglement" else ""
            rows.append(
                {
                    "dataset": row.dataset,
                    "condition": row.condition,
                    "model": row.model,
                    "measure": measure,
                    "metric": compgen_metric(measure, dci_metric),
                    "paper": float(value),
                    "paper_note": note,
                }
            )
    return pd.DataFrame(rows)


def with_nll_measures(tidy: pd.DataFrame) -> pd.DataFrame:
    """The tidy scores with each run's NLL ratio and Δ (`nll_ratio`, `nll_delta`) added as metrics,
    computed from its `recon_train` and `recon_test` (a run without both gets none)."""
    recon = tidy[tidy["metric"].isin(["recon_train", "recon_test"])]
    if recon.empty:
        return tidy
    wide = recon.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first", dropna=False)
    if not {"recon_train", "recon_test"} <= set(wide.columns):
        return tidy
    base = tidy[tidy["metric"] == "recon_test"].drop_duplicates("run_id").set_index("run_id")
    have = set(zip(tidy["run_id"], tidy["metric"], strict=True))
    added = []
    for name, measure in (("nll_ratio", DERIVED["nll_ratio"]), ("nll_delta", DERIVED["nll_delta"])):
        for run_id, parts in wide.iterrows():
            if run_id not in base.index or (run_id, name) in have:
                continue
            value = measure({"recon_train": parts["recon_train"], "recon_test": parts["recon_test"]})
            added.append(
                {**base.loc[run_id].to_dict(), "run_id": run_id, "metric": name, "value": float(value)}
            )
    if not added:
        return tidy
    out = pd.concat([tidy, pd.DataFrame(added)[tidy.columns]], ignore_index=True)
    return out.astype({"value": "float64"})


def attach_paper(tidy: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """The tidy scores with the paper's value of the same (dataset, condition, model, metric) in a
    `paper` column right after `value` (and `paper_note` after it); NaN where the paper has none."""
    keys = [*KEY_COLUMNS, "metric"]
    joined = tidy.merge(paper[[*keys, "paper", "paper_note"]], on=keys, how="left", validate="many_to_one")
    joined["paper_note"] = joined["paper_note"].fillna("")
    columns = list(tidy.columns)
    at = columns.index("value") + 1
    return joined[columns[:at] + ["paper", "paper_note"] + columns[at:]]


def paper_sources(published: pd.DataFrame) -> str:
    """The published table's sources, each once, in order."""
    return "; ".join(dict.fromkeys(s for s in published["source"] if s))


def comparison(tidy: pd.DataFrame, published: pd.DataFrame, dci_metric: str) -> pd.DataFrame:
    """One row per published (dataset, condition, model) and measure (MEASURES): compgen's mean
    over seeds (sample std, seeds with a finite value) beside the paper's value. `tidy` is
    collect_scores' frame of the runs (the NLL ratio and Δ are added here)."""
    tidy = with_nll_measures(tidy)
    keys = [*KEY_COLUMNS, "metric"]
    grouped = tidy.groupby(keys, sort=False)["value"]
    stats = grouped.agg(compgen="mean", compgen_std="std", n_seeds="count").reset_index()
    paper = paper_scores(published, dci_metric)
    names = published[[*KEY_COLUMNS, "paper_model", "source"]]
    frame = paper.merge(stats, on=keys, how="left").merge(names, on=list(KEY_COLUMNS), how="left")
    frame["n_seeds"] = frame["n_seeds"].fillna(0).astype("int64")
    return frame.rename(columns={"metric": "compgen_metric"})[COMPARE_COLUMNS]


def finite_pairs(compare: pd.DataFrame, measure: str) -> pd.DataFrame:
    """The rows of one measure with both compgen's and the paper's value: the points drawn."""
    rows = compare[compare["measure"] == measure]
    both = np.isfinite(rows["compgen"].astype(float)) & np.isfinite(rows["paper"].astype(float))
    return rows[both]
