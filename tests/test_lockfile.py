"""The image's hash-locked requirements are current: made from pyproject.toml as it is now
(`make lock` stamps each with a digest of the requirements it was made from), every pin
satisfying what pyproject.toml asks, and every pin carrying its hashes."""

from __future__ import annotations

import re

import pytest
from packaging.requirements import Requirement

from tests.support import lockfile


@pytest.mark.parametrize("lock", sorted(lockfile.SOURCES))
def test_the_lock_was_made_from_pyproject_as_it_is(lock: str) -> None:
    first = (lockfile.FOLDER / lock).read_text().splitlines(keepends=True)[0]
    assert first == lockfile.stamp_line(lock), f"requirements/{lock} is stale: run `make lock`"


@pytest.mark.parametrize("lock", sorted(lockfile.SOURCES))
def test_every_requirement_is_pinned_within_its_range(lock: str) -> None:
    pins = lockfile.pins(lock)
    for text in lockfile.requirements(lock):
        requirement = Requirement(text)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is not in requirements/{lock}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])


@pytest.mark.parametrize("lock", sorted(lockfile.SOURCES))
def test_every_pin_carries_its_hashes(lock: str) -> None:
    text = (lockfile.FOLDER / lock).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1])
    pinned = [entry for entry in entries if re.match(r"[A-Za-z0-9_.-]+==", entry)]
    assert len(pinned) == len(lockfile.pins(lock)) > 0
    for entry in pinned:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), entry.splitlines()[0]
    assert "iam-create-access-key==" not in text  # the action's own wheel never comes from one
