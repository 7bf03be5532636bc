"""`usage` when codex reports token counts: only its turn.completed carries
them, which a server that stops codex early (the default) never reads. With
--no-finish-early every candidate's turn completes and the counts are summed.
Served in-process (tests/support/inprocess_server.py), the SDK over HTTP."""

from __future__ import annotations

import openai

from tests.support.inprocess_server import serve_in_process


def test_usage_sums_codex_turn_counts(tmp_path):
    with serve_in_process(tmp_path, http=True, args=["--no-finish-early"]) as srv:
        with openai.OpenAI(
            base_url=srv.http_base + "/v1", api_key="unused", max_retries=0, timeout=60
        ) as client:
            result = client.images.generate(prompt="x [[fake size=256x256]]", n=2)
    # The fake codex reports 1200 input and 40 output tokens per turn.
    u = result.usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (2400, 80, 2480)
    assert u.input_tokens_details.text_tokens == 2400
