"""Two habits of the code, checked from the source.

One logging idiom: our modules log through `runtime/logs.py`'s
`log(event, **fields)`, never a `logging` logger of their own, so every line
has the one shape and passes the one check that keeps keys, prompts and image
bytes out. Only runtime/logs.py imports `logging` (it routes the libraries'
loggers, aiohttp's access log among them, into the same JSON lines).

Comments say why, not which issue: a comment or docstring that cites an
issue number (the word and a number, or a hash
and a number) sends the reader to a tracker for what one
sentence could have said; write the reason instead.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from pathlib import Path

from tests.layout.imports import SERVER, modules

REPO = SERVER.parent
LOGGING_HOME = SERVER / "codex_image_server" / "runtime" / "logs.py"
CITATION = re.compile(r"\bissues?\s+#?\d+|(?<![\w&/#])#\d+\b", re.IGNORECASE)


def logging_imports(source: str) -> list[int]:
    """Lines that import the `logging` module (or a part of it)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "logging" for a in node.names
        ):
            lines.append(node.lineno)
        elif (
            isinstance(node, ast.ImportFrom)
            and not node.level
            and (node.module or "").split(".")[0] == "logging"
        ):
            lines.append(node.lineno)
    return lines


def test_only_the_logs_module_uses_logging():
    found = [
        f"{path.relative_to(REPO)}:{line}"
        for path in modules().values()
        if path != LOGGING_HOME
        for line in logging_imports(path.read_text())
    ]
    assert found == [], (
        "log through codex_image_server.runtime.logs.log(event, **fields) instead:\n"
        + "\n".join(found)
    )


def test_the_logging_rule_can_fail():
    assert logging_imports("import logging\nlog = logging.getLogger('x')\n") == [1]
    assert logging_imports("def f():\n    from logging import getLogger\n") == [2]
    assert (
        logging_imports("from codex_image_server.runtime.logs import log\nimport logging_extras\n")
        == []
    )


def python_comments(source: str) -> list[tuple[int, str]]:
    """Every comment and docstring of a Python module, with its line."""
    found = [
        (tok.start[0], tok.string)
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                found.append((body[0].lineno, body[0].value.value))
    return found


def hash_comments(text: str) -> list[tuple[int, str]]:
    """The comments of a Makefile: from a # at a line's start or after a space."""
    return [
        (n, line[line.index("#") :])
        for n, line in enumerate(text.splitlines(), 1)
        if line.lstrip().startswith("#") or " #" in line
    ]


def citations(comments: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return sorted(
        (line, match.group(0)) for line, text in comments for match in CITATION.finditer(text)
    )


def _python_files() -> list[Path]:
    """Our Python: server/, the Python client, tests/ and bench/; generated stubs aside."""
    roots = [
        SERVER,
        REPO / "clients" / "python" / "codex_image_client",
        REPO / "tests",
        REPO / "bench",
    ]
    found = []
    for root in roots:
        # os.walk, not rglob: it does not follow the node_modules symlinks.
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in ("node_modules", "__pycache__")]
            found += [Path(folder) / f for f in files if f.endswith(".py") and "_pb2" not in f]
    return sorted(found)


def test_comments_cite_no_issue_numbers():
    found = [
        f"{path.relative_to(REPO)}:{line}: {cited}"
        for path in _python_files()
        for line, cited in citations(python_comments(path.read_text()))
    ]
    for path in [REPO / "Makefile", *sorted((REPO / "mk").glob("*.mk"))]:
        found += [
            f"{path.relative_to(REPO)}:{line}: {cited}"
            for line, cited in citations(hash_comments(path.read_text()))
        ]
    assert found == [], "say why instead of citing an issue:\n" + "\n".join(found)


def test_the_citation_rule_can_fail():
    source = (
        '"""Sizes (issue 8)."""\nX = "#5"  # see #24\n\ndef f():\n    """Issue 21\'s figure."""\n'
    )
    assert citations(python_comments(source)) == [(1, "issue 8"), (2, "#24"), (5, "Issue 21")]
    assert citations(hash_comments("# Tools (issue 9)\nA := 1 # item #3\nB := '#fff'\n")) == [
        (1, "issue 9"),
        (2, "#3"),
    ]
    # Not citations: strings, colours, HTML entities, URL fragments, a count of issues.
    assert citations(python_comments('X = "issue 3"  # &#39; and /page#12, 3 issues\n')) == []
