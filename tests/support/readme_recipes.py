"""Recipes the README gives as shell blocks, taken from it as written."""

from __future__ import annotations

import re

from tests.support.paths import ROOT


def readme_recipe() -> str:
    """The shell block of the README's "A local endpoint" section, as written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## A local endpoint\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    return block
