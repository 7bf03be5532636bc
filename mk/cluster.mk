# Several replicas on loopback (issue 15): PostgreSQL and HAProxy from Debian,
# s3proxy from Maven Central (cached under .tools), three replicas.
S3PROXY_VERSION := 2.1.0
S3PROXY_DIR := .tools/s3proxy
S3PROXY_JAR := $(S3PROXY_DIR)/s3proxy-$(S3PROXY_VERSION)-jar-with-dependencies.jar
CLUSTER_ARGS ?=

.PHONY: cluster cluster-deps test-cluster bench-cluster
cluster-deps: $(STAMPS)/cluster-apt $(S3PROXY_JAR)

# Debian's PostgreSQL, HAProxy, a JRE and Maven (to fetch s3proxy).
$(STAMPS)/cluster-apt:
	@mkdir -p $(STAMPS)
	if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! command -v haproxy >/dev/null \
		|| ! command -v java >/dev/null || ! command -v mvn >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			postgresql haproxy default-jre-headless maven; fi
	touch $@

$(S3PROXY_JAR):
	@mkdir -p $(S3PROXY_DIR)
	mvn -q dependency:copy -Dartifact=org.gaul:s3proxy:$(S3PROXY_VERSION):jar:jar-with-dependencies \
		-DoutputDirectory=$(abspath $(S3PROXY_DIR))
	test -s $@

cluster: setup cluster-deps
	$(PY) -m codex_image_cluster $(CLUSTER_ARGS)

test-cluster: setup cluster-deps
	$(PY) -m pytest tests/cluster -q $(PYTEST_ARGS)

# Throughput for 1/2/3 replicas through HAProxy, and what HAProxy adds.
bench-cluster: setup cluster-deps
	$(PY) bench/cluster_bench.py $(CLUSTER_BENCH_ARGS)

TEST_DEPS += cluster-deps
