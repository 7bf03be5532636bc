# The Photoshop plugin's requests: the full matrix is stress, not `make test` (too slow for every run).
.PHONY: stress stress-plugin test-plugin
stress: stress-plugin

stress-plugin: setup
	$(PY) -m pytest stress/plugin -q -p no:cacheprovider $(PYTEST_ARGS)

test-plugin: setup
	$(PY) -m pytest tests/plugin -q $(PYTEST_ARGS)

# What delivering the plugin's exact size costs (part of `make bench`).
.PHONY: bench-resize
bench: bench-resize
bench-resize: setup
	$(PY) bench/resize_bench.py $(BENCH_ARGS)
