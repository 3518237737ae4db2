# Two commands matter on a fresh machine: `make demo` and `make test`. Both set up .venv first.
# The interpreter .venv is made from: the distribution's python3.11 where there is one that can
# make a venv (Debian's python3.11-venv), else the first on PATH. Debian builds its own with
# link-time and profile-guided optimisation, as python:3.11-slim (the service's image) is built;
# pyenv's default build has neither, and took 8.5% more CPU in-process and 7% more served a
# decision here (ADR 0020).
DISTRIBUTION_PYTHON := /usr/bin/python3.11
PYTHON ?= $(or $(shell $(DISTRIBUTION_PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 && echo $(DISTRIBUTION_PYTHON)),python3.11)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# Where the CPU build of torch comes from. These machines keep it in $PIP_FIND_LINKS; elsewhere
# PyTorch's CPU wheel page serves the same build (override with TORCH_FIND_LINKS=...).
TORCH_FIND_LINKS ?= $(or $(PIP_FIND_LINKS),https://download.pytorch.org/whl/cpu/torch/)
INSTALL = $(BIN)/uv pip install --python $(BIN)/python --find-links $(TORCH_FIND_LINKS)

.PHONY: setup demo test test-unit test-calendar lint format bench lock infra clean

# var/feast: where feature_repo/feature_store.yaml points the stock feast CLI (the local profile's).
setup: $(VENV)/.compiled
	@mkdir -p var/feast

# The installed packages compiled to bytecode, once after each install (and once for a .venv made
# before this step existed): a process that may not write bytecode (PYTHONDONTWRITEBYTECODE, as on
# these machines) otherwise compiles torch, transformers, mlflow and BentoML from source at every
# start; importing them took 25-28 s, against 10-13 s compiled. A few files in the packages are
# not valid Python on purpose (test fixtures), so compileall's status is not the step's.
$(VENV)/.compiled: $(VENV)/.installed
	$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null || true
	touch $@

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || { echo "making $(VENV) from $(PYTHON): $$($(PYTHON) -V)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(INSTALL) -r requirements.lock
	$(INSTALL) --no-deps -e .
	touch $@

demo: setup
	$(BIN)/riskctl demo

# Both cores: modules are spread over TEST_WORKERS processes, and the modules sharing a fixture
# that takes minutes (a trained world, Spark, the CDK synthesis) run on one (tests/conftest.py).
# TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=25

test-unit: setup
	$(BIN)/pytest -m "not integration and not slow and not spark"

# The tests that once moved with the calendar (marker `calendar`), with the session's clock at three
# days months apart: every outcome must follow from tests/support/clock.py, not from the day they run.
CALENDAR_DAYS ?= 2026-01-15 2026-12-02 2027-06-30
test-calendar: setup
	for day in $(CALENDAR_DAYS); do \
		echo "== the calendar says $$day"; $(BIN)/pytest -m calendar --today $$day || exit 1; \
	done

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy decisioning

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python -m bench

# Synthesize every environment's CloudFormation into infra/cdk.out and lint it (offline).
infra: setup
	bash infra/synth.sh

# Re-resolve the whole stack to exact versions (needs the package registries).
lock:
	test -x $(BIN)/uv || (test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); $(BIN)/python -m pip install --quiet uv==$(UV_VERSION))
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--find-links $(TORCH_FIND_LINKS) -c constraints-torch-cpu.txt -o requirements.lock

clean:
	rm -rf var build infra/cdk.out .pytest_cache .ruff_cache .mypy_cache
