# Every set-up step lives here: a fresh machine needs only `make run` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMPS := .state/stamps
CODEX_VERSION := 0.169.0
# The pinned codex CLI lives inside the project (ignored by git).
CODEX_PREFIX := .tools/codex
CODEX_BIN := $(CODEX_PREFIX)/node_modules/.bin/codex

PROTOS := $(shell find protos -name '*.proto')
GEN_PY := gen/python

.PHONY: all setup venv gen codex run test bench clean
.DEFAULT_GOAL := all
all: setup

setup: venv gen codex

venv: $(STAMPS)/venv
$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	$(PYTHON) -m venv $(VENV)
	@# The generated package must exist before the editable install maps it.
	mkdir -p $(GEN_PY)/codeximage/v1
	touch $(GEN_PY)/codeximage/__init__.py $(GEN_PY)/codeximage/v1/__init__.py
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $@

gen: $(STAMPS)/gen-python
$(STAMPS)/gen-python: $(PROTOS) $(STAMPS)/venv
	mkdir -p $(GEN_PY)/codeximage/v1
	touch $(GEN_PY)/codeximage/__init__.py $(GEN_PY)/codeximage/v1/__init__.py
	@# google/api and google/rpc come from googleapis-common-protos at run
	@# time, so only our own package is generated for Python.
	$(PY) -m grpc_tools.protoc -I protos \
		--python_out=$(GEN_PY) --pyi_out=$(GEN_PY) --grpc_python_out=$(GEN_PY) \
		protos/codeximage/v1/image_service.proto
	touch $@

codex: $(STAMPS)/codex
$(STAMPS)/codex:
	@mkdir -p $(STAMPS) $(CODEX_PREFIX)
	@# The npm package carries the native binary: no download step, works offline.
	[ -f $(CODEX_PREFIX)/package.json ] || echo '{"private":true}' > $(CODEX_PREFIX)/package.json
	npm install --prefix $(CODEX_PREFIX) --no-audit --no-fund --loglevel=error @openai/codex@$(CODEX_VERSION)
	$(CODEX_BIN) --version
	touch $@

-include mk/*.mk

run: setup $(RUN_DEPS)
	$(PY) -m codex_image_server $(RUN_ARGS)

test: setup $(TEST_DEPS)
	$(PY) -m pytest $(PYTEST_ARGS)

# Speed and memory targets live here, not in timed tests (shared, noisy machines).
bench: setup bench-tools
	$(PY) bench/service_bench.py $(BENCH_ARGS)
	$(PY) bench/core_bench.py
	$(PY) bench/finish_early_bench.py
	$(PY) bench/shim_bench.py
	$(PY) bench/real_codex_service.py
	$(PY) bench/history_bench.py

clean:
	rm -rf $(VENV) gen .state/stamps .pytest_cache
