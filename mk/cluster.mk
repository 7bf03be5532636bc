# Several replicas on loopback: PostgreSQL and HAProxy from Debian,
# s3proxy from Maven Central (cached under .tools), three replicas.
S3PROXY_VERSION := 2.1.0
S3PROXY_DIR := .tools/s3proxy
S3PROXY_JAR := $(S3PROXY_DIR)/s3proxy-$(S3PROXY_VERSION)-jar-with-dependencies.jar
CLUSTER_ARGS ?=

.PHONY: cluster cluster-deps test-cluster bench-cluster
cluster-deps: $(STAMPS)/cluster-apt $(S3PROXY_JAR) ## PostgreSQL, HAProxy, a JRE, Maven (apt) and s3proxy (Maven Central)

# Debian's PostgreSQL, HAProxy, a JRE and Maven (to fetch s3proxy).
$(STAMPS)/cluster-apt:
	@mkdir -p $(STAMPS)
	if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! command -v haproxy >/dev/null \
		|| ! command -v java >/dev/null || ! command -v mvn >/dev/null; then \
		$(APT_INSTALL) postgresql haproxy default-jre-headless maven; fi
	touch $@

$(S3PROXY_JAR):
	@mkdir -p $(S3PROXY_DIR)
	mvn -q dependency:copy -Dartifact=org.gaul:s3proxy:$(S3PROXY_VERSION):jar:jar-with-dependencies \
		-DoutputDirectory=$(abspath $(S3PROXY_DIR))
	test -s $@

cluster: setup cluster-deps ## three replicas behind HAProxy on loopback (CLUSTER_ARGS=--fake-codex)
	$(PY) -m codex_image_cluster $(CLUSTER_ARGS)

test-cluster: setup cluster-deps ## tests/cluster only
	$(PY) -m pytest tests/cluster -q $(PYTEST_ARGS)

# Throughput for 1/2/3 replicas through HAProxy, and what HAProxy adds.
bench-cluster: setup cluster-deps ## throughput of 1, 2 and 3 replicas through HAProxy
	$(PY) bench/cluster_bench.py $(CLUSTER_BENCH_ARGS)

TEST_DEPS += cluster-deps

# tests/cluster SOAK_RUNS times in a row while stress-ng keeps both cores busy:
# the cluster tests must not depend on a quiet machine.
SOAK_RUNS ?= 10
.PHONY: cluster-soak
cluster-soak: setup cluster-deps client-install ts-deps $(STAMPS)/stress-ng ## tests/cluster 10 times in a row under stress-ng --cpu 2 (SOAK_RUNS=N)
	@stress-ng --cpu 2 --timeout 4h --quiet & load=$$!; trap 'kill $$load' EXIT; \
	for i in $$(seq $(SOAK_RUNS)); do \
		echo "cluster-soak: run $$i of $(SOAK_RUNS)"; \
		$(PY) -m pytest tests/cluster -q -p no:cacheprovider $(PYTEST_ARGS) || { echo "cluster-soak: run $$i failed"; exit 1; }; \
	done; \
	echo "cluster-soak: $(SOAK_RUNS) runs in a row passed under stress-ng --cpu 2"

$(STAMPS)/stress-ng:
	@mkdir -p $(STAMPS)
	command -v stress-ng >/dev/null || $(APT_INSTALL) stress-ng
	touch $@
