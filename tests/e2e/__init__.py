"""End-to-end tests: the real pinned codex binary, driven through the gRPC
server, against the in-process upstream stand-in (issue 3)."""
