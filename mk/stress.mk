# `make stress`: the full hostile-input and process-hygiene run
# (tests/stress): fuzzing, hostile images, stalled readers, a cancel storm and
# a hard death against a real server with the fake codex, loopback only.
# Bounded: it stops by itself (hard limit below) and fails on any leftover.
# `make test` runs its fast slice.
STRESS_TIMEOUT_S ?= 1800

.PHONY: stress stress-hostile
stress: stress-hostile ## the long runs: the plugin's full matrix and hostile input (up to 30 min)

stress-hostile: setup
	timeout $(STRESS_TIMEOUT_S) $(PY) -m tests.stress
