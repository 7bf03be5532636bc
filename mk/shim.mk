# The /v1 HTTP shim: its tests and its benchmark.
.PHONY: test-shim bench-shim
test-shim: setup
	$(PY) -m pytest tests/shim -q $(PYTEST_ARGS)

# BENCH_ARGS e.g. "--runs 5 --mb 30 --seconds 3 --threads 8"
bench-shim: setup
	$(PY) bench/shim_bench.py $(BENCH_ARGS)
