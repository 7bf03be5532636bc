"""The plugin's requests across aspect x preset x references x count, through
the /v1 shim and through gRPC, against the plugin's own size table.

Every aspect meets every preset; reference counts (0/1/5/16) and counts (1-4)
rotate so every value of every axis meets every value of every other axis at
least once (all pairs). `make stress` runs the full cross product.
"""

from __future__ import annotations

from .matrix import covers_all_pairs, full_rows, matrix_tests, pairwise_rows

ROWS = pairwise_rows()

test_plugin_body_through_the_shim, test_same_request_through_grpc = matrix_tests(ROWS)


def test_the_plan_covers_every_pair_and_every_aspect_with_every_preset():
    assert covers_all_pairs(ROWS)
    assert {(r.aspect, r.preset) for r in ROWS} == {(r.aspect, r.preset) for r in full_rows()}
    assert len(ROWS) < len(full_rows()) // 5  # the point of pairs: fast enough for `make test`
