# Everything sets itself up on first use: a fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test lint bench chaos clean

$(PY):
	@echo "polyfeed: creating $(VENV) (first run only)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# What polyfeed needs to run (the demo): seven packages, no development tools.
$(RUN_STAMP): pyproject.toml | $(PY)
	@echo "polyfeed: installing what polyfeed needs to run (first run only)"
	$(PIP) install --progress-bar on -e .
	touch $(RUN_STAMP)

# Everything, with the test and lint tools: what make test and make bench need.
$(STAMP): pyproject.toml | $(PY)
	@echo "polyfeed: installing polyfeed with its development tools (first run only)"
	$(PIP) install --progress-bar on -e '.[dev]'
	touch $(STAMP) $(RUN_STAMP)

## demo: polyfeed's main job on the embedded default (no network needed)
demo: $(RUN_STAMP)
	$(PY) -m polyfeed demo

## test: lint, type-check and run the test suite
test: lint $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-cache

## chaos: the long chaos and fuzz suites (10^6 mutated frames; make test runs a short version)
chaos: $(STAMP)
	POLYFEED_CHAOS_SCALE=20 $(PY) -m pytest tests/chaos -p no:cacheprovider

## bench: print the benchmark figures quoted in the README
bench: $(STAMP)
	cd bench && for b in bench_*.py; do ../$(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
