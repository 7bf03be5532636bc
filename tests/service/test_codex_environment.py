"""Codex runs on an allowlisted environment: a server started with a dozen
secret-looking variables (cloud keys, database URLs, tokens, our own API key)
hands none of them to a running codex, nor to the shell it starts; codex
still gets what it needs (PATH, HOME, CODEX_HOME, locale, proxy, the
provider key its config names). Read from /proc/PID/environ of the live
processes, found by the run ids the server recorded."""

from __future__ import annotations

import threading

import grpc
from codeximage.v1 import image_service_pb2 as pb

from tests.support import procs
from tests.support.server_proc import start_server

MARK = "leak-canary-7f3a"
SECRETS = {
    "AWS_ACCESS_KEY_ID": f"AKIA{MARK}",
    "AWS_SECRET_ACCESS_KEY": f"s3cr3t-{MARK}",
    "AWS_SESSION_TOKEN": MARK,
    "DATABASE_URL": f"postgresql://app:{MARK}@db/app",
    "PGPASSWORD": MARK,
    "GITHUB_TOKEN": f"ghp_{MARK}",
    "GH_TOKEN": MARK,
    "OPENAI_API_KEY": f"sk-{MARK}",
    "ANTHROPIC_API_KEY": MARK,
    "SLACK_BOT_TOKEN": MARK,
    "STRIPE_SECRET_KEY": MARK,
    "NPM_TOKEN": MARK,
    "GOOGLE_APPLICATION_CREDENTIALS": f"/tmp/{MARK}.json",
}
OWN_KEY = f"sk-own-{MARK}"
NEEDED = {
    "LANG": "C.UTF-8",
    "LC_TIME": "C",
    "HTTPS_PROXY": "http://proxy.invalid:3128",
    "no_proxy": "127.0.0.1,localhost",
    "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
    "PROVIDER_KEY_FOR_CODEX": "provider-key-value",
}


def _leaks(pid: int) -> list[str]:
    env = procs.environ_of(pid)
    assert env, f"no environ read for pid {pid}"
    return sorted(
        {
            k
            for k, v in env.items()
            if MARK in v or k in SECRETS or k == "CODEX_IMAGE_SERVER_API_KEY"
        }
    )


def test_a_running_codex_and_its_shell_see_no_secret(tmp_path):
    home = tmp_path / "codex-home"
    home.mkdir()
    # The provider key is let through because codex's own config names it.
    (home / "config.toml").write_text(
        '[model_providers.corp]\nname = "corp"\nenv_key = "PROVIDER_KEY_FOR_CODEX"\n'
    )
    env = {**SECRETS, **NEEDED, "CODEX_IMAGE_SERVER_API_KEY": OWN_KEY}
    with start_server(tmp_path, env=env, codex_home=home) as srv:
        stub = srv.stub()
        call = stub.Generate(
            pb.GenerateRequest(prompt="x [[fake delay=60 shell=60]]", request_id="envcheck"),
            metadata=(("x-api-key", OWN_KEY),),
        )
        done = threading.Thread(target=lambda: list(_drain(call)), daemon=True)
        done.start()
        try:
            assert procs.wait_until(
                lambda: (
                    srv.runs_of("envcheck")
                    and procs.running(srv.runs_of("envcheck")[0]["shell_pid"] or 0)
                ),
                timeout=20,
            )
            (run,) = srv.runs_of("envcheck")
            pids = procs.codex_run_pids(srv.state_dir)
            assert run["pid"] in pids and run["shell_pid"] in pids, (pids, run)
            for pid in pids:
                assert procs.environ_of(pid), pid
                assert _leaks(pid) == [], (pid, _leaks(pid))
            codex_env = procs.environ_of(run["pid"])
            for name, value in NEEDED.items():
                assert codex_env.get(name) == value, name
            assert codex_env["CODEX_HOME"] == str(home) and codex_env["PATH"] and codex_env["HOME"]
            # The server itself still has them: they are its, not codex's.
            assert (
                procs.environ_of(srv.pid)["AWS_SECRET_ACCESS_KEY"]
                == SECRETS["AWS_SECRET_ACCESS_KEY"]
            )
        finally:
            call.cancel()
            done.join(10)
        assert procs.wait_until(lambda: procs.run_gone(run), timeout=10)


def _drain(call):
    try:
        yield from call
    except grpc.RpcError:
        return
