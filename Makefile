# dropcut: `make demo` runs the whole pipeline locally; `make test` runs every check.
# The build and the tests need Python 3.13 (the Lambda runtime). Set PYTHON=/path/to/python3.13
# if it is not on PATH as python3.13; pyenv installs are found automatically.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# The first python3.13 that really runs (a pyenv shim may exist and still refuse to run).
PYTHON ?= $(shell for c in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13; do \
	"$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1 && { command -v "$$c"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins its own boto3 (1.35.x), which cannot share the venv with the layer's: it gets a venv
# of its own, locked by requirements-checkov.txt.
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# sam build (no container) looks for python3.13 on PATH: the venv provides it.
export PATH := $(abspath $(BIN)):$(PATH)
export SAM_CLI_TELEMETRY := 0
# The dropcut package (layers/dropcut), the media package (layers/media: dropcut_media) and the command line (dropcut_cli, the root project: the
# `dropcut` console script in .venv/bin) are installed editable into the venv; the handlers, the
# development stack and the benchmarks are imported from the checkout.
export PYTHONPATH := $(abspath .)
export AWS_DEFAULT_REGION ?= us-east-1
PYTEST_ARGS ?=

.PHONY: soak help venv hooks lint check format build test test-unit test-integration test-devstack test-e2e demo stack simulator bench clean

help:
	@echo "make demo    run the whole pipeline on the local stack (videos in, edited videos out)"
	@echo "make test    lint + sam build + unit, integration, devstack and end-to-end tests"
	@echo "make check   the inner loop: ruff, ruff format --check, mypy, import contracts, cfn-lint, unit tests"
	@echo "make stack   run the local stack in the foreground (S3/SFN/DynamoDB + provider simulator)"
	@echo "make lint    ruff (with a complexity gate), mypy, import contracts, cfn-lint, sam validate --lint, checkov"
	@echo "make hooks   install the pre-commit hooks (ruff, ruff format, mypy on changed packages, cfn-lint)"
	@echo "make bench   benchmarks (figures printed, not asserted)"

$(STAMP): requirements-dev.txt layers/dropcut/pyproject.toml layers/media/pyproject.toml pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "Python 3.13 not found: install it or run make PYTHON=/path/to/python3.13" >&2; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable layers/dropcut
	$(BIN)/python -m pip install --quiet --no-deps --editable layers/media
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt | $(STAMP)
	$(BIN)/python -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip==26.3
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

venv: $(STAMP)

# The pre-commit hooks (.pre-commit-config.yaml): local hooks running the venv's pinned tools.
hooks: $(STAMP)
	$(BIN)/pre-commit install

# The fast checks, shared by `make check` and `make lint`.
define FAST_LINT
$(BIN)/ruff check .
$(BIN)/ruff format --check .
$(BIN)/mypy
$(BIN)/lint-imports
$(BIN)/cfn-lint template.yaml
endef

# checkov runs offline (no Prisma Cloud guidelines download, no update check); its findings are
# fixed in the template or skipped there, each with its reason (Metadata: checkov: skip).
lint: $(STAMP) $(CHECKOV_STAMP)
	$(FAST_LINT)
	$(BIN)/sam validate --lint --region $(AWS_DEFAULT_REGION)
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV_VENV)/bin/checkov --file template.yaml \
		--framework cloudformation --quiet --compact --skip-download

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The layers are built by layers/Makefile (wheels for Lambda, then bytecode). sam's build cache keys
# a layer on its ContentUri alone, so a changed layers/Makefile empties the cache first.
LAYERS_STAMP := .aws-sam/layers-makefile.stamp
build: $(STAMP)
	@if [ layers/Makefile -nt $(LAYERS_STAMP) ]; then rm -rf .aws-sam/cache .aws-sam/build.toml; fi
	$(BIN)/sam build --region $(AWS_DEFAULT_REGION)
	touch $(LAYERS_STAMP)

# Two pytest-xdist workers (the machine's 2 cores), each handed whole test modules (loadfile), so a
# module's local stack starts once; the modules marked long_running go first, longest first
# (tests/conftest.py), in place of xdist's most-tests-first order. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: lint build
	DROPCUT_CODE_ROOT=.aws-sam/build $(BIN)/python -m pytest -p no:cacheprovider \
		-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# The inner loop: the fast lint (no sam validate, no checkov) and the unit tests, in
# TEST_WORKERS pytest-xdist workers (TEST_WORKERS=0: one process).
check: $(STAMP)
	$(FAST_LINT)
	$(BIN)/python -m pytest -p no:cacheprovider -n $(TEST_WORKERS) tests/unit $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/integration $(PYTEST_ARGS)

test-devstack: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/devstack $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m devstack.demo

PORT ?= 4566
SIMULATOR_PORT ?= 8765
stack: $(STAMP)
	$(BIN)/python -m devstack.local_app --port $(PORT) --simulator-port $(SIMULATOR_PORT)

simulator: $(STAMP)
	$(BIN)/python -m devstack.simulator --port 8765 --allow-insecure-callbacks

# One table at the end (bench/__main__.py); each benchmark also runs alone: python -m bench.<name>.
# The cold start figures import what sam build ships (.aws-sam/build), hence the build first.
bench: build
	$(BIN)/python -m bench $(BENCH_ARGS)

# The big drop of issue 23 (tests/e2e/test_big_drop.py): 300 clips, 3 slots, about 20 minutes;
# prints the ETA's accuracy. Not part of `make test`.
soak: build
	DROPCUT_SOAK=1 DROPCUT_CODE_ROOT=.aws-sam/build $(BIN)/python -m pytest -p no:cacheprovider -s \
		tests/e2e/test_big_drop.py $(PYTEST_ARGS)

clean:
	rm -rf .aws-sam out .pytest_cache .mypy_cache .ruff_cache
