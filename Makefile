# Two commands do everything on a fresh machine:
#   make bench STRATEGY=ws SPACE=nb201      (main job; PRESET=mini SEED=0 by default)
#   make test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STRATEGY ?= ws
SPACE ?= nb201
PRESET ?= mini
SEED ?= 0
ARGS ?=
# Use the workplace data beside the repository when it exists, unless HARNESS_DATA is already set.
HARNESS_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(CURDIR)/data)
export HARNESS_DATA

.PHONY: setup bench test list clean-runs sweep docs

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

bench: setup
	$(PY) -m harness bench --strategy $(STRATEGY) --space $(SPACE) --preset $(PRESET) --seed $(SEED) $(ARGS)

# A grid of runs on Ray (local unless RAY_ADDRESS is set); rerunning skips complete runs and resumes the rest:
#   make sweep STRATEGIES=ws,params SEEDS=0,1 PRESETS=smoke
STRATEGIES ?= ws,params
SEEDS ?= 0,1
PRESETS ?= $(PRESET)
sweep: setup
	$(PY) -m harness sweep --strategies $(STRATEGIES) --seeds $(SEEDS) --presets $(PRESETS) $(ARGS)

# One line per test as it runs (the suite takes minutes, docs/timings.md), then the ten slowest.
test: setup
	$(PY) -m pytest -o addopts= -v --durations=10

list: setup
	$(PY) -m harness list

# Numbers in README.md and docs/*.md (<!-- generated:NAME --> blocks) from the committed summaries under results/.
docs: setup
	$(PY) -m harness docs

clean-runs:
	rm -rf results/runs

# Tables of every run under results/runs -> results/tables/ (Markdown, CSV, LaTeX, figures).
# Paper tables: make paper TABLE=ranking|nb201_search|disturbance (runs what is missing, resumable);
# make paper TABLE=claims renders the claims table from existing runs (ARGS=--run runs the missing CPU runs).
# CI gate: make regress compares ranking tau with results/baselines/regress.json; make rebaseline rewrites it.
TABLE ?=
.PHONY: tables paper regress rebaseline

tables: setup
	$(PY) -m harness tables $(ARGS)

paper: setup
	$(PY) -m harness paper $(TABLE) $(ARGS)

regress: setup
	$(PY) -m harness regress $(ARGS)

rebaseline: setup
	$(PY) -m harness rebaseline $(ARGS)

# Verdicts with uncertainty: make compare STRATEGIES=ws,dinas SEEDS=0-8 [PRESET=mini] (9 seeds: what the paired sd on mini asks for to detect 0.05 tau, docs/noise.md) [ARGS='--variants ctl=ws:train.lr=0.015'].
# The gate's own test: make regress-selftest plants known regressions and shows the gate catches each.
STRATEGIES ?= ws,dinas
SEEDS ?= 0-8
.PHONY: compare regress-selftest

compare: setup
	$(PY) -m harness compare --strategies $(STRATEGIES) --seeds $(SEEDS) --preset $(PRESET) $(ARGS)

regress-selftest: setup
	$(PY) -m harness regress-selftest $(ARGS)

# The GPU device check (docs/gpu.md) -> results/gpu/<device>.json/.md, in at most GPU_BUDGET seconds (default 450: the
# command fits 8 minutes). It runs on the machine's own python3 and CUDA torch as they are: nothing is installed (the
# GPU machine has no network), the repository is imported from here. ARGS=--quick: the CPU smoke version.
GPU_BUDGET ?= 450
.PHONY: gpu-report
gpu-report:
	PYTHONPATH=$(CURDIR) $(PYTHON) benchmarks/gpu_report.py --budget $(GPU_BUDGET) $(ARGS)
