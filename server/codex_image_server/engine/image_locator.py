"""Finding the image a codex run made, by its thread id.

Codex versions disagree on where the image lands, so three strategies are
tried in order: the file under $CODEX_HOME/generated_images/<thread_id>/
(0.169.0-0.171.0, and older `ig_*.png` names), then the rollout's image items
in any known shape (image_shapes.py: `savedPath`/`saved_path`, else base64
`result`), then the legacy `image_generation_call` item's base64 `result`
(0.140-0.144). A rollout that shows an image in no known shape is recorded
as such (`RolloutFacts.unsupported`), so the run fails as CODEX_UNSUPPORTED.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import time
from pathlib import Path

from codex_image_server.engine import image_shapes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


@dataclasses.dataclass
class Found:
    data: bytes
    source: str  # which strategy found it, for logs
    revised_prompt: str = ""


@dataclasses.dataclass
class RolloutFacts:
    saved_paths: list[str] = dataclasses.field(default_factory=list)
    results: list[str] = dataclasses.field(default_factory=list)
    legacy_results: list[str] = dataclasses.field(default_factory=list)
    revised_prompt: str = ""
    failures: list[str] = dataclasses.field(default_factory=list)
    # Signs of an image in a shape we cannot read (what and where, for the error).
    unsupported: list[str] = dataclasses.field(default_factory=list)
    # The codex that wrote the rollout (its session_meta `cli_version`).
    cli_version: str = ""


def codex_home(env: dict[str, str]) -> Path:
    return Path(env.get("CODEX_HOME") or os.path.join(os.path.expanduser("~"), ".codex"))


def rollout_path(home: Path, thread_id: str) -> Path | None:
    matches = sorted(home.glob(f"sessions/*/*/*/rollout-*-{thread_id}.jsonl"))
    return matches[-1] if matches else None


def todays_rollout_path(home: Path, thread_id: str, now: float) -> Path | None:
    """`rollout_path`, looking only in the day folders of `now` (local and
    UTC): a listing or two instead of a walk of every day's folder, cheap
    enough to poll. A session begun on another day is `rollout_path`'s."""
    suffix = f"-{thread_id}.jsonl"
    sessions = os.path.join(home, "sessions")
    matches = []
    for day in {
        time.strftime("%Y/%m/%d", time.localtime(now)),
        time.strftime("%Y/%m/%d", time.gmtime(now)),
    }:
        folder = os.path.join(sessions, day)
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        matches += [
            os.path.join(folder, n)
            for n in names
            if n.endswith(suffix) and n.startswith("rollout-")
        ]
    return Path(max(matches)) if matches else None


def find_rollout(home: Path, thread_id: str) -> Path | None:
    """A run's rollout, looked for where it almost always is (today's
    folder: the run just ended) before the walk of every day's folder, which
    on a long-used CODEX_HOME reads hundreds of them."""
    return todays_rollout_path(home, thread_id, time.time()) or rollout_path(home, thread_id)


def read_rollout(path: Path | None) -> RolloutFacts:
    facts = RolloutFacts()
    if path is None:
        return facts
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return facts
    image_calls: set[str] = set()
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        _absorb(facts, record, image_calls)
    if facts.saved_paths or facts.results or facts.legacy_results:
        # A known item holds the image; the tool output that echoes it back
        # to the model is no sign of another shape.
        facts.unsupported.clear()
    return facts


def _absorb(facts: RolloutFacts, record, image_calls: set[str]) -> None:
    if isinstance(record, dict) and record.get("type") == "session_meta" and not facts.cli_version:
        payload = record.get("payload")
        facts.cli_version = (
            str(payload.get("cli_version") or "") if isinstance(payload, dict) else ""
        )
    for node in image_shapes.walk(record):
        if call := image_shapes.image_call_id(node):
            image_calls.add(call)
        item = image_shapes.item_of(node)
        if item is None:
            if node.get("type") == "function_call_output" and _is_tool_failure(node.get("output")):
                # 0.169.0 puts an Images API error only in the tool's output.
                facts.failures.append(node["output"])
            elif sign := image_shapes.unknown_image(node, image_calls):
                facts.unsupported.append(sign)
            continue
        if item.failed:
            if item.failure:
                facts.failures.append(item.failure)
            continue
        if item.unreachable:
            facts.unsupported.append(
                f"a completed {item.shape} item with neither a saved path nor a result"
            )
            continue
        if not item.usable:
            continue
        if item.saved_path:
            facts.saved_paths.append(item.saved_path)
        if item.result:
            (facts.legacy_results if item.shape == image_shapes.LEGACY else facts.results).append(
                item.result
            )
        if item.revised_prompt:
            facts.revised_prompt = item.revised_prompt


def _is_tool_failure(output) -> bool:
    return isinstance(output, str) and output.startswith("image generation failed")


def _newest_image(folder: Path) -> Path | None:
    try:
        files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    except OSError:
        return None
    return max(files, key=lambda p: p.stat().st_mtime_ns) if files else None


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return None


def locate(home: Path, thread_id: str, facts: RolloutFacts) -> Found | None:
    if not thread_id:
        return None
    newest = _newest_image(home / "generated_images" / thread_id)
    if newest is not None:
        return Found(newest.read_bytes(), "generated_images", facts.revised_prompt)
    for saved in reversed(facts.saved_paths):
        try:
            return Found(Path(saved).read_bytes(), "rollout.savedPath", facts.revised_prompt)
        except OSError:
            continue
    for source, results in (
        ("rollout.result", facts.results),
        ("rollout.image_generation_call", facts.legacy_results),
    ):
        for text in reversed(results):
            data = _b64(text)
            if data:
                return Found(data, source, facts.revised_prompt)
    return None
