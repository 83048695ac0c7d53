# compgen: datasets -> splits -> training -> analysis -> figures, tables and report.
import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# The package lives in src/; jobs (local, conda or SLURM) find it even when it is not installed.
SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))

# Importable once SRC is on the path.
from compgen.config import ConfigError, check_config_files, validate_config  # noqa: E402


# The library of held-out conditions (docs/study.md) is always the base; a study config is merged on top of it.
configfile: os.path.join(workflow.basedir, "config/conditions.yaml")
# The papers' claims (C1-C11), loaded the same way: a study config may add claims, not change these.
configfile: os.path.join(workflow.basedir, "config/claims.yaml")


# config/config.yaml is the default study; one given with --configfile replaces it, not merges into it.
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config/config.yaml")


try:
    # Every config file read again, strictly (Snakemake keeps the last of a key given twice and
    # would hang on an alias bomb); then Snakemake's validate, filling in the schema's defaults.
    # A failure is one line naming the file or the key.
    check_config_files(workflow.configfiles)
    validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/paper.smk"
include: "rules/data.smk"
include: "rules/splits.smk"
include: "rules/train.smk"
include: "rules/analyse.smk"
include: "rules/summarise.smk"
include: "rules/iclr_figures.smk"
include: "rules/claims.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
        rules.claims.output,
