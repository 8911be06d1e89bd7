# G2I: two commands for a new user.
#   make demo   set up .venv (pinned), install PLINK 2 if missing, generate the synthetic cohort if
#               data/raw is absent, then run the whole DVC pipeline (dvc repro)
#   make test   the same set-up, then the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (auto = one per core; 0 runs the suite in one process)
TEST_WORKERS ?= auto

# Medical data, offline machines: no telemetry from any tool, no downloads from model hubs.
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export HF_HUB_OFFLINE := 1
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help setup plink2 browser test-packages test-setup cohort demo study test preview register serve ui clean-venv

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# Byte-compiled, but not by pip: pip compiles one file at a time (~60 CPU-s of the install); compileall
# uses every core. Not skipped: where PYTHONDONTWRITEBYTECODE is set (as on these machines) nothing is cached
# later, and every stage and test process would recompile torch's imports. As under pip, a file that does not
# compile for this Python is skipped (torch ships a 3.12-only test helper), hence the ignored exit status.
# pip installs torch and uv, then uv the rest of the lock: 14 s against pip's 115 s for the same 216 packages
# (cold caches, 2-core AMD EPYC). torch goes through pip because pip's configuration finds a CPU build on disk
# where a machine carries one; uv does not look there and would fetch a multi-GB CUDA build. Where uv cannot
# install (no route to its index), pip does the whole install as before.
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-compile --constraint requirements.lock torch uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python --constraint requirements.lock --editable '.[dev]' \
	  || $(BIN)/pip install --quiet --no-compile --constraint requirements.lock --editable '.[dev]'
	@$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true
	touch $@

plink2:  ## install PLINK 2 (Debian package) when it is missing
	@if ! command -v plink2 >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing PLINK 2 (Debian package plink2)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq plink2 >/dev/null; \
	  else \
	    echo "PLINK 2 is missing. Install it with 'sudo apt-get install plink2' (Debian/Ubuntu)" >&2; \
	    echo "or 'conda install -c bioconda plink2', then run make again." >&2; exit 1; \
	  fi; \
	fi

browser:  ## install Chromium and ChromeDriver (Debian packages) when missing: the MLflow UI's browser test
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Chromium and ChromeDriver (Debian packages chromium, chromium-driver)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "could not install Chromium: the browser test will be skipped" >&2; \
	  else \
	    echo "no Chromium: the browser test will be skipped ('sudo apt-get install chromium chromium-driver')" >&2; \
	  fi; \
	fi

setup: $(BIN)/.installed plink2  ## create .venv with pinned dependencies and check PLINK 2

cohort: setup  ## generate the synthetic cohort into data/raw when it is absent
	@if [ -d data/raw ]; then echo "data/raw exists: keeping it"; \
	else $(BIN)/g2i synthesize --out data/raw; fi

demo: cohort  ## run the whole pipeline on the synthetic cohort (dvc repro)
	$(BIN)/dvc repro
	@$(BIN)/dvc status data.dvc

STUDY_PROFILE ?= study
study: setup  ## the paper's cohort size on this CPU, against the planted truth (clone in .study/; docs/results/study.*)
	$(BIN)/g2i study --profile $(STUDY_PROFILE) --workdir .$(STUDY_PROFILE)

# `make test`'s set-up: the venv's pip install and the Debian packages it lacks (PLINK 2, Chromium and
# ChromeDriver) at the same time, the packages in one apt-get run: pip waits mostly on the CPU, apt on the
# network and dpkg. A failed combined run is not the end: `plink2` and `browser` then try on their own and
# say what is missing.
test-packages:
	@need=""; command -v plink2 >/dev/null 2>&1 || need="plink2"; \
	{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || need="$$need chromium chromium-driver"; \
	if [ -n "$$need" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian packages:$$need"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null) || true; \
	fi

test-setup:
	@$(MAKE) --no-print-directory -j2 $(BIN)/.installed test-packages
	@$(MAKE) --no-print-directory plink2 browser

test: test-setup  ## run the test suite (in parallel: one pytest-xdist worker per core, a file at a time)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

preview: demo  ## regenerate the README's CN vs AD preview figure (docs/img/cohort_preview.png)
	$(BIN)/g2i cohort-report --out reports/cohort/summary.json --figure docs/img/cohort_preview.png

PORT ?= 5001
register: setup  ## register the trained pipelines in the MLflow registry; 'champion' = best by register.metric
	$(BIN)/g2i register

serve: setup  ## serve the champion over HTTP on 127.0.0.1:$(PORT) (MLflow scoring server)
	UVICORN_LOOP=g2i.serving.event_loop:event_loop $(BIN)/mlflow models serve -m models:/g2i@champion --env-manager local -h 127.0.0.1 -p $(PORT)

UI_PORT ?= 5000
ui: setup  ## the MLflow UI on the project's store; prints the links to the runs, the model comparison, the registry
	$(BIN)/g2i ui --port $(UI_PORT)

clean-venv:  ## remove the virtual environment
	rm -rf $(VENV)
