"""Reading a run's scores.json (compgen.analysis.evaluate writes it) for the summary and the claims.

Every score must be a number. The analysis writes NaN (JSON `NaN`) where a score does not apply
or is undefined, e.g. the `*_test` scores of an all-data reference run; a string, `null`, a boolean
or a list where a score belongs is a hand edit, refused with the file and key named, since the
tables would otherwise drop it without a word. Only the keys in DESCRIPTIVE describe the analysis
rather than score it. Light to import (json only): the claims module is loaded for every plan.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Mapping

RECOMPUTE = "delete the file and rerun snakemake, which recomputes it (rule analyse)"


class ScoresError(ValueError):
    """A scores.json that cannot be read, or holds something other than a number where a score belongs."""


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _numbers(value) -> bool:
    return isinstance(value, list) and all(_number(v) for v in value)


# Non-score keys ("a/b": key b inside a), with what each must be; `provenance` is any settings.
DESCRIPTIVE = {
    "run_id": (lambda v: isinstance(v, str), "a string"),
    "preset": (lambda v: isinstance(v, str), "a string"),
    "heldout": (lambda v: isinstance(v, bool), "true or false"),
    "factors_scored": (_strings, "a list of factor names"),
    "main_factors": (_strings, "a list of factor names"),
    "fit_kinds/*": (lambda v: isinstance(v, str), "a string"),
    "training/stopped": (lambda v: isinstance(v, str), "a string"),
    "training/probe_gap_tail": (_numbers, "a list of numbers"),
}
ANY = ("provenance",)


def _problems(scores: Mapping, prefix: str = "") -> list[str]:
    """What is wrong with each key, as "'key' is <value>, not <what it must be>"."""
    found = []
    for key, value in scores.items():
        name = f"{prefix}{key}"
        if name in ANY:
            continue
        rule = next((r for pattern, r in DESCRIPTIVE.items() if fnmatch.fnmatchcase(name, pattern)), None)
        if rule is None and isinstance(value, Mapping):
            found += _problems(value, f"{name}/")
            continue
        check, what = rule or (_number, "a number (NaN where the score does not apply)")
        if not check(value):
            found.append(f"{name!r} is {json.dumps(value)}, not {what}")
    return found


def check_scores(scores, path: str | os.PathLike) -> dict:
    """`scores` as read from `path`, if every key holds what it should; else a ScoresError naming
    the file and each key that does not."""
    if not isinstance(scores, dict):
        raise ScoresError(f"{path} is not a JSON object of scores; {RECOMPUTE}")
    problems = _problems(scores)
    if problems:
        raise ScoresError(f"{path}: key {'; key '.join(problems)}; {RECOMPUTE}, or correct the value by hand")
    return scores


def read_scores(path: str | os.PathLike) -> dict:
    """A run's scores.json, checked (check_scores); a file that is not JSON is named as such."""
    try:
        with open(path, encoding="utf-8") as fh:
            scores = json.load(fh)
    except json.JSONDecodeError as err:
        raise ScoresError(
            f"{path} is not valid JSON ({err.msg}: line {err.lineno} column {err.colno}); {RECOMPUTE}"
        ) from None
    except UnicodeDecodeError:
        raise ScoresError(f"{path} is not UTF-8 text; {RECOMPUTE}") from None
    return check_scores(scores, path)
