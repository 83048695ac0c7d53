# Two entry points: `make demo` (install, run the demo study, build the report) and `make test`
# (lint, then every test: what CI runs). `make test-fast` runs the unit tests only, for the edit loop.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2

.PHONY: demo paper-check iclr-check test test-fast lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the dependency pins change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# `compgen run` is snakemake with every config file read strictly first (README, Security notes).
demo: $(STAMP)
	$(BIN)/compgen run --cores $(CORES) --configfile config/demo.yaml
	$(BIN)/compgen run --cores 1 --configfile config/demo.yaml --report results/report.html

# The smallest study that reaches a verdict on the NeurIPS claims C1-C5 (config/paper_check.yaml,
# about 2 hours on 2 CPU cores); its report opens with the claims table (results/summary/claims.md).
paper-check: $(STAMP)
	$(BIN)/compgen run --cores $(CORES) --resources mem_mb=20000 --configfile config/paper_check.yaml
	$(BIN)/compgen run --cores 1 --configfile config/paper_check.yaml --report results/report.html

# The ICLR 2021 claims C8-C10 on 2 CPU cores in under an hour (config/iclr_check.yaml): the VAE and
# the ground-truth decoder on dSprites under recombination to element, to range and extrapolation.
iclr-check: $(STAMP)
	$(BIN)/compgen run --cores $(CORES) --resources mem_mb=20000 --configfile config/iclr_check.yaml
	$(BIN)/compgen run --cores 1 --configfile config/iclr_check.yaml --report results/report.html

# Python by ruff (lint and format), rules by snakefmt, the workflow by snakemake's linter (demo and default study).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/compgen run --lint --configfile config/demo.yaml
	$(BIN)/compgen run --lint

test: lint
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not workflow and not slurm"

clean:
	rm -rf results .snakemake
