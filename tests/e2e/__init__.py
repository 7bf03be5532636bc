"""End-to-end tests: the real pinned codex binary, driven through the gRPC
server, against the in-process upstream stand-in, so they run offline and
without an OpenAI account."""
