# Benchmark tools: wrk from Debian apt, ghz via go install into
# .tools/bin. Version in the stamp name: changing a pin reinstalls the tool.
GHZ_VERSION := v0.120.0
WRK := /usr/bin/wrk
GHZ = $(TOOLS_BIN)/ghz

.PHONY: bench-tools bench-core bench-finish-early
bench-tools: $(STAMPS)/wrk $(STAMPS)/ghz-$(GHZ_VERSION)

$(STAMPS)/wrk:
	@mkdir -p $(STAMPS)
	command -v wrk >/dev/null || $(APT_INSTALL) wrk
	touch $@

$(STAMPS)/ghz-$(GHZ_VERSION):
	@mkdir -p $(STAMPS) $(TOOLS_BIN)
	$(GO_INSTALL) github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)
	touch $@

# BENCH_ARGS e.g. "--runs 3 --seconds 5"
bench-core: setup bench-tools
	$(PY) bench/core_bench.py $(BENCH_ARGS)

bench-finish-early: setup
	$(PY) bench/finish_early_bench.py $(BENCH_ARGS)
