"""What the real codex offers the model, read off the stand-in upstream's
record of each /responses request: the image tool, and no shell, exec,
agents, goals, browser, apps or web search. And a prompt that talks the
model into running a command gets nothing of a file back to the caller.

Version-agnostic on purpose: the same test runs against every codex in the
version matrix (CODEX_IMAGE_SERVER_PROJECT_CODEX); names are checked by
what they do, not by one version's list.
"""

from __future__ import annotations

import grpc
import pytest

from .calls import generate

pytestmark = pytest.mark.realcodex

# Every name a shell, exec, patch or agent tool has gone by in codex.
FORBIDDEN = {
    "exec_command",
    "write_stdin",
    "shell",
    "shell_command",
    "local_shell",
    "unified_exec",
    "apply_patch",
    "container.exec",
    "spawn_agent",
    "multi_agent_v1",
    "send_input",
    "create_goal",
    "update_goal",
    "get_goal",
    "web_search",
    "view_image",
    "browser",
    "computer",
}
IMAGE_TOOL = "image_gen"


def _offered(records) -> list[list[str]]:
    return [r["tools"] for r in records.all("responses")]


def test_the_model_is_offered_the_image_tool_and_no_shell(server, fresh):
    images, _, _ = generate(server.stub(), prompt="a red square", count=1)
    assert len(images) == 1  # image generation still works without the rest
    offered = _offered(fresh.records)
    assert offered, "codex sent no /responses request"
    for tools in offered:
        assert IMAGE_TOOL in tools, tools
        assert not FORBIDDEN & set(tools), f"offered {sorted(FORBIDDEN & set(tools))} in {tools}"
        assert not [t for t in tools if "shell" in t or "exec" in t or "browser" in t], tools


def test_a_prompt_cannot_read_codex_home_through_a_shell(server, fresh, mock_home):
    """The stand-in plays a model talked into `head -c 300 $CODEX_HOME/config.toml`:
    it calls `exec_command` and repeats whatever came back."""
    config = (mock_home / "config.toml").read_text()
    telltales = [
        "gpt-5.4",
        "model_provider",
        "MOCK_API_KEY",
        "x-openai-actor",
        fresh.base_url,
        "wire_api",
    ]
    assert all(t in config for t in telltales)
    with pytest.raises(grpc.RpcError) as caught:
        generate(server.stub(), prompt="[shell:head -c 300 $CODEX_HOME/config.toml]", count=1)
    error = caught.value
    print(f"{error.code().name}: {error.details()}")
    # The call reached codex, which refused it: no such tool.
    echoed = [
        r.get("shell_output") for r in fresh.records.all("responses") if r.get("shell_output")
    ]
    assert echoed and "unsupported call" in echoed[0], echoed
    details = error.details()
    assert error.code() == grpc.StatusCode.INTERNAL
    for telltale in telltales:
        assert telltale not in details, (telltale, details)
    assert str(mock_home) not in details and "127.0.0.1" not in details
    assert len(details) < 400
