"""The README's table of contents lists its sections in order, and every link within it lands."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def prose() -> str:
    """The README without its code blocks (a `#` comment in a shell block is no heading)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_table_of_contents_lists_every_section_in_order() -> None:
    text = prose()
    contents = text.split("\n## Contents\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^ *- \[(.*?)\]\(#(.*?)\)$", contents, re.M)
    sections = re.findall(r"^#{2,3} (.*)$", text, re.M)
    assert [title for title, _ in listed] == [s for s in sections if s != "Contents"]
    assert all(link == anchor(title) for title, link in listed)


def test_every_link_within_the_readme_leads_to_a_heading() -> None:
    text = prose()
    anchors = {anchor(heading) for heading in re.findall(r"^#+ (.*)$", text, re.M)}
    links = re.findall(r"\]\(#([^)]*)\)", text)
    assert links
    assert sorted({link for link in links if link not in anchors}) == []
