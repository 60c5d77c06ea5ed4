# CINIC-10 study. `make help` lists the targets; each creates .venv first if it is missing or
# older than pyproject.toml.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= quick
DATASET ?= auto
OUT ?= reports/$(PROFILE)
EXTRAS ?= dev,ray,jax,mlflow
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help venv report compare tensorboard test test-fast lint lab data clean-reports

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  make /'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

## venv: create .venv and install the project with its dev, ray, jax and mlflow extras
venv: $(BIN)/.installed

## report: run every notebook (PROFILE=smoke|quick|full, DATASET=auto|cinic10|synthetic|PATH, OUT=dir) and build report.html/pdf
report: venv
	$(BIN)/python -m helpers run --profile $(PROFILE) --dataset $(DATASET) --out $(OUT)

## compare: set runs' findings side by side (RUNS="reports/quick reports/other", the first the baseline) -> reports/compare/compare.html/pdf
compare: venv
	$(BIN)/python -m helpers compare $(RUNS)

## tensorboard: open TensorBoard on a run's training logs (RUN=reports/quick; every fit of 02-05 writes <run>/tensorboard/<notebook>/<arm>_s<seed>/)
tensorboard: venv
	$(BIN)/tensorboard --logdir $(or $(RUN),$(OUT))/tensorboard

## test: lint, then every test (unit, notebooks through the runner, real data where ../shared has it) on TEST_WORKERS=2 pytest workers (0: in one process)
test: venv lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

## test-fast: the unit tests only (no notebook runs, no real-data training)
test-fast: venv
	$(BIN)/python -m pytest -m "not slow and not ray"

## lint: ruff over the package and the tests
lint: venv
	$(BIN)/ruff check helpers tests benchmarks

## data: prepare a dataset (DATASET=...) - download, verify, decode once, summarise
data: venv
	$(BIN)/python -m helpers data --dataset $(DATASET)

## lab: open JupyterLab on notebooks/ with the project installed
lab: venv
	$(BIN)/jupyter lab --notebook-dir=notebooks

## clean-reports: delete every run under reports/ (keeps data/ and its caches)
clean-reports:
	find reports -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
