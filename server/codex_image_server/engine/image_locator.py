"""Finding the image a codex run made, by its thread id.

Codex versions disagree on where the image lands, so three strategies are
tried in order: the file under $CODEX_HOME/generated_images/<thread_id>/
(0.169.0, and older `ig_*.png` names), then the rollout log's
`image_gen.generation` item (`savedPath`, else base64 `result`), then the
older `image_generation_call` item's base64 `result` (0.140-0.144).
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import time
from pathlib import Path

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
    for day in {time.strftime("%Y/%m/%d", time.localtime(now)), time.strftime("%Y/%m/%d", time.gmtime(now))}:
        folder = os.path.join(sessions, day)
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        matches += [os.path.join(folder, n) for n in names if n.endswith(suffix) and n.startswith("rollout-")]
    return Path(max(matches)) if matches else None


def find_rollout(home: Path, thread_id: str) -> Path | None:
    """A run's rollout, looked for where it almost always is (today's
    folder: the run just ended) before the walk of every day's folder, which
    on a long-used CODEX_HOME reads hundreds of them."""
    return todays_rollout_path(home, thread_id, time.time()) or rollout_path(home, thread_id)


def _walk(obj):
    """Every dict nested anywhere in a rollout line (layouts differ by version)."""
    stack = [obj]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            yield cur
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)


def read_rollout(path: Path | None) -> RolloutFacts:
    facts = RolloutFacts()
    if path is None:
        return facts
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return facts
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        for item in _walk(record):
            revised = item.get("revisedPrompt") or item.get("revised_prompt")
            if item.get("kind") == "image_gen.generation":
                if item.get("status") == "failed":
                    detail = item.get("failure") or item.get("error")
                    if detail:
                        facts.failures.append(str(detail))
                    continue
                if item.get("savedPath"):
                    facts.saved_paths.append(str(item["savedPath"]))
                if item.get("result"):
                    facts.results.append(str(item["result"]))
            elif item.get("type") == "image_generation_call" and item.get("result"):
                facts.legacy_results.append(str(item["result"]))
            elif item.get("type") == "function_call_output" and _is_tool_failure(item.get("output")):
                # 0.169.0 puts an Images API error only in the tool's output.
                facts.failures.append(item["output"])
                continue
            else:
                continue
            if revised:
                facts.revised_prompt = str(revised)
    return facts


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
    for source, results in (("rollout.result", facts.results), ("rollout.image_generation_call", facts.legacy_results)):
        for text in reversed(results):
            data = _b64(text)
            if data:
                return Found(data, source, facts.revised_prompt)
    return None
