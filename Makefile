# Every set-up step lives here: a fresh machine needs only `make run` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMPS := .state/stamps
CODEX_VERSION := 0.171.0
# The codex versions the service is proven on: `make test-codex` runs the
# real-codex e2e suite against each (mk/codex.mk). The server states the same
# list as its tested range (engine/versions.py; tests/test_codex_versions.py
# keeps the two equal).
CODEX_VERSIONS := 0.169.0 0.170.0 0.171.0
# The pinned codex CLI lives inside the project (ignored by git).
CODEX_PREFIX := .tools/codex
CODEX_BIN := $(CODEX_PREFIX)/node_modules/.bin/codex

PROTOS := $(shell find protos -name '*.proto')
# The Python stubs are checked in inside the client package (like Go and TS):
# `make proto` rewrites them, `make check-generated` guards them.
PY_CLIENT := clients/python
GEN_PY := $(PY_CLIENT)

.PHONY: all setup venv gen-python codex run test bench clean help dist
.DEFAULT_GOAL := all
# Every Debian package comes through this one script (sudo -n when not root).
APT_INSTALL := mk/apt-install.sh
# pytest's 15 slowest tests at the end of `make test`.
TEST_DURATIONS ?= 15
# `make test` spreads the suite over this many pytest-xdist workers, one file
# (or one group, tests/conftest.py) to a worker at a time; TEST_WORKERS=0 runs
# it in one process. Most of a test's time is spent waiting on the servers
# and codex runs it starts, so more workers than cores still pay.
TEST_WORKERS ?= 4

all: setup

setup: venv codex ## the venv and the pinned codex CLI (what run and test start with)

# Targets with a `## text` after their prerequisites, in the order they are read.
help: ## this list
	@awk -F':.*## ' '/^[a-zA-Z][a-zA-Z0-9_.-]*:.*## / {printf "  make %-18s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

# Two editable installs, the client package first: the server depends on it
# (for the stubs). CODEX_IMAGE_CLIENT_INSTALLED makes the server name the
# client by its version range, which the editable client satisfies (setup.py;
# by default a checkout's server names clients/python by path, and pip would
# reinstall it non-editable).
venv: $(STAMPS)/venv
$(STAMPS)/venv: pyproject.toml setup.py $(PY_CLIENT)/pyproject.toml VERSION
	@mkdir -p $(STAMPS)
	$(PYTHON) -m venv $(VENV)
	@# Metadata left at the top by the layout before the client package was
	@# split out would shadow the installed version (`python -m` runs from here).
	rm -rf codex_image_server.egg-info
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e './$(PY_CLIENT)[mcp]'
	CODEX_IMAGE_CLIENT_INSTALLED=1 $(PIP) install --quiet -e '.[dev]'
	touch $@

# Python stubs into the client package (checked in). google/api and
# google/rpc come from googleapis-common-protos at run time, so only our own
# package is generated. OUT= lets check-generated write elsewhere.
gen-python: $(STAMPS)/venv
	$(PY) -m grpc_tools.protoc -I protos \
		--python_out=$(or $(OUT),$(GEN_PY)) --pyi_out=$(or $(OUT),$(GEN_PY)) \
		--grpc_python_out=$(or $(OUT),$(GEN_PY)) protos/codeximage/v1/image_service.proto

# The stamp names the version: bumping the pin reinstalls.
codex: $(STAMPS)/codex-pinned-$(CODEX_VERSION) ## install the pinned codex CLI into .tools/codex
$(STAMPS)/codex-pinned-$(CODEX_VERSION):
	@mkdir -p $(STAMPS) $(CODEX_PREFIX)
	@# The npm package carries the native binary: no download step, works offline.
	[ -f $(CODEX_PREFIX)/package.json ] || echo '{"private":true}' > $(CODEX_PREFIX)/package.json
	npm install --prefix $(CODEX_PREFIX) --no-audit --no-fund --loglevel=error @openai/codex@$(CODEX_VERSION)
	$(CODEX_BIN) --version
	touch $@

-include mk/*.mk

run: setup $(RUN_DEPS) ## set up, then serve on 127.0.0.1 (RUN_ARGS="--flag value" for settings)
	$(PY) -m codex_image_server $(RUN_ARGS)

# One pass over xdist's workers, grouped (tests/support/grouping.py); the
# stress slice runs there too (tests/stress/test_stress.py says why it may).
test: setup $(TEST_DEPS) ## set up everything (apt packages too), then the whole suite (PYTEST_ARGS=...)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=$(TEST_DURATIONS) $(PYTEST_ARGS)

# Speed and memory targets live here, not in timed tests (shared, noisy machines).
bench: setup bench-tools ## every benchmark (docs/benchmarks.md)
	$(PY) bench/service_bench.py $(BENCH_ARGS)
	$(PY) bench/core_bench.py
	$(PY) bench/finish_early_bench.py
	$(PY) bench/shim_bench.py
	$(PY) bench/dataplane_bench.py
	$(PY) bench/real_codex_service.py
	$(MAKE) bench-cluster
	$(PY) bench/history_bench.py
	$(PY) bench/mcp_bench.py
	$(PY) bench/operations_bench.py

# The two Python packages, sdist and wheel each, into dist/ (what gets published).
dist: $(STAMPS)/venv ## build the server's and the client's sdist and wheel into dist/
	$(PY) -m build --no-isolation --outdir dist ./$(PY_CLIENT)
	$(PY) -m build --no-isolation --outdir dist .

clean: ## remove the venv, the stamps and dist/
	rm -rf $(VENV) .state/stamps .pytest_cache dist
