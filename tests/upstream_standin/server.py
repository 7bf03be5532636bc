"""The upstream stand-in: a local OpenAI-like HTTP server for the real codex.

Answers what codex 0.169.0 asks of a `wire_api = "responses"` provider:
`POST /v1/responses` (SSE), `POST /v1/images/generations`,
`POST /v1/images/edits` and `GET /v1/models`. Everything received and
returned is recorded in `standin.records` for the tests to assert on.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import select
import socket
import threading
import time

from . import pictures, sse
from .records import Recorder
from .switches import Switches, parse_directive

# Codex wraps each `--image` it attaches in this text (see codex-notes.md).
_ATTACHED_PATH_RE = re.compile(r'<image name=\[Image #\d+\] path="([^"]+)">')
_MAX_REFERENCES = 5  # the imagegen tool's own limit


def _user_texts(body: dict) -> list[str]:
    texts = []
    for item in body.get("input") or []:
        if item.get("type", "message") == "message" and item.get("role") == "user":
            for part in item.get("content") or []:
                if part.get("type") == "input_text":
                    texts.append(part.get("text", ""))
    return texts


_KEY_RE = re.compile(r"#([0-9a-fA-F]{6})")
# `[shell:COMMAND]` in the prompt: answer as a model talked into running a
# command would (call `exec_command`, then repeat what it printed), to show
# what the service lets reach a caller.
_SHELL_RE = re.compile(r"\[shell:([^\]]*)\]")
SHELL_TOOL = "exec_command"


def _shell_command(texts: list[str]) -> str | None:
    for text in texts:
        found = _SHELL_RE.search(text)
        if found:
            return found.group(1).strip()
    return None


def _prompt_for_tool(texts: list[str]) -> str:
    """The user's own words: the last user text that is not codex's framing."""
    for text in reversed(texts):
        stripped = text.strip()
        if not stripped or stripped.startswith("<") or stripped == "</image>":
            continue
        return stripped
    return "an image"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as codex's HTTP client expects
    standin: UpstreamStandin  # set on the subclass made per server

    # --- plumbing -------------------------------------------------------
    def log_message(self, fmt, *args):  # stdlib access log would print paths only; keep quiet
        pass

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _client_closed(self) -> bool:
        """True when codex has closed (or reset) this connection."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _wait(self, seconds: float, record: dict) -> bool:
        """Sleep while watching the socket; False (and recorded) if codex hung up."""
        deadline = time.monotonic() + seconds
        while True:
            if self._client_closed():
                self._note_closed(record)
                return False
            left = deadline - time.monotonic()
            if left <= 0 or self.standin._stopping.is_set():
                return not self.standin._stopping.is_set()
            time.sleep(min(left, 0.05))

    def _note_closed(self, record: dict) -> None:
        self.close_connection = True
        if not record.get("client_closed"):
            self.standin.records.update(record, client_closed=True)
            self.standin.records.add(
                "client_closed", request_seq=record["seq"], path=record["path"]
            )
            self.standin._log(f"client closed connection during {record['kind']} #{record['seq']}")

    def _headers_summary(self) -> dict:
        # No secrets in records: the Authorization value is reduced to its presence.
        keep = {}
        for name, value in self.headers.items():
            low = name.lower()
            keep[low] = "<present>" if low == "authorization" else value
        return keep

    # --- routes ---------------------------------------------------------
    def do_GET(self):
        if self.path.rstrip("/").split("?")[0].endswith("/models"):
            self.standin.records.add("models", path=self.path, headers=self._headers_summary())
            self._send_json(200, {"object": "list", "data": [], "models": []})
            return
        self.standin.records.add("other", method="GET", path=self.path)
        self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self):
        raw = self._read_body()
        path = self.path.split("?")[0].rstrip("/")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if body is None or path.endswith("/responses") is False and "/images/" not in path:
            self.standin.records.add(
                "other",
                method="POST",
                path=self.path,
                body_bytes=len(raw),
                headers=self._headers_summary(),
            )
            self._send_json(404 if body is not None else 400, {"error": {"message": "unsupported"}})
            return
        switches = self.standin.effective_switches(raw.decode("utf-8", "replace"))
        if path.endswith("/responses"):
            self._responses(body, switches)
        elif path.endswith("/images/generations"):
            self._images("images.generations", body, switches)
        elif path.endswith("/images/edits"):
            self._images("images.edits", body, switches)
        else:
            self.standin.records.add("other", method="POST", path=self.path)
            self._send_json(404, {"error": {"message": "unsupported"}})

    # --- Responses API --------------------------------------------------
    def _responses(self, body: dict, sw: Switches) -> None:
        items = body.get("input") or []
        after_tool = bool(items) and items[-1].get("type") == "function_call_output"
        texts = _user_texts(body)
        attached = [p for t in texts for p in _ATTACHED_PATH_RE.findall(t)]
        tools = [t.get("name") or t.get("type") for t in body.get("tools") or []]
        record = self.standin.records.add(
            "responses",
            path=self.path,
            headers=self._headers_summary(),
            body=body,
            after_tool_output=after_tool,
            attached_paths=attached,
            tools=tools,
            switches=sw,
            client_closed=False,
        )

        if sw.responses_status:
            status = sw.responses_status
            payload = (
                sse.quota_body(int(time.time()) + 3600)
                if status == 429
                else {
                    "error": {
                        "message": f"stand-in: responses refused with {status}",
                        "type": "invalid_request_error",
                    }
                }
            )
            self.standin.records.update(record, answer=f"http {status}")
            self._send_json(status, payload)
            return

        shell = _shell_command(texts)
        if after_tool and shell is not None:
            output = items[-1].get("output")
            text = output if isinstance(output, str) else json.dumps(output)
            self.standin.records.update(record, shell_output=text)
            answer, events = (
                "shell_echo",
                sse.completed_stream([sse.message(f"The command printed: {text}")]),
            )
        elif shell is not None:
            call = sse.function_call(SHELL_TOOL, {"cmd": shell})
            answer, events = "shell_call", sse.completed_stream([call])
            self.standin.records.update(record, call_id=call["call_id"])
        elif after_tool:
            # Deliberately vague after a failed tool call: the detail must be
            # taken from codex's own records (stderr / rollout), not from
            # whatever a model chooses to say.
            output = items[-1].get("output")
            failed = isinstance(output, str) and "failed" in output
            text = "The image could not be generated." if failed else "Here is your image."
            answer, events = (
                ("final_after_failure" if failed else "final"),
                sse.completed_stream([sse.message(text)]),
            )
        elif sw.fail_response:
            answer, events = "failed", sse.failed_stream("stand-in: response.failed as requested")
        elif sw.no_tool:
            answer, events = (
                "no_tool",
                sse.completed_stream(
                    [sse.message("I can't make that image, so I did not call the tool.")]
                ),
            )
        else:
            # Like a model following the instructions: the service asks for
            # `transparent_background: true` in words.
            transparent = any("transparent_background: true" in t for t in texts)
            call = sse.imagegen_call(
                _prompt_for_tool(texts), attached[:_MAX_REFERENCES], transparent
            )
            answer, events = (
                "tool_call",
                sse.completed_stream([sse.message("Generating the image now."), call]),
            )
            self.standin.records.update(
                record, call_id=call["call_id"], referenced_image_paths=attached[:_MAX_REFERENCES]
            )
        self.standin.records.update(record, answer=answer)
        self.standin._log(
            f"responses #{record['seq']}: {answer}"
            f"{' (after tool output)' if after_tool else ''}, {len(attached)} attached image(s)"
        )

        # Close-delimited SSE: simplest framing; codex reads until EOF.
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.flush()
            delay = sw.slow + sw.turn_slow + (sw.closing_slow if after_tool else 0.0)
            if delay and not self._wait(delay, record):
                return
            for index, (event, data) in enumerate(events):
                if index and sw.slow_within and not self._wait(sw.slow_within, record):
                    return
                self.wfile.write(sse.encode(event, data))
                self.wfile.flush()
            self.standin.records.update(record, finished=True)
        except (BrokenPipeError, ConnectionResetError):
            self._note_closed(record)

    # --- Images API -----------------------------------------------------
    def _images(self, kind: str, body: dict, sw: Switches) -> None:
        references = []
        for entry in body.get("images") or []:
            url = entry.get("image_url") if isinstance(entry, dict) else None
            if isinstance(url, str) and url.startswith("data:"):
                mime, data = pictures.decode_data_url(url)
                references.append(
                    {
                        "mime": mime,
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "byte_size": len(data),
                        "dimensions": pictures.dimensions(data),
                        "bytes": data,
                    }
                )
        # Keep the body without the (possibly huge) data URLs.
        slim = dict(body)
        if "images" in body:
            slim["images"] = [
                f"<{r['mime']} {r['byte_size']} bytes sha256={r['sha256'][:12]}>"
                for r in references
            ]
        record = self.standin.records.add(
            kind,
            path=self.path,
            headers=self._headers_summary(),
            body=slim,
            references=references,
            switches=sw,
            returned=[],
            client_closed=False,
        )
        self.standin._log(
            f"{kind} #{record['seq']}: size={body.get('size')!r} quality={body.get('quality')!r} "
            f"{len(references)} reference(s) "
            + " ".join(f"{r['dimensions']}:{r['sha256'][:12]}" for r in references)
        )

        if sw.images_slow and not self._wait(sw.images_slow, record):
            return
        if sw.moderation:
            self.standin.records.update(record, answer="http 400 moderation_blocked")
            self._send_json(400, sse.moderation_body())
            return
        if sw.images_status:
            status = sw.images_status
            payload = (
                sse.quota_body(int(time.time()) + 3600)
                if status == 429
                else {
                    "error": {
                        "message": f"stand-in: images refused with {status}",
                        "type": "invalid_request_error",
                        "code": "forbidden",
                    }
                }
            )
            self.standin.records.update(record, answer=f"http {status}")
            self._send_json(status, payload)
            return
        width, height = pictures.parse_size(body.get("size"), sw.default_size)
        if body.get("background") == "transparent":
            key = _KEY_RE.search(str(body.get("prompt", "")))
            key_rgb = tuple(bytes.fromhex(key.group(1))) if key else (0, 255, 0)
            png = pictures.make_subject(width, height, key_rgb if sw.alpha_lost else (0, 0, 0, 0))
        else:
            png = pictures.make_png(width, height, sw.noise)
        digest = hashlib.sha256(png).hexdigest()
        self.standin.records.update(
            record,
            answer="image",
            returned=[
                {
                    "sha256": digest,
                    "byte_size": len(png),
                    "dimensions": (width, height),
                    "bytes": png,
                }
            ],
        )
        self.standin._log(
            f"{kind} #{record['seq']}: returned {width}x{height} sha256={digest[:12]}"
        )
        try:
            self._send_json(
                200,
                {
                    "created": int(time.time()),
                    "data": [
                        {
                            "b64_json": base64.b64encode(png).decode(),
                            "revised_prompt": "stand-in revised prompt",
                        }
                    ],
                },
            )
        except (BrokenPipeError, ConnectionResetError):
            self._note_closed(record)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class UpstreamStandin:
    """Start with `start()` (or as a context manager); `base_url` ends in /v1.

    Switch defaults are keyword arguments (see `Switches`); `set(...)`
    changes them at runtime; a `[[upstream: ...]]` directive in the prompt
    overrides both for that request.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, verbose: bool = False, **switches):
        self._host, self._port = host, port
        self._verbose = verbose
        self._defaults = Switches().merged(**switches)
        self._switches = self._defaults
        self._switch_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.records = Recorder()

    # --- lifecycle ------------------------------------------------------
    def start(self) -> UpstreamStandin:
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = _Server((self._host, self._port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name="upstream-standin",
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a delay
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    # --- switches -------------------------------------------------------
    def set(self, **changes) -> None:
        with self._switch_lock:
            self._switches = self._switches.merged(**changes)

    def reset_switches(self) -> None:
        with self._switch_lock:
            self._switches = self._defaults

    def effective_switches(self, request_text: str) -> Switches:
        with self._switch_lock:
            current = self._switches
        return current.merged(**parse_directive(request_text))

    # --- queries for tests ---------------------------------------------
    def images_returned(self) -> list[dict]:
        return [
            img
            for r in self.records.all()
            if r["kind"].startswith("images.")
            for img in r["returned"]
        ]

    def references_received(self) -> list[dict]:
        return [ref for r in self.records.all("images.edits") for ref in r["references"]]

    def closed_connections(self) -> list[dict]:
        return self.records.all("client_closed")

    def _log(self, line: str) -> None:
        if self._verbose:
            print(f"[upstream-standin] {line}", flush=True)
