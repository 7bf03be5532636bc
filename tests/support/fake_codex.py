#!/usr/bin/env python3
"""A stand-in for the Codex CLI 0.169.0, for the failure modes the real binary
cannot produce on demand (quota text, hangs, ignored SIGTERM, old layouts).

It follows ../shared/codex-notes.md as corrected by what the real binary did
against the stand-in (tests/upstream_standin/FINDINGS.md): `--version`,
`login status` (exit 1 and "Not logged in" without $CODEX_HOME/auth.json),
`exec` with `--json` JSONL on stdout (thread.started, the harmless
model-metadata warning item, turn.started, agent messages, turn.completed),
a `session id: <uuid>` header on stderr only without --json, the image at
$CODEX_HOME/generated_images/<thread_id>/<call_id>.png and the call recorded in
the rollout log as an event_msg item_completed `image_gen.generation` item.
Exit 0 on success, 1 on a failed turn; an Images API failure (403, 429 quota)
exits 0 with the text only on stderr and in the rollout, like the real one.

Behaviour is chosen per run by directives anywhere in the prompt,
`[[fake key=value ...]]`, falling back to $CODEX_HOME/fake_codex.json
({"key": "value"}: one account of a pool can behave differently), then to
FAKE_CODEX_<KEY> variables:
  delay=S          seconds the turn takes (default 0.05)
  mode=ok|noimage|quota|forbidden|moderation|fail|crash
                   (moderation: the Images API's safety refusal, as the
                   real codex words it against the stand-in's `moderation`)
  layout=generated|rollout-saved|rollout-result|legacy-call|legacy-ig|legacy-end|app-server|unknown
                   (legacy-end: an `image_generation_end` event with `saved_path`,
                   app-server: a v2 `item/completed` `imageGeneration` item,
                   unknown: an image item in a shape no codex wrote yet)
  size=WxH         image size (default 256x256)
  noise=1          random pixels: a large, incompressible file
  pattern=1        a deterministic gradient and checkerboard (the same bytes for
                   the same size and candidate): detail for resampling checks
  child=1          start a grandchild in the same process group (like the npm
                   wrapper's native child) that lives as long as the turn
  chatter=N        N reasoning `item.started` lines a second while the turn
                   runs (a steady stream of progress events)
  ignore_term=1    ignore SIGTERM (the grandchild and the shell too)
  shell=S          start `/bin/sh -c 'sleep S'` in a session of its own, like
                   the real codex's `bash -lc` tool shells, and never wait for
                   it: it outlives a codex that exits, escapes a group kill,
                   and is reparented to the server (a zombie unless reaped)
  fail_candidate=N only candidate N (1-based, read from "candidate N of M")
                   fails as soon as all M candidates of its request have
                   started; the others behave normally
  version=TEXT     what `--version` prints (and the rollout's cli_version), e.g.
                   "codex-cli 0.172.0" (default "codex-cli 0.169.0"); read from
                   fake_codex.json or FAKE_CODEX_VERSION, there being no prompt
  alpha=real|key|opaque  what a transparent-background request gets back:
                   real alpha (the default when the prompt asks for
                   transparent_background: true, like a tool that honours it),
                   an opaque subject on the prompt's key colour, or an opaque
                   picture with no key colour at all
FAKE_CODEX_PROBE_DELAY=S in the environment makes `login status` take S seconds.
The prompt is the argument after `--`, or stdin when that argument is `-`
(measured on 0.169.0: a regular file as stdin is read as the prompt).
Every run writes `<pid>.json` ({pid, pgid, sid, child_pid, shell_pid,
prompt_chars, images: the --image paths with the sha256 of each file}) into
$FAKE_CODEX_PIDDIR when set, so tests can look each process up by pid
(`cwd` names the request: the engine runs each candidate in <request_id>-*/).
Stdlib only: it must run with any python3, like a foreign binary.
Cheap to start (the benchmarks run a dozen at once on two cores): modules
only some modes need (subprocess, signal, hashlib, json's parser, re) are
imported where used; ids, timestamps, JSON lines and the directives are
made without uuid, datetime, json and re, whose imports were half of a
run's CPU; and it ends with os._exit once its output is flushed (the
interpreter's clean-up, a full garbage collection, was another tenth).
"""

