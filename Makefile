# Makefile of the barometre pipeline (GNU make >= 4).
#
#   make            list the targets (same as `make help`)
#   make report     build the report: venv + pinned deps + system tools + snakemake
#   make test       same set-up, then pytest
#
# Variables (override on the command line, e.g. `make report CORES=4`):
#   PYTHON          interpreter used to create .venv (3.11, 3.12 or 3.13)
#                   [the first of python3, python3.13, python3.12, python3.11 in that range]
#   VENV            virtual environment directory                      [.venv]
#   CORES           snakemake --cores                                  [2]
#   SNAKEMAKE_ARGS  extra snakemake arguments                          []
#   PYTEST_ARGS     extra pytest arguments, e.g. "-m 'not slow' -x"    []
#   BENCH_ARGS      extra arguments of bench/run.py                    []
#   SYSDEPS         install | check | skip — what to do about missing
#                   system packages (install needs root + apt-get)    [install]

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

# Reproducibility: every timestamp written into outputs (PDF metadata, build
# date in the report and provenance.json) comes from SOURCE_DATE_EPOCH: unless it
# is already set, the date of the last commit (the reproducible-builds convention:
# same commit, same bytes), or 2017-10-06 (end of the 2017 fieldwork) outside git or in a
# copy of the project inside another repository (as the Snakefile decides it).
export SOURCE_DATE_EPOCH ?= $(shell [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$(realpath $(CURDIR))" ] && git log -1 --format=%ct 2>/dev/null || echo 1507248000)
export PYTHONHASHSEED ?= 0
export MPLBACKEND ?= Agg

# Supported interpreters: CPython 3.11, 3.12 and 3.13 (requirements.lock is one universal
# resolution for the three; tests/test_environment.py checks it for each).
SUPPORTED_PYTHONS := 3.11 3.12 3.13
PY_IN_RANGE := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))
ifeq ($(origin PYTHON),undefined)
PYTHON := $(or $(shell for p in python3 python3.13 python3.12 python3.11; do \
  command -v $$p >/dev/null 2>&1 && $$p -c '$(PY_IN_RANGE)' 2>/dev/null && { echo $$p; break; }; done),python3)
endif
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=
SYSDEPS ?= install

# libharfbuzz-subset0: WeasyPrint subsets the fonts it embeds (without it, whole fonts and a warning).
APT_PACKAGES := poppler-utils libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-liberation

.PHONY: help install sysdeps report test test-cluster lint dag screenshot a11y a11y-tools clean distclean bench lock

help: ## List the targets (default)
	@echo "barometre — reproducible pipeline of the Baromètre de la démocratie locale numérique"
	@echo
	@echo "Targets:"
	@grep -E '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([^:]+):.*## (.*)$$/\1\t\2/' \
	  | awk -F'\t' '{ printf "  make %-10s %s\n", $$1, $$2 }'
	@echo
	@echo "Variables: CORES=$(CORES) PYTEST_ARGS='$(PYTEST_ARGS)' SNAKEMAKE_ARGS='$(SNAKEMAKE_ARGS)'"
	@echo "           SYSDEPS=$(SYSDEPS) (install|check|skip) PYTHON=$(PYTHON) VENV=$(VENV)"
	@echo "           SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH)"

