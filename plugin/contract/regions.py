"""Turn the AWS Region(s) parameter into a plan: one partition, its regions, one signing region.

IAM is a global service: every region of a partition resolves to the same IAM endpoint, so the
region list only chooses the partition and the key is created once. Region names come from
botocore's own partition data, never from a list kept here.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

ALL_REGIONS = "*"
DEFAULT_PARTITION = "aws"


@dataclasses.dataclass(frozen=True)
class Partition:
    """One AWS partition as botocore describes it."""

    name: str
    regions: tuple[str, ...]
    global_region: str  # where a global service such as IAM signs its requests


@dataclasses.dataclass(frozen=True)
class RegionPlan:
    """Where one invocation acts: the partition, the regions named, and the signing region."""

    partition: str
    regions: tuple[str, ...]
    signing_region: str


@dataclasses.dataclass(frozen=True)
class RegionSelection:
    """The parsed parameter: every region (`*`) or the regions named, in the order given."""

    names: tuple[str, ...] = ()

    @property
    def is_all(self) -> bool:
        return not self.names


@functools.cache
def partitions() -> tuple[Partition, ...]:
    """botocore's partitions, each with the regions it lists (pseudo-regions left out)."""
    import botocore.loaders

    data: dict[str, Any] = botocore.loaders.create_loader().load_data("partitions")
    found = []
    for entry in data["partitions"]:
        pattern = re.compile(entry["regionRegex"])
        names = tuple(sorted(name for name in entry["regions"] if pattern.match(name)))
        global_region = entry["outputs"].get("implicitGlobalRegion") or names[0]
        found.append(Partition(entry["id"], names, global_region))
    return tuple(found)


@functools.cache
def _partition_of_region() -> dict[str, Partition]:
    return {region: part for part in partitions() for region in part.regions}


def partition_of(region: str) -> Partition | None:
    """The partition botocore lists `region` in, if any."""
    return _partition_of_region().get(region)


def partition_named(name: str) -> Partition:
    return next(part for part in partitions() if part.name == name)


def parse(text: str, field: str = "parameters.regions") -> tuple[RegionSelection, list[str]]:
    """Parse the parameter; return the selection and every problem found (empty when fine)."""
    text = text.strip()
    if text in ("", ALL_REGIONS):
        return RegionSelection(), []
    problems: list[str] = []
    names: list[str] = []
    for position, item in enumerate(text.split(","), start=1):
        name = item.strip().lower()
        if not name:
            problems.append(f"{field}: item {position} is empty")
        elif name == ALL_REGIONS:
            problems.append(f"{field}: '*' means every region and must stand alone")
        elif name not in _partition_of_region():
            problems.append(f"{field}: {_unknown(name, position)}")
        elif name not in names:
            names.append(name)
    spanned = sorted({_partition_of_region()[name].name for name in names})
    if len(spanned) > 1:
        problems.append(
            f"{field}: the regions span partitions ({', '.join(spanned)}); one set of "
            "credentials lives in one partition, so name regions of one partition only"
        )
    return RegionSelection(tuple(names)), problems


def region_problems(name: str, field: str, partition: str | None) -> list[str]:
    """Problems of one region name: unknown to botocore (with the nearest suggested), or not
    of `partition` when one is given."""
    found = partition_of(name)
    if found is None:
        return [f"{field}: {_unknown(name, 1)}"]
    if partition is not None and found.name != partition:
        return [
            f"{field}: {name} is in partition {found.name}, but the action acts in partition "
            f"{partition}; one set of credentials lives in one partition"
        ]
    return []


def _unknown(name: str, position: int) -> str:
    """Say which item is not a region and suggest the nearest listed name."""
    # Echo the item only when it looks like a region name: a value pasted in the wrong field
    # could be anything, a secret included.
    shown = f'"{name}"' if re.fullmatch(r"[a-z0-9-]{1,32}", name) else f"item {position}"
    nearest = _nearest(name, list(_partition_of_region()))
    hint = "; did you mean " + " or ".join(f'"{n}"' for n in nearest) + "?" if nearest else ""
    return f"{shown} is not a region that botocore lists{hint}"


def _nearest(name: str, candidates: list[str], most_edits: int = 2) -> list[str]:
    """The candidates fewest edits away (at most `most_edits`); all of them when tied."""
    if len(name) > 40:  # no region name is that long; and the distance costs len(name) * ...
        return []
    distances = {candidate: _edits(name, candidate) for candidate in candidates}
    best = min(distances.values(), default=most_edits + 1)
    if best > most_edits:
        return []
    return sorted(candidate for candidate, edits in distances.items() if edits == best)[:3]


def _edits(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def plan(selection: RegionSelection, default_region: str | None) -> RegionPlan:
    """Choose the partition and signing region for a valid selection.

    `*` takes the partition of the default region (connection or environment), else `aws`.
    """
    if selection.is_all:
        home = partition_of(default_region or "")
        partition = home or partition_named(DEFAULT_PARTITION)
        return RegionPlan(partition.name, partition.regions, partition.global_region)
    partition = _partition_of_region()[selection.names[0]]
    return RegionPlan(partition.name, selection.names, partition.global_region)
