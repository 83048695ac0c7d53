"""The study: a schema-validated config turned into conditions, runs and groups, checked for meaning.

The JSON schema checks keys and types and fills in defaults (compgen.config); this module checks
what a schema cannot: that datasets, factors, conditions, modifiers and models named in one place
exist in another, that each model suits its task and grid, that every split is non-empty, and that
no run is declared twice.

A study takes models as compgen.config.validate_config leaves them: sweeps and experiments'
model_overrides already replaced by the models they derive (compgen.config.derive_models), each
under its own name, so that a run's model name (and its folder) means one model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from compgen.claims import TRAINING_MEASURES
from compgen.conditions import IID_FAMILY, NONE_FAMILY, Condition, ConditionError, split_masks
from compgen.config import override_name
from compgen.datasets import REGISTRY, dataset_grid
from compgen.datasets.official import resolve_source
from compgen.datasets.store import DatasetError
from compgen.grid import Grid
from compgen.tasks import get_task

# A condition with its modifiers ("cond+mod+...") names a folder; its parts are names of at most 64.
MAX_CONDITION_NAME = 200


class StudyError(ValueError):
    """A configuration that is well-formed but does not make sense."""


class OutputFolderError(OSError):
    """An output folder that cannot take the workflow's outputs."""


def check_output_folder(folder: str | os.PathLike) -> None:
    """Refuse, before any job starts, an output folder that exists but cannot be written to
    (a file in its place, no write permission, a read-only mount)."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise OutputFolderError(
            f"{path.absolute()}: exists but is not a folder; every output goes under {path}/"
        )
    existing = path if path.exists() else path.absolute().parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputFolderError(f"{existing.absolute()}: not writable; every output goes under {path}/")


@dataclass(frozen=True)
class Run:
    dataset: str
    condition: str
    model: str
    seed: int
    experiment: str
    spec: dict  # what training reads: model and training settings, resolved
    resources: dict

    @property
    def run_id(self) -> str:
        return f"{self.dataset}/{self.condition}/{self.model}/seed{self.seed}"


@dataclass(frozen=True)
class Group:
    name: str
    title: str
    runs: tuple[Run, ...]


class Study:
    def __init__(self, config: dict):
        self.config = config
        self.grids: dict[str, Grid] = {}
        self._check_datasets()
        self.conditions: dict[tuple[str, str], Condition] = {}
        self.runs: list[Run] = self._build_runs()
        # Rules look runs up for every job (params, resources): keep that O(1) for large studies.
        self._runs_by_id = {run.run_id: run for run in self.runs}
        self.groups: dict[str, Group] = self._build_groups()
        self._check_claims()

    # -- datasets -------------------------------------------------------------------------
    def _check_datasets(self) -> None:
        for name, ds in self.config["datasets"].items():
            if name not in REGISTRY:
                raise StudyError(
                    f"config key datasets.{name}: unknown dataset; allowed: {', '.join(sorted(REGISTRY))}"
                )
            try:
                self.grids[name] = dataset_grid(name, ds.get("subsample"))
            except KeyError as err:
                raise StudyError(f"config key datasets.{name}.subsample: {err.args[0]}") from None
            try:
                resolve_source(name, ds)  # source: official needs its file now, not when the job runs
            except DatasetError as err:
                raise StudyError(f"config key datasets.{name}.source: {err}") from None

    def grid(self, dataset: str) -> Grid:
        return self.grids[dataset]

    # -- conditions -----------------------------------------------------------------------
    def condition(self, dataset: str, name: str, where: str = "") -> Condition:
        """Condition `name` ("cond" or "cond+modifier+...") of `dataset`, checked on its grid."""
        key = (dataset, name)
        if key in self.conditions:
            return self.conditions[key]
        spec = self.condition_spec(dataset, name, where)
        base, *mods = name.split("+")
        declared = self.config["conditions"].get(dataset, {})
        modifiers = self.config.get("modifiers", {}).get(dataset, {})
        mod_filters = tuple((m, tuple(modifiers[m])) for m in mods)
        like = None
        if spec["family"] == IID_FAMILY and "like" in spec:
            # The like condition takes this one's modifiers: both see the same images.
            like_base = spec["like"]
            if like_base not in declared:
                raise StudyError(
                    f"config key conditions.{dataset}.{base}.like: unknown condition {like_base!r} for "
                    f"dataset {dataset!r}; allowed: {', '.join(sorted(declared))}"
                )
            like_name = "+".join([like_base, *mods])
            like = self._declared(dataset, like_name, like_base, declared[like_base], mod_filters)
        cond = self._declared(dataset, name, base, spec, mod_filters, like)
        grid = self.grid(dataset)
        try:
            split_masks(grid, cond)
        except ConditionError as err:
            raise StudyError(f"config key conditions.{dataset}.{base}: {err}") from None
        self.conditions[key] = cond
        return cond

    def condition_spec(self, dataset: str, name: str, where: str = "") -> dict:
        """The declaration (conditions.<dataset>.<base>) of condition `name` ("cond+modifier+..."),
        its base and modifiers checked to exist; no grid needed."""
        where = where or "conditions"
        if len(name) > MAX_CONDITION_NAME:
            raise StudyError(
                f"config key {where}: condition {name[:60]!r}... has {len(name)} characters; at most "
                f"{MAX_CONDITION_NAME} (it names the run's folder): use fewer or shorter modifiers"
            )
        base, *mods = name.split("+")
        declared = self.config["conditions"].get(dataset, {})
        if base not in declared:
            raise StudyError(
                f"config key {where}: unknown condition {base!r} for dataset {dataset!r}; "
                f"allowed: {', '.join(sorted(declared)) or '(none declared)'}"
            )
        modifiers = self.config.get("modifiers", {}).get(dataset, {})
        for mod in mods:
            if mod not in modifiers:
                raise StudyError(
                    f"config key {where}: unknown modifier {mod!r} for dataset {dataset!r}; "
                    f"allowed: {', '.join(sorted(modifiers)) or '(none declared)'}"
                )
        return declared[base]

    def _declared(
        self, dataset: str, name: str, base: str, spec: dict, mod_filters, like: Condition | None = None
    ) -> Condition:
        """The Condition that `spec` (conditions.<dataset>.<base>) declares, under `name`."""
        grid = self.grid(dataset)
        for factor in spec.get("factors", ()):
            if factor not in grid.names:
                raise StudyError(
                    f"config key conditions.{dataset}.{base}.factors: unknown factor {factor!r}; "
                    f"allowed: {', '.join(grid.names)}"
                )
        return Condition(
            name=name,
            family=spec["family"],
            test=tuple(spec.get("test", ())),
            train=tuple(spec["train"]) if "train" in spec else None,
            modifiers=mod_filters,
            factors=tuple(spec.get("factors", ())),
            description=spec.get("description", ""),
            like=like,
            fraction=spec.get("fraction"),
            seed=spec.get("seed", 0),
        )

    # -- claims ---------------------------------------------------------------------------
    def _check_claims(self) -> None:
        """What a claim names exists (a claim may name a dataset or condition the study does not
        run: its rows read `not run`), and a held-out measure is not asked of a condition that
        holds nothing out."""
        for cid, claim in (self.config.get("claims") or {}).items():
            where = f"claims.{cid}"
            models = self.config["models"]
            for j, name in enumerate(claim.get("models", ())):
                if name not in models:
                    raise StudyError(
                        f"config key {where}.models[{j}]: unknown model {name!r}; allowed: {', '.join(models)}"
                    )
            for i, check in enumerate(claim["checks"]):
                measure = check.get("measure", claim["measure"])
                for j, target in enumerate(check["runs"]):
                    at, dataset = f"{where}.checks[{i}].runs[{j}]", target["dataset"]
                    if dataset not in REGISTRY:
                        raise StudyError(
                            f"config key {at}.dataset: unknown dataset {dataset!r}; "
                            f"allowed: {', '.join(sorted(REGISTRY))}"
                        )
                    for field in ("condition", "versus", "control"):
                        if field not in target:
                            continue
                        spec = self.condition_spec(dataset, target[field], f"{at}.{field}")
                        if spec["family"] == NONE_FAMILY and measure not in TRAINING_MEASURES:
                            raise StudyError(
                                f"config key {at}.{field}: {target[field]!r} holds nothing out (family "
                                f"none), so measure {measure!r} (of held-out images) has no value there; "
                                "name a condition with a held-out set, or measure training images "
                                f"({', '.join(TRAINING_MEASURES)})"
                            )

    # -- runs -----------------------------------------------------------------------------
    def _build_runs(self) -> list[Run]:
        runs: dict[str, Run] = {}
        models = self.config["models"]
        for name, model in models.items():
            if "sweep" in model:
                raise StudyError(
                    f"config key models.{name}.sweep: not expanded; a study takes a config "
                    "checked by compgen.config.validate_config, which derives the swept models"
                )
        named: dict[str, int] = {}  # name -> index; the name keys its default group and figure
        for i, exp in enumerate(self.config["experiments"]):
            first = named.setdefault(exp["name"], i)
            if first != i:
                raise StudyError(
                    f"config key experiments[{i}].name: {exp['name']!r} is already the name of "
                    f"experiments[{first}]; each experiment needs its own name"
                )
            where = f"experiments[{i}] ({exp['name']})"
            dataset = exp["dataset"]
            if dataset not in self.grids:
                raise StudyError(
                    f"config key {where}.dataset: dataset {dataset!r} is not under datasets; "
                    f"allowed: {', '.join(sorted(self.grids))}"
                )
            grid = self.grid(dataset)
            for j, cond_name in enumerate(exp["conditions"]):
                self.condition(dataset, cond_name, f"{where}.conditions[{j}]")
            for j, model_name in enumerate(exp["models"]):
                if model_name not in models:
                    raise StudyError(
                        f"config key {where}.models[{j}]: unknown model {model_name!r}; "
                        f"allowed: {', '.join(sorted(models))}"
                    )
                self._check_model(model_name, grid, f"{where}.models[{j}]")
                overrides = exp.get("model_overrides", {})
                if any(
                    key not in models[model_name] or models[model_name][key] != value
                    for key, value in overrides.items()
                ):
                    raise StudyError(
                        f"config key {where}.model_overrides: not applied to model {model_name!r}; a study "
                        "takes a config checked by compgen.config.validate_config, which derives the models"
                    )
            for cond_name in exp["conditions"]:
                for model_name in exp["models"]:
                    for seed in exp["seeds"]:
                        run = self._make_run(exp, dataset, cond_name, model_name, seed)
                        if run.run_id in runs:
                            raise StudyError(
                                f"config key {where}: run {run.run_id} is already declared by experiment "
                                f"{runs[run.run_id].experiment!r}; each run may appear once"
                            )
                        runs[run.run_id] = run
        return [self._with_base(run, runs) for run in runs.values()]

    def _with_base(self, run: Run, runs: dict[str, Run]) -> Run:
        """A retrain run with its base run's architecture and settings in its spec (so changing the
        base re-runs it); other runs as they are."""
        model = run.spec["model"]
        if model["task"] != "retrain":
            return run
        models, name = self.config["models"], model["base"]
        declared, suffix = run.model, f"_{run.experiment}"
        if declared.endswith(suffix) and declared.removesuffix(suffix) in models:
            declared = declared.removesuffix(suffix)  # the retrain as the config declares it
        key = f"config key models.{declared}.base"
        if name not in models:
            backbones = [n for n, m in models.items() if m["task"] in ("composition", "unsupervised")]
            raise StudyError(
                f"{key}: {name!r} is not a model of this study; a retrain names the model whose run it "
                f"takes over, one of: {', '.join(backbones) or '(none: declare a composition or unsupervised model)'}"
            )
        base_id = f"{run.dataset}/{run.condition}/{name}/seed{run.seed}"
        base = runs.get(base_id)
        renamed = override_name(name, run.experiment)
        if base is None and f"{run.dataset}/{run.condition}/{renamed}/seed{run.seed}" in runs:
            raise StudyError(
                f"{key}: no run {base_id} to retrain: experiment {run.experiment!r} runs {name!r} as "
                f"{renamed!r}, because its model_overrides change it; a retrain takes over its base as "
                f"named, so run {name!r} unchanged on {run.dataset}/{run.condition} with seed {run.seed} "
                "too, or move the retrain to an experiment without model_overrides"
            )
        if base is None:
            raise StudyError(
                f"{key}: no run {base_id} to retrain in this study; "
                f"train {name!r} on {run.dataset}/{run.condition} with seed {run.seed} too"
            )
        if base.spec["model"]["task"] not in ("composition", "unsupervised"):
            raise StudyError(
                f"config key models.{run.model}.base: {model['base']!r} is a {base.spec['model']['task']} "
                "model; a retrain takes over the backbone VAE of a composition or unsupervised model"
            )
        architecture = {key: base.spec["model"][key] for key in ("encoder", "decoder", "latent_size")}
        spec = {
            **run.spec,
            "model": {**model, **architecture},
            "base": {"run_id": base.run_id, "model": base.spec["model"], "training": base.spec["training"]},
        }
        return replace(run, spec=spec)

    def _check_model(self, name: str, grid: Grid, where: str) -> None:
        model = self.config["models"][name]
        task = get_task(model["task"])
        if not task.uses_objective and model["loss"] != "vae":
            raise StudyError(
                f"config key models.{name}.loss: task {model['task']!r} has no VAE objective, "
                f"so loss {model['loss']!r} does not apply; remove the key"
            )
        problem = task.check_model(model, grid)
        if problem:
            key, what = problem
            raise StudyError(f"config key models.{name}.{key}: {what} (used at {where})")

    def _make_run(self, exp: dict, dataset: str, condition: str, model_name: str, seed: int) -> Run:
        model = dict(self.config["models"][model_name])
        # The schema has filled in every default key, so the top level is already complete.
        training = dict(self.config["training"])
        training.update(exp.get("training", {}))
        training.update(model.pop("training", {}))
        model.pop("label", None)
        self._check_rebalance(training["rebalance"], exp, dataset, model_name)
        resources = dict(self.config["resources"]["train"])
        resources.update(exp.get("resources", {}))
        run_id = f"{dataset}/{condition}/{model_name}/seed{seed}"
        spec = {
            "run_id": run_id,
            "dataset": dataset,
            "condition": condition,
            "model_name": model_name,
            "seed": seed,
            "model": model,
            # Its intra-op threads are training.threads: part of what it trains. The resources are
            # only what the job asks the scheduler for, and no part of the spec.
            "training": training,
        }
        return Run(dataset, condition, model_name, seed, exp["name"], spec, resources)

    def _check_rebalance(self, factor: str | None, exp: dict, dataset: str, model_name: str) -> None:
        """`training.rebalance` names a factor of the run's dataset; the error names where it was set."""
        grid = self.grid(dataset)
        if factor is None or factor in grid.names:
            return
        if "rebalance" in self.config["models"][model_name].get("training", {}):
            key = f"models.{model_name}.training.rebalance"
        elif "rebalance" in exp.get("training", {}):
            i = next(k for k, e in enumerate(self.config["experiments"]) if e is exp)
            key = f"experiments[{i}] ({exp['name']}).training.rebalance"
        else:
            key = "training.rebalance"
        raise StudyError(
            f"config key {key}: unknown factor {factor!r} for dataset {dataset!r}; "
            f"allowed: {', '.join(grid.names)}"
        )

    def run(self, dataset: str, condition: str, model: str, seed: int | str) -> Run:
        run_id = f"{dataset}/{condition}/{model}/seed{seed}"
        try:
            return self._runs_by_id[run_id]
        except KeyError:
            raise KeyError(f"no run {run_id} in this study") from None

    # -- groups ---------------------------------------------------------------------------
    def _build_groups(self) -> dict[str, Group]:
        declared = self.config.get("groups") or {
            exp["name"]: {
                "title": exp["name"].replace("_", " "),
                "members": [{"dataset": exp["dataset"], "condition": c} for c in exp["conditions"]],
                "models": exp["models"],
            }
            for exp in self.config["experiments"]
        }
        groups = {}
        for name, spec in declared.items():
            members = tuple((m["dataset"], m["condition"]) for m in spec["members"])
            for k, member in enumerate(members):
                if member in members[:k]:
                    raise StudyError(
                        f"config key groups.{name}.members[{k}]: {member[0]}/{member[1]} is already "
                        f"members[{members.index(member)}]; each member may appear once"
                    )
            wanted_models = spec.get("models")
            for model in wanted_models or []:
                if model not in self.config["models"]:
                    raise StudyError(
                        f"config key groups.{name}.models: unknown model {model!r}; "
                        f"allowed: {', '.join(sorted(self.config['models']))}"
                    )
            runs = []
            for k, member in enumerate(members):
                matched = [
                    r
                    for r in self.runs
                    if (r.dataset, r.condition) == member and (not wanted_models or r.model in wanted_models)
                ]
                if not matched:
                    trained = sorted(
                        {
                            f"{r.dataset}/{r.condition}"
                            for r in self.runs
                            if not wanted_models or r.model in wanted_models
                        }
                    )
                    raise StudyError(
                        f"config key groups.{name}.members[{k}]: no run trains on {member[0]}/{member[1]}"
                        + (f" with models {wanted_models}" if wanted_models else "")
                        + f"; allowed: {', '.join(trained) or '(none)'}"
                    )
                runs.extend(matched)
            if spec.get("references", True):
                runs = self._with_references(runs, members, wanted_models)
            groups[name] = Group(name, spec.get("title", name), tuple(runs))
        return groups

    def _with_references(self, runs: list[Run], members, wanted_models) -> list[Run]:
        """The group's runs with, after the last member of each dataset, the all-data reference
        runs (family none) of that dataset with a member's modifiers and one of the group's models
        (all models of its members when the group names none)."""
        models = set(wanted_models or {r.model for r in runs})
        out = list(runs)
        for dataset in dict.fromkeys(d for d, _ in members):
            wanted = {self._modifiers(dataset, c) for d, c in members if d == dataset}
            references = [
                r
                for r in self.runs
                if r.dataset == dataset
                and r.model in models
                and self.condition(dataset, r.condition).family == "none"
                and self._modifiers(dataset, r.condition) in wanted
                and r not in out
            ]
            if references:
                last = max(i for i, r in enumerate(out) if r.dataset == dataset)
                out[last + 1 : last + 1] = references
        return out

    def _modifiers(self, dataset: str, condition: str) -> frozenset[str]:
        return frozenset(name for name, _ in self.condition(dataset, condition).modifiers)

    # -- what the workflow needs ----------------------------------------------------------
    def datasets_used(self) -> list[str]:
        return sorted({r.dataset for r in self.runs})

    def splits_used(self) -> list[tuple[str, str]]:
        return sorted({(r.dataset, r.condition) for r in self.runs})
