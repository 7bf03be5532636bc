"""`make stress`: the plugin's full cross product, aspect x preset x 0/1/5/16
references x count 1-4, through the /v1 shim and through gRPC. `make test`
runs all pairs of it (tests/plugin/test_plugin_matrix.py)."""

from __future__ import annotations

from tests.plugin.matrix import full_rows, matrix_tests

test_plugin_body_through_the_shim, test_same_request_through_grpc = matrix_tests(full_rows())