import binascii
import os
import stat
import struct
import sys
import time
import zlib

try:
    from _json import encode_basestring_ascii as _json_string  # json.dumps's own string escaping
except ImportError:  # not CPython: the json module's, at its import cost
    from json.encoder import encode_basestring_ascii as _json_string

VERSION = "codex-cli 0.169.0"


def pattern_rows(width, height, seed):
    """Red ramps across, green down, blue a 16-px checkerboard shifted by seed."""
    reds = bytes(x * 255 // max(1, width - 1) for x in range(width))
    blues = [
        bytes(255 if ((x + seed) // 16 + parity) % 2 else 0 for x in range(width))
        for parity in (0, 1)
    ]
    for y in range(height):
        row = bytearray(3 * width)
        row[0::3] = reds
        row[1::3] = bytes((y * 255 // max(1, height - 1),)) * width
        row[2::3] = blues[(y // 16) % 2]
        yield b"\x00" + bytes(row)


def dumps(value):
    """json.dumps(value) for the plain values the fake writes."""
    if isinstance(value, str):
        return _json_string(value)
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{_json_string(str(k))}: {dumps(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    raise TypeError(f"not JSON: {type(value).__name__}")


def uuid4():
    """A random (version 4) UUID, as uuid4() writes it."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def b64(data):
    return binascii.b2a_base64(data, newline=False).decode()


def png_bytes(width, height, seed, noise=False, pattern=False, alpha=None, key=(0, 255, 0)):
    """A real, decodable RGB PNG, coloured by `seed` so candidates differ;
    with `noise`, random pixels, so the file is as large as a photo's; with
    `pattern`, a deterministic picture with edges and gradients.
    `alpha` draws a subject (a box in the middle) on a transparent background
    ("real", RGBA) or on the key colour ("key", RGB)."""
    r, g, b = (seed * 67) % 256, (seed * 131) % 256, (seed * 29) % 256
    channels = 3
    if alpha in ("real", "key"):
        subject = (200, 60 + seed * 20 % 120, 40)  # reddish: never the green or magenta key
        if alpha == "real":
            channels, back, front = 4, bytes((0, 0, 0, 0)), bytes(subject + (255,))
        else:
            back, front = bytes(key), bytes(subject)
        x0, x1 = width // 4, width - width // 4
        rows = []
        for y in range(height):
            if height // 4 <= y < height - height // 4:
                rows.append(b"\x00" + back * x0 + front * (x1 - x0) + back * (width - x1))
            else:
                rows.append(b"\x00" + back * width)
        raw = b"".join(rows)
    elif pattern:
        raw = b"".join(pattern_rows(width, height, seed))
    elif noise:
        raw = b"".join(b"\x00" + os.urandom(3 * width) for _ in range(height))
    else:
        raw = (b"\x00" + bytes((r, g, b)) * width) * height

    def chunk(kind, data):
        body = kind + data
        return (
            struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6 if channels == 4 else 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def parse_exec_args(argv):
    opts = {
        "json": False,
        "skip_git": False,
        "images": [],
        "config": [],
        "sandbox": None,
        "cd": None,
        "profile": None,
        "prompt": None,
    }
    takes_value = {
        "-c",
        "--config",
        "-s",
        "--sandbox",
        "-C",
        "--cd",
        "-p",
        "--profile",
        "-m",
        "--model",
        "--color",
        "-o",
        "--output-last-message",
    }
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            opts["prompt"] = " ".join(argv[i + 1 :])
            break
        if a.startswith("--image="):
            opts["images"].append(a.split("=", 1)[1])
        elif a in ("-i", "--image"):
            # Like the real CLI: -i takes several values and swallows what follows.
            i += 1
            while i < len(argv) and not argv[i].startswith("-"):
                opts["images"].append(argv[i])
                i += 1
            continue
        elif a == "--json":
            opts["json"] = True
        elif a == "--skip-git-repo-check":
            opts["skip_git"] = True
        elif a in takes_value:
            i += 1
            if i >= len(argv):
                die(f"error: a value is required for '{a}'")
            key = {"-c": "config", "--config": "config"}.get(a)
            if key:
                opts["config"].append(argv[i])
            elif a in ("-s", "--sandbox"):
                opts["sandbox"] = argv[i]
            elif a in ("-C", "--cd"):
                opts["cd"] = argv[i]
            elif a in ("-p", "--profile"):
                opts["profile"] = argv[i]
        elif "=" in a and a.split("=", 1)[0] in takes_value:
            pass
        elif a.startswith("-"):
            pass  # flags we do not model (--ephemeral, --color=never, ...)
        else:
            opts["prompt"] = a
        i += 1
    return opts


def die(message, code=2):
    sys.stderr.write(message + "\n")
    sys.exit(code)


def directives(prompt):
    """key=value pairs of every `[[fake ...]]` block (no `]` inside one)."""
    found = {}
    prompt = prompt or ""
    at = prompt.find("[[fake ")
    while at >= 0:
        end = prompt.find("]", at + 7)
        if end < 0:
            break
        if prompt.startswith("]]", end):
            for pair in prompt[at + 7 : end].split():
                if "=" in pair:
                    k, v = pair.split("=", 1)
                    found[k.strip()] = v.strip()
        at = prompt.find("[[fake ", at + 1)
    return found


def candidate_of(prompt):
    """(N, M) of the first "candidate N of M" in the prompt, else None."""
    at = prompt.find("candidate ")
    while at >= 0:
        words = prompt[at + 10 : at + 64].split(" ", 2)
        if len(words) == 3 and words[0].isdigit() and words[1] == "of":
            total = words[2][: len(words[2]) - len(words[2].lstrip("0123456789"))]
            if total:
                return int(words[0]), int(total)
        at = prompt.find("candidate ", at + 1)
    return None


def _home_settings():
    path = os.path.join(
        os.environ.get("CODEX_HOME") or os.path.expanduser("~/.codex"), "fake_codex.json"
    )
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return {}
    import json

    try:
        return json.loads(text)
    except ValueError:
        return {}


def setting(d, key, default):
    if key in d:
        return d[key]
    return str(_home_settings().get(key, os.environ.get("FAKE_CODEX_" + key.upper(), default)))


def emit(event):
    sys.stdout.write(dumps(event) + "\n")
    sys.stdout.flush()


def _sha256_of(path):
    import hashlib

    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def record_pids(child_pid, images=(), shell_pid=None, prompt=""):
    piddir = os.environ.get("FAKE_CODEX_PIDDIR")
    if not piddir:
        return
    os.makedirs(piddir, exist_ok=True)
    info = {
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "sid": os.getsid(0),
        "child_pid": child_pid,
        "piddir": piddir,
        "shell_pid": shell_pid,
        "prompt_chars": len(prompt),
        "cwd": os.getcwd(),
        "started": time.time(),
        "images": [{"path": p, "sha256": _sha256_of(p)} for p in images],
    }
    tmp = os.path.join(piddir, f".{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(dumps(info))
    os.rename(tmp, os.path.join(piddir, f"{os.getpid()}.json"))


def wait_for_siblings(count, timeout=20.0):
    """The failing candidate fails only once every candidate of its request
    has started (each writes its record first), so a test of "a failed
    sibling stops the others" does not depend on how busy the machine is."""
    piddir = os.environ.get("FAKE_CODEX_PIDDIR")
    if not piddir:
        return
    import json

    request_dir = os.path.dirname(os.getcwd())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = 0
        for name in os.listdir(piddir):
            if name.endswith(".json"):
                try:
                    with open(os.path.join(piddir, name)) as f:
                        cwd = json.load(f).get("cwd", "")
                except (OSError, ValueError):
                    continue
                started += os.path.dirname(cwd) == request_dir
        if started >= count:
            return
        time.sleep(0.02)


def codex_home():
    return os.environ.get("CODEX_HOME") or os.path.join(os.path.expanduser("~"), ".codex")


def write_rollout(thread_id, items):
    seconds = time.time()
    now = time.localtime(seconds)
    day = os.path.join(
        codex_home(),
        "sessions",
        time.strftime("%Y", now),
        time.strftime("%m", now),
        time.strftime("%d", now),
    )
    os.makedirs(day, exist_ok=True)
    path = os.path.join(day, f"rollout-{time.strftime('%Y-%m-%dT%H-%M-%S', now)}-{thread_id}.jsonl")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", now) + ".%06d" % int(seconds % 1 * 1e6)
    with open(path, "w") as f:
        f.write(
            dumps(
                {
                    "timestamp": stamp,
                    "type": "session_meta",
                    "payload": {
                        "id": thread_id,
                        "cli_version": setting({}, "version", VERSION).split()[-1],
                    },
                }
            )
            + "\n"
        )
        for item in items:
            if item.get("type") == "Extension":
                # Measured: the image item sits inside an event_msg/item_completed line.
                line = {
                    "timestamp": stamp,
                    "type": "event_msg",
                    "payload": {"type": "item_completed", "thread_id": thread_id, "item": item},
                }
            elif item.get("type") == "image_generation_end":
                line = {"timestamp": stamp, "type": "event_msg", "payload": item}
            elif item.get("type") == "imageGeneration":
                line = {"method": "item/completed", "params": {"item": item, "threadId": thread_id}}
            else:
                line = {"timestamp": stamp, "type": "response_item", "payload": item}
            f.write(dumps(line) + "\n")


CHATTER = [0.0]  # reasoning lines a second while the turn runs (set from `chatter=N`)


def sleep_steps(total, steps):
    if CHATTER[0] <= 0:
        for _ in range(steps):
            time.sleep(total / steps)
        return
    # A stream of events, as a real turn streams its reasoning, written in
    # bursts every 10 ms: the server is always just receiving one when its
    # caller leaves.
    line = (
        dumps({"type": "item.started", "item": {"id": "item_r", "type": "reasoning", "text": ""}})
        + "\n"
    )
    burst = line * max(1, int(CHATTER[0] / 100))
    end = time.monotonic() + total
    while time.monotonic() < end:
        sys.stdout.write(burst)
        sys.stdout.flush()
        time.sleep(min(0.01, max(0.0, end - time.monotonic())))


def run_exec(argv):
    opts = parse_exec_args(argv)
    if not opts["skip_git"] and not os.path.isdir(os.path.join(os.getcwd(), ".git")):
        die("Not inside a trusted directory and --skip-git-repo-check was not specified.", 1)
    if opts["prompt"] == "-":
        opts["prompt"] = sys.stdin.buffer.read().decode("utf-8")
    elif stat.S_ISFIFO(os.fstat(0).st_mode):
        sys.stdin.read()  # the real CLI reads a piped stdin to EOF before it starts
    prompt = opts["prompt"] or ""
    d = directives(prompt)
    mode = setting(d, "mode", "ok")
    layout = setting(d, "layout", "generated")
    delay = float(setting(d, "delay", "0.05"))
    CHATTER[0] = float(setting(d, "chatter", "0"))
    width, height = (int(x) for x in setting(d, "size", "256x256").lower().split("x"))
    ignore_term = setting(d, "ignore_term", "0") == "1"
    m = candidate_of(prompt)
    candidate = m[0] if m else 1
    fail_candidate = setting(d, "fail_candidate", "")
    if fail_candidate:
        if int(fail_candidate) == candidate:
            mode, delay = "fail", 0.05  # fails fast while its siblings keep working
        elif mode == "fail":
            mode = "ok"

    if ignore_term:
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child_pid = None
    if setting(d, "child", "0") == "1" or setting(d, "shell", ""):
        import subprocess
    if setting(d, "child", "0") == "1":
        code = (
            "import signal,time\n"
            + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "")
            + "time.sleep(3600)\n"
        )
        child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL)
        child_pid = child.pid
    shell_pid = None
    if setting(d, "shell", ""):
        trap = "trap '' TERM; " if ignore_term else ""
        shell = subprocess.Popen(
            ["/bin/sh", "-c", f"{trap}exec sleep {float(setting(d, 'shell', '1'))}"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        shell_pid = shell.pid
    record_pids(child_pid, opts["images"], shell_pid, prompt)
    if fail_candidate and int(fail_candidate) == candidate and m:
        wait_for_siblings(m[1])

    thread_id = uuid4()
    if opts["json"]:
        # Measured on 0.169.0: with --json there is no header on stderr.
        sys.stderr.write("Reading additional input from stdin...\n")
    else:
        sys.stderr.write(
            "OpenAI Codex v0.169.0 (research preview)\n--------\nworkdir: "
            f"{opts['cd'] or os.getcwd()}\n"
            "model: gpt-5.4\nprovider: openai\napproval: never\nsandbox: "
            f"{opts['sandbox'] or 'read-only'}\n"
            f"session id: {thread_id}\n--------\n"
        )
    sys.stderr.flush()
    emit({"type": "thread.started", "thread_id": thread_id})
    # 0.169.0 starts every turn with this harmless warning item.
    emit(
        {
            "type": "item.completed",
            "item": {
                "id": "item_0",
                "type": "error",
                "message": "Model metadata for `gpt-5.4` not found. "
                "Defaulting to fallback metadata; this can degrade performance and cause issues.",
            },
        }
    )
    emit({"type": "turn.started"})
    sleep_steps(delay / 2, 5)

    if mode == "crash":
        sys.stderr.write("thread 'main' panicked\n")
        os._exit(101)
    if mode == "fail":
        sleep_steps(delay / 2, 5)
        msg = "stream disconnected before completion: upstream returned 500"
        emit({"type": "error", "message": msg})
        emit({"type": "turn.failed", "error": {"message": msg}})
        finish(child_pid, 1)

    emit(
        {
            "type": "item.completed",
            "item": {"id": "item_1", "type": "agent_message", "text": "Generating the image now."},
        }
    )
    call_id = "call_" + uuid4().replace("-", "")[:20]
    sleep_steps(delay / 2, 5)
    items = []
    reply = "Here is your image."
    tool_error = {
        "quota": (
            'image generation failed: http 429 Too Many Requests: Some("{\\"error\\": '
            '{\\"type\\": \\"usage_limit_reached\\", \\"message\\": \\"The usage limit '
            'has been reached\\", \\"resets_at\\": 1893456000, \\"resets_in_seconds\\": 3600}}")'
        ),
        "forbidden": "image generation failed: http 403 Forbidden: "
        'Some("{\\"error\\": \\"forbidden\\"}")',
        "moderation": (
            'image generation failed: http 400 Bad Request: Some("{\\"error\\": {\\"type\\": '
            '\\"image_generation_user_error\\", \\"code\\": \\"moderation_blocked\\", '
            '\\"param\\": null, \\"message\\": \\"Your request was rejected by the safety '
            'system.\\"}}")'
        ),
    }.get(mode)
    if tool_error:
        # Measured: exit 0, stdout as on success, the error only on stderr and
        # in the rollout (status failed, no savedPath, text in the tool output).
        sys.stderr.write(
            f"2026-11-21T05:42:06.514Z ERROR codex_core::tools::router: error={tool_error}\n"
        )
        items.append(
            {
                "type": "Extension",
                "kind": "image_gen.generation",
                "id": call_id,
                "status": "failed",
                "result": "",
                "failure": None,
            }
        )
        items.append({"type": "function_call_output", "call_id": call_id, "output": tool_error})
    elif mode == "noimage":
        reply = "I can't help with creating that image."
    else:
        wants_alpha = "transparent_background: true" in prompt
        alpha = setting(d, "alpha", "real" if wants_alpha else "")
        key = None
        if "uniform #" in prompt:
            import re

            key = re.search(r"uniform #([0-9a-fA-F]{6}) background", prompt)
        key = tuple(bytes.fromhex(key.group(1))) if key else (0, 255, 0)
        png = png_bytes(
            width,
            height,
            candidate,
            noise=setting(d, "noise", "0") == "1" or alpha == "opaque",
            pattern=setting(d, "pattern", "0") == "1",
            alpha=alpha if wants_alpha else None,
            key=key,
        )
        revised = "A rendered scene for candidate %d" % candidate
        home = codex_home()
        if layout in ("generated", "legacy-ig"):
            folder = os.path.join(home, "generated_images", thread_id)
            os.makedirs(folder, exist_ok=True)
            name = (
                call_id if layout == "generated" else "ig_" + uuid4().replace("-", "")[:12]
            ) + ".png"
            saved = os.path.join(folder, name)
            with open(saved, "wb") as f:
                f.write(png)
            if layout == "generated":
                items.append(
                    {
                        "type": "Extension",
                        "kind": "image_gen.generation",
                        "id": call_id,
                        "status": "completed",
                        "savedPath": saved,
                        "revisedPrompt": revised,
                        "result": b64(png),
                        "failure": None,
                    }
                )
        elif layout in ("rollout-saved", "legacy-end", "app-server", "unknown"):
            folder = os.path.join(home, "elsewhere")
            os.makedirs(folder, exist_ok=True)
            saved = os.path.join(folder, call_id + ".png")
            with open(saved, "wb") as f:
                f.write(png)
            items.append(
                {
                    "legacy-end": {
                        "type": "image_generation_end",
                        "call_id": call_id,
                        "status": "generating",
                        "revised_prompt": revised,
                        "result": "",
                        "saved_path": saved,
                    },
                    "app-server": {
                        "type": "imageGeneration",
                        "id": call_id,
                        "status": "completed",
                        "revisedPrompt": revised,
                        "savedPath": saved,
                    },
                    "unknown": {
                        "type": "Extension",
                        "kind": "image_gen.generation.v2",
                        "id": call_id,
                        "status": "completed",
                        "image": {"path": saved},
                    },
                }.get(layout)
                or {
                    "type": "Extension",
                    "kind": "image_gen.generation",
                    "id": call_id,
                    "status": "completed",
                    "savedPath": saved,
                    "revisedPrompt": revised,
                }
            )
        elif layout == "rollout-result":
            items.append(
                {
                    "type": "Extension",
                    "kind": "image_gen.generation",
                    "id": call_id,
                    "status": "completed",
                    "revisedPrompt": revised,
                    "result": b64(png),
                }
            )
        elif layout == "legacy-call":
            items.append(
                {
                    "type": "image_generation_call",
                    "id": "ig_1",
                    "status": "completed",
                    "revised_prompt": revised,
                    "result": b64(png),
                }
            )
    write_rollout(thread_id, items)
    emit(
        {"type": "item.completed", "item": {"id": "item_2", "type": "agent_message", "text": reply}}
    )
    emit(
        {
            "type": "turn.completed",
            "usage": {"input_tokens": 1200, "cached_input_tokens": 0, "output_tokens": 40},
        }
    )
    if not opts["json"]:
        sys.stderr.write("tokens used\n1,240\n")
    finish(child_pid, 0)


def finish(child_pid, code):
    if child_pid:
        try:
            os.kill(child_pid, 9)  # SIGKILL
            os.waitpid(child_pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # nothing left to clean up: skip the interpreter's


def main(argv):
    if argv[:1] in (["--version"], ["-V"]):
        print(setting({}, "version", VERSION))
        return 0
    if argv[:2] == ["login", "status"]:
        # A probe as slow as one on a busy machine (seconds, not milliseconds).
        time.sleep(float(os.environ.get("FAKE_CODEX_PROBE_DELAY", "0") or 0))
        if os.path.exists(os.path.join(codex_home(), "auth.json")):
            print("Logged in using ChatGPT")
            return 0
        print("Not logged in")
        return 1
    if argv[:1] == ["exec"]:
        run_exec(argv[1:])
        return 0
    die(f"fake codex: unsupported arguments {argv!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
