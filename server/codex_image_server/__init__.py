"""codex-image-server: image generation by the Codex CLI, behind gRPC and HTTP.

Read ARCHITECTURE.md for the one-screen map. Packages, from the edges down:
- grpc_api: the gRPC edge (servicer, status mapping, server)
- dataplane: Service, what every surface calls
- operations: detached generations (long-running operations, webhooks)
- request: the request domain (params, validation, sizes, references, imaging)
- finishing: what happens to an image before it is stored
- engine: the one place codex is spawned, watched and killed
- team: keys, quotas, tenancy, history, retention, metrics
- store: images and their records (files or S3, SQLite or PostgreSQL)
- runtime: pools, slots, work directories, logs
- autostart: `codex-image-server service` (systemd/launchd)
Top level: settings, errors, version, the command line and the composition root.
"""
