"""The commands the README and docs/ mark to be run after the demo (``RUN_MARK`` before a
``bash`` block), in reading order: README.md, then the docs pages in the order the README's
documentation table links them. tests/pipelines/test_demo.py runs them as written."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_MARK = "<!-- run after the demo by tests/pipelines/test_demo.py -->"


def linked_pages() -> list[str]:
    """The docs pages the README links, first link first."""
    return list(dict.fromkeys(re.findall(r"\]\((docs/[\w-]+\.md)\)", (REPO / "README.md").read_text())))


def shell_commands(block: str) -> list[str]:
    """One entry per command of a bash block: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", textwrap.dedent(block))
    lines = [re.sub(r"(^|\s+)#.*$", "", line) for line in joined.splitlines()]
    return [" ".join(line.split()) for line in lines if line.strip()]


def documented_demo_commands() -> list[tuple[str, str]]:
    """``(page, command)`` of every marked block's commands, in reading order."""
    out = []
    for page in ["README.md", *linked_pages()]:
        for block in re.findall(re.escape(RUN_MARK) + r"\n[ \t]*```bash\n(.*?)^[ \t]*```", (REPO / page).read_text(), re.S | re.M):
            out += [(page, command) for command in shell_commands(block)]
    return out
