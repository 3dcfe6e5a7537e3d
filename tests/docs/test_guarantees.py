"""The snippets of `docs/guarantees.md`: each Python block marked `<!-- test: run -->` runs against
the embedded broker (its `url` a fresh vhost), and each marked `<!-- test: excerpt PATH -->` is
word for word in that file of the repository, so the guide cannot drift from the example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guarantees.md"
MARKED_BLOCK = re.compile(r"<!-- test: (run|excerpt) ?(\S*) -->\n```python\n(.*?)```\n", re.DOTALL)


def snippets(kind: str) -> list:
    """(first line in the guide, code, excerpt's path) of each block marked `kind`."""
    text = GUIDE.read_text()
    found = []
    for match in MARKED_BLOCK.finditer(text):
        if match.group(1) == kind:
            line = text.count("\n", 0, match.start(3)) + 1
            found.append(pytest.param(line, match.group(3), match.group(2), id=f"line-{line}"))
    return found


def test_the_guide_has_both_kinds_of_snippets():
    assert len(snippets("run")) >= 4 and len(snippets("excerpt")) >= 2


@pytest.mark.parametrize(("line", "code", "path"), snippets("run"))
def test_snippet_runs(line, code, path, amqp_url):
    # Padded so that a traceback names the guide's own line numbers.
    exec(compile("\n" * (line - 1) + code, str(GUIDE), "exec"), {"url": amqp_url})


@pytest.mark.parametrize(("line", "code", "path"), snippets("excerpt"))
def test_excerpt_is_in_its_file(line, code, path):
    assert code in (ROOT / path).read_text(), f"the snippet at line {line} of the guide is not in {path}"
