# The OpenAI-compatible surface: the official openai npm SDK its
# tests run (tests/openai_sdk/js, pinned by package-lock.json). The Python SDK
# is a dev dependency in pyproject.toml.
OPENAI_JS_DIR := tests/openai_sdk/js
.PHONY: openai-js-deps test-openai
openai-js-deps: $(STAMPS)/openai-js-deps
$(STAMPS)/openai-js-deps: $(OPENAI_JS_DIR)/package.json $(OPENAI_JS_DIR)/package-lock.json
	@mkdir -p $(STAMPS)
	cd $(OPENAI_JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test-openai: setup openai-js-deps
	$(PY) -m pytest tests/openai_sdk tests/transparency -q $(PYTEST_ARGS)

TEST_DEPS += openai-js-deps

# What the transparency step costs on a codex-sized image (ratio to PNG I/O).
.PHONY: bench-matte
bench-matte: setup
	$(PY) bench/matte_bench.py $(BENCH_ARGS)