# --------------------------------------------------------------------------
# Python environment
# --------------------------------------------------------------------------
$(BIN)/python:
	@echo "==> creating the virtual environment $(VENV) with $(PYTHON)"
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11, 3.12 or 3.13 or run make PYTHON=/path/to/python3" >&2; exit 1; }
	@$(PYTHON) -c '$(PY_IN_RANGE)' || { echo "error: Python 3.11, 3.12 or 3.13 is required (requirements.lock is resolved for them), $(PYTHON) is $$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); run make PYTHON=python3.12 ..." >&2; exit 1; }
	@if [ -e "$(VENV)" ]; then echo "error: $(VENV) exists but has no bin/python; remove it (make distclean) and retry" >&2; exit 1; fi
	$(PYTHON) -m venv $(VENV) || { rm -rf -- "$(VENV)"; echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu install the venv module: apt-get install python3-venv" >&2; exit 1; }

# Reinstalled only when requirements.lock or pyproject.toml change.
$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	@echo "==> installing the pinned dependencies (requirements.lock) into $(VENV)"
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --disable-pip-version-check -e . --no-deps
	$(BIN)/python -m pip check
	@touch $@

install: $(STAMP) ## Create .venv if missing and install the pinned dependencies

# --------------------------------------------------------------------------
# System tools. Shell script run with: bash -c "$$SYSDEPS_SH" sysdeps <what>
#   <what> = core      poppler-utils (pdftotext, pdftoppm), Pango, fonts
#            graphviz  dot
#            chromium  headless Chromium (screenshots of the HTML report)
# --------------------------------------------------------------------------
define SYSDEPS_SH
set -euo pipefail
what="$$1"
has_lib() { $(PYTHON) -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1])' "$$1" 2>/dev/null; }
has_font() { { command -v fc-list >/dev/null && fc-list | grep -qi "$$1"; } || [ -d "$$2" ]; }
missing() {
  local need=()
  if [ "$$what" = core ]; then
    { command -v pdftotext && command -v pdftoppm; } >/dev/null || need+=(poppler-utils)
    has_lib libpango-1.0.so.0 || need+=(libpango-1.0-0)
    has_lib libpangoft2-1.0.so.0 || need+=(libpangoft2-1.0-0)
    has_lib libharfbuzz-subset.so.0 || need+=(libharfbuzz-subset0)
    has_font "DejaVu Sans" /usr/share/fonts/truetype/dejavu || need+=(fonts-dejavu-core)
    has_font "Liberation" /usr/share/fonts/truetype/liberation || need+=(fonts-liberation)
  elif [ "$$what" = chromium ]; then
    command -v chromium >/dev/null || need+=(chromium)
  else
    command -v dot >/dev/null || need+=(graphviz)
  fi
  echo "$${need[*]:-}"
}
if [ "$(SYSDEPS)" = skip ]; then echo "==> SYSDEPS=skip: not checking system packages ($$what)"; exit 0; fi
need="$$(missing)"
if [ -z "$$need" ]; then echo "==> system packages OK ($$what)"; exit 0; fi
if [ "$$what" = core ]; then packages="$(APT_PACKAGES)"; elif [ "$$what" = chromium ]; then packages="chromium"; else packages="graphviz"; fi
echo "==> missing system packages: $$need"
if [ "$(SYSDEPS)" = install ] && [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "+ apt-get update && apt-get install -y $$packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update && apt-get install -y $$packages
  need="$$(missing)"
  if [ -z "$$need" ]; then echo "==> system packages OK ($$what)"; exit 0; fi
  echo "error: still missing after apt-get install: $$need" >&2; exit 1
fi
echo "error: missing system packages: $$need" >&2
echo "       install them as root:  apt-get update && apt-get install -y $$packages" >&2
echo "       (or run: make ... SYSDEPS=skip to go on without them)" >&2
exit 1
endef
export SYSDEPS_SH

sysdeps: ## Check poppler-utils, Pango, HarfBuzz subset and fonts; apt-get install them if root
	@bash -c "$$SYSDEPS_SH" sysdeps core

# --------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------
report: $(STAMP) sysdeps ## Build the report: snakemake --cores CORES SNAKEMAKE_ARGS
	$(BIN)/snakemake --cores $(CORES) $(SNAKEMAKE_ARGS)

# pytest exit codes pass through unchanged: 1 (failures) and 5 (no test
# collected: a broken testpaths or selection must never look green) fail the build.
test: $(STAMP) sysdeps ## Run the test suite: pytest PYTEST_ARGS (exit code unchanged)
	@echo "+ $(BIN)/python -m pytest $(PYTEST_ARGS)"
	@rc=0; $(BIN)/python -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests (exit 5); check testpaths in pyproject.toml and PYTEST_ARGS" >&2; fi; \
	exit $$rc

# A real SLURM cluster (the one present, else a private one on loopback, slurm-wlm and munge
# installed if root): the pipeline through profiles/slurm on a fresh clone, compared byte for
# byte with make report. Details and variables: tests/cluster/run.sh.
test-cluster: $(STAMP) sysdeps ## Run the pipeline on a real SLURM cluster, compare with make report
	VENV="$(abspath $(VENV))" bash tests/cluster/run.sh

# snakemake --lint, then ruff and mypy as configured in pyproject.toml (every step runs; the
# exit code is that of the first failing one). LINT_STRICT=0 reports without failing.
LINT_STRICT ?= 1
lint: $(STAMP) ## Lint: snakemake --lint, ruff check, mypy (LINT_STRICT=0: report only)
	@rc=0; \
	echo "+ $(BIN)/snakemake --lint"; $(BIN)/snakemake --lint || rc=$$((rc ? rc : $$?)); \
	echo "+ $(BIN)/ruff check"; $(BIN)/ruff check || rc=$$((rc ? rc : $$?)); \
	echo "+ $(BIN)/mypy"; $(BIN)/mypy || rc=$$((rc ? rc : $$?)); \
	if [ $$rc -ne 0 ] && [ "$(LINT_STRICT)" = 0 ]; then echo "==> lint found problems (exit $$rc); LINT_STRICT=0: not failing"; rc=0; fi; \
	exit $$rc

dag: $(STAMP) ## Draw the rule graph to docs/rulegraph.svg (needs graphviz)
	@bash -c "$$SYSDEPS_SH" sysdeps graphviz
	@mkdir -p docs
	$(BIN)/snakemake --rulegraph | dot -Tsvg -o docs/rulegraph.svg.tmp
	@mv docs/rulegraph.svg.tmp docs/rulegraph.svg
	@echo "==> wrote docs/rulegraph.svg"

# The first screen of each built HTML report, as a reader's browser shows it (headless Chromium,
# no network: the report is self-contained), into results/<edition>/rapport_<edition>.png.
SCREENSHOT_SIZE ?= 1200,2400
screenshot: ## Screenshot each built HTML report in headless Chromium (results/<e>/rapport_<e>.png)
	@bash -c "$$SYSDEPS_SH" sysdeps chromium
	@shopt -s nullglob; reports=(results/*/rapport_*.html); \
	if [ $${#reports[@]} -eq 0 ]; then echo "error: no results/*/rapport_*.html: run make report first" >&2; exit 1; fi; \
	for html in "$${reports[@]}"; do \
	  png="$${html%.html}.png"; \
	  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --mute-audio --no-first-run \
	    --window-size=$(SCREENSHOT_SIZE) --screenshot="$$png" "file://$$(pwd)/$$html" >/dev/null 2>&1 \
	    || { echo "error: chromium could not render $$html" >&2; exit 1; }; \
	  echo "==> wrote $$png"; \
	done

# Accessibility: axe-core (npm, pinned) in headless Chromium at 1280 px and 400 px on every built HTML
# document; fails on a serious or critical violation. Chromium comes from apt-get (when root), axe-core
# from the npm registry into .cache/a11y (git-ignored). The tests run the same check when both are there.
AXE_VERSION ?= 4.10.2
a11y-tools: ## Install what the accessibility check needs: Chromium (apt-get, if root) and axe-core (npm)
	@bash -c "$$SYSDEPS_SH" sysdeps chromium
	@test -f .cache/a11y/node_modules/axe-core/axe.min.js || { command -v npm >/dev/null || { echo "error: npm missing (apt-get install npm)" >&2; exit 1; }; \
	  mkdir -p .cache/a11y && npm install --no-audit --no-fund --prefix .cache/a11y axe-core@$(AXE_VERSION); }

a11y: $(STAMP) a11y-tools ## Accessibility check of the built HTML (axe-core in headless Chromium, 1280 and 400 px)
	@shopt -s nullglob; docs=(results/*/rapport_*.html results/*/note_technique_*.html); \
	if [ $${#docs[@]} -eq 0 ]; then echo "error: no built HTML document: run make report first" >&2; exit 1; fi; \
	$(BIN)/python -m barometre.accessibility "$${docs[@]}"

# The peers of the tabulation (polars, DuckDB: bench/requirements.txt, pinned and hashed) go into
# $(VENV)/bench-peers, which only bench/run.py puts on its path: they are not project dependencies,
# and provenance.json, which lists the environment's packages, does not see them. Without them
# (no registry), the bench runs and says which peers are missing.
BENCH_PEERS := $(VENV)/bench-peers
bench: $(STAMP) sysdeps ## Run the benchmarks: bench/run.py BENCH_ARGS
	@test -f bench/run.py || { echo "error: bench/run.py does not exist yet" >&2; exit 1; }
	@cmp -s bench/requirements.txt $(BENCH_PEERS)/.requirements.txt || { \
	  rm -rf -- $(BENCH_PEERS); \
	  $(BIN)/python -m pip install --disable-pip-version-check -q --require-hashes --no-deps \
	    --target $(BENCH_PEERS) -r bench/requirements.txt \
	  && cp bench/requirements.txt $(BENCH_PEERS)/.requirements.txt \
	  || echo "warning: the bench peers (bench/requirements.txt) could not be installed; bench/run.py will name them missing" >&2; }
	BENCH_PEERS=$(BENCH_PEERS) $(BIN)/python bench/run.py $(BENCH_ARGS)

# --------------------------------------------------------------------------
# Housekeeping
# --------------------------------------------------------------------------
# Outputs only: results/ and data/processed/ are emptied (their .gitkeep kept).
# data/raw/ is never touched.
clean: ## Remove pipeline outputs (results/, data/processed/); never data/raw/
	@for dir in results data/processed; do \
	  if [ -d "$$dir" ]; then \
	    echo "==> removing the contents of $$dir/ (keeping .gitkeep)"; \
	    find "$$dir" -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf -- {} +; \
	  fi; \
	done

distclean: clean ## clean + remove .venv, .snakemake and caches
	rm -rf -- "$(VENV)" .snakemake .pytest_cache .hypothesis src/*.egg-info
	find . -path ./data/raw -prune -o -type d -name __pycache__ -prune -exec rm -rf -- {} +

# Re-resolves requirements.txt into requirements.lock: one universal resolution with hashes for
# every supported Python (uv, installed in a throw-away venv; needs network or a PyPI mirror).
# The current lock is passed as the output file, so uv keeps its pins unless requirements.txt
# asks for another version.
UV_VERSION ?= 0.13.9
lock: ## Re-resolve requirements.txt into requirements.lock (uv, universal, with hashes)
	@tmp="$$(mktemp -d)"; trap 'rm -rf -- "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --disable-pip-version-check -q uv==$(UV_VERSION); \
	cp requirements.lock "$$tmp/requirements.lock" 2>/dev/null || true; \
	echo "+ uv pip compile requirements.txt --universal --python-version $(firstword $(SUPPORTED_PYTHONS)) --generate-hashes"; \
	"$$tmp/venv/bin/uv" pip compile requirements.txt --universal --python-version $(firstword $(SUPPORTED_PYTHONS)) \
	  --generate-hashes --no-header --no-annotate --quiet -o "$$tmp/requirements.lock"; \
	{ \
	  echo "# Full pin of the barometre environment, with hashes: the direct dependencies of"; \
	  echo "# requirements.txt and every transitive dependency, one universal resolution for"; \
	  echo "# CPython 3.11, 3.12 and 3.13 (environment markers select what a platform needs)."; \
	  echo "# Install with:"; \
	  echo "#     python -m pip install -r requirements.lock"; \
	  echo "# Generated by \`make lock\` (uv pip compile --universal --generate-hashes, the"; \
	  echo "# previous lock as preferences: pins move only when requirements.txt asks)."; \
	  echo "# Do not edit by hand; change requirements.txt and run \`make lock\`."; \
	  cat "$$tmp/requirements.lock"; \
	} > requirements.lock.tmp; \
	mv requirements.lock.tmp requirements.lock; \
	echo "==> wrote requirements.lock ($$(grep -c '^[A-Za-z0-9]' requirements.lock) packages)"
