"""The README's links within itself, and its contents list, against its headings as GitHub anchors them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The Markdown files whose in-page links are checked.
DOCUMENTS = [README, *sorted((ROOT / "k8s").rglob("README.md")), ROOT / "monitoring" / "README.md"]
LINK = re.compile(r"\]\(#([^)\s]+)\)")


def headings(text: str) -> list[tuple[int, str]]:
    """Each heading's level and title, outside code blocks."""
    found, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (match := re.match(r"^(#{1,6}) (.+?)\s*$", line)):
            found.append((len(match[1]), match[2]))
    return found


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for _, title in headings(text):
        base = anchor(title)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")  # a repeated heading gets -1, -2, ...
        seen[base] = count + 1
    return found


def test_anchors_are_githubs() -> None:
    assert anchor("Batch scoring (`mlp score`)") == "batch-scoring-mlp-score"
    assert anchor("API keys: who may ask, and who asked") == "api-keys-who-may-ask-and-who-asked"
    assert anchors("## Cost\n## Cost\n") == {"cost", "cost-1"}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_within_a_document_names_one_of_its_headings(document: Path) -> None:
    text = document.read_text()
    broken = sorted(set(LINK.findall(text)) - anchors(text))
    assert not broken, f"{document.relative_to(ROOT)}: no heading for {broken}"


def test_the_contents_list_every_section_in_order() -> None:
    text = README.read_text()
    contents = text.split("## Contents\n", 1)[1].split("\n## ", 1)[0]
    listed = LINK.findall(contents)
    sections = [anchor(title) for level, title in headings(text) if level in (2, 3) and title != "Contents"]
    assert listed == sections
