"""The History tab lists detached generations (ListOperations) in headless
Chromium, and its Cancel button stops a running one (its codex run gone, by pid)."""

from __future__ import annotations

import pytest

from tests.shim.client import request
from tests.support import procs
from tests.support.server_proc import start_server


@pytest.fixture(scope="module")
def ops_server(tmp_path_factory):
    with start_server(tmp_path_factory.mktemp("console-ops"), http=True) as srv:
        yield srv


def states(console) -> dict[str, str]:
    return console.js(
        "return Object.fromEntries([...document.querySelectorAll('#operations .operation')]"
        ".map(li => [li.dataset.operation, li.className.replace('operation', '').trim()]))"
    )


def test_history_lists_operations_and_cancels_a_running_one(ops_server, console_for):
    base = ops_server.http_base
    assert (
        request(
            base,
            "POST",
            "/v1/images:submit",
            {"prompt": "done [[fake delay=0.1]]", "request_id": "console-done"},
        ).status
        == 200
    )
    request(base, "POST", "/v1/operations/console-done:wait", {"timeout": "20s"})
    assert (
        request(
            base,
            "POST",
            "/v1/images:submit",
            {"prompt": "slow [[fake delay=60 child=1]]", "request_id": "console-slow"},
        ).status
        == 200
    )
    assert procs.wait_until(lambda: len(ops_server.runs_of("console-slow")) == 1, timeout=15)
    runs = ops_server.runs_of("console-slow")
    console = console_for(ops_server)
    console.open("/#history").wait_ready()
    console.wait(
        lambda: states(console).get("operations/console-slow") == "running",
        message="the running operation was not listed",
    )
    assert states(console)["operations/console-done"] == "succeeded"
    console.screenshot("history-operations")
    console.find('[data-operation="operations/console-slow"] .cancel-operation').click()
    console.wait(
        lambda: states(console).get("operations/console-slow") == "cancelled",
        message="Cancel did not end it",
    )
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=10)


def test_run_detached_submits_an_operation_history_then_lists(ops_server, console_for):
    console = console_for(ops_server)
    console.open("/").wait_ready()
    console.find("#prompt").send_keys("a detached fox [[fake delay=0.2]]")
    console.find("#detached-button").click()
    console.wait(
        lambda: "Submitted operations/" in console.text("#generate-message"),
        message="no operation was submitted",
    )
    name = console.text("#generate-message").split("Submitted ", 1)[1].split(":", 1)[0]
    request(ops_server.http_base, "POST", f"/v1/{name}:wait", {"timeout": "20s"})
    console.open("/#history").wait_ready()
    console.wait(
        lambda: states(console).get(name) == "succeeded",
        message=f"{name} was not listed as succeeded",
    )
