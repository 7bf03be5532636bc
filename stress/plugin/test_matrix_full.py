"""`make stress`: the plugin's full cross product, aspect x preset x 0/1/5/16
references x count 1-4, through the /v1 shim and through gRPC. `make test`
runs all pairs of it (tests/plugin/test_plugin_matrix.py)."""
from __future__ import annotations

import pytest

from tests.plugin.matrix import check_grpc, check_shim, full_rows

ROWS = full_rows()


def _id(row) -> str:
    return f"{row.aspect}-{row.preset}-refs{row.references}-n{row.count}"


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_plugin_body_through_the_shim(plugin_server, row):
    check_shim(plugin_server.http_base, row)


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_same_request_through_grpc(plugin_stub, row):
    check_grpc(plugin_stub, row)
