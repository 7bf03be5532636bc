"""Several replicas on loopback behind HAProxy, with a real PostgreSQL and a real
S3-compatible server (s3proxy): what `make cluster` runs and the cluster tests reuse.

Each piece is a small class with start()/stop() that owns exactly one process
(or one process group) and refuses to report ready until it answers."""
