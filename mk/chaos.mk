# `make chaos`: faults on purpose (tests/chaos). A supervised 3-replica
# cluster with the fake codex under a workload, a nemesis killing, stopping
# and restarting replicas, PostgreSQL and the object store at moments drawn
# from a printed seed, then every invariant checked. Not in `make test`;
# loopback only; bounded by CHAOS_TIMEOUT_S and by its counts.
CHAOS_TIMEOUT_S ?= 1200
CHAOS_SEED ?=
CHAOS_ARGS ?=

.PHONY: chaos
chaos: setup cluster-deps ## a 3-replica cluster under a seeded nemesis, then every invariant checked (CHAOS_SEED=N)
	timeout $(CHAOS_TIMEOUT_S) $(PY) -m tests.chaos $(if $(CHAOS_SEED),--seed $(CHAOS_SEED)) $(CHAOS_ARGS)
