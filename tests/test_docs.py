"""The README is a front page that links every docs page, every relative link and anchor in the
docs resolves, and the commands marked to run after the demo are what tests/pipelines/test_demo.py
runs (it executes them; here: that they are found and are `handdiff` commands)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.documented import RUN_MARK, documented_demo_commands, linked_pages

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_is_a_front_page_that_links_every_docs_page():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    assert set(linked_pages()) == {f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")}


def test_every_relative_link_and_anchor_resolves():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and file.suffix == ".md":
                anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", file.read_text(), re.M)}
                if anchor not in anchors:
                    broken.append(f"{page.name}: {target} (no heading {anchor!r})")
    assert not broken, broken


def test_the_commands_to_run_after_the_demo_are_found_in_reading_order():
    commands = documented_demo_commands()
    marks = sum(page.read_text().count(RUN_MARK) for page in PAGES)
    assert marks >= 5 and len(commands) >= marks
    assert all(command.startswith("handdiff ") and "--config pipelines/configs/" in command for _, command in commands)
    pages = [page for page, _ in commands]
    assert pages[0] == "README.md" and pages == sorted(pages, key=["README.md", *linked_pages()].index)
    assert not any("#" in command for _, command in commands)  # comments are not part of what runs
