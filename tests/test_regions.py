"""Regions choose one partition from botocore's own data; the key is created once."""

from __future__ import annotations

import pytest

from plugin.contract import regions


def names(text: str) -> tuple[str, ...]:
    selection, problems = regions.parse(text)
    assert problems == []
    return selection.names


def test_partitions_come_from_botocore() -> None:
    by_name = {p.name: p for p in regions.partitions()}
    assert {"aws", "aws-cn", "aws-us-gov"} <= set(by_name)
    assert "us-east-1" in by_name["aws"].regions
    assert "aws-global" not in by_name["aws"].regions  # a pseudo-region, not a region
    assert by_name["aws"].global_region == "us-east-1"


def test_a_list_is_trimmed_lowered_and_folded_in_order() -> None:
    assert names(" eu-west-2 ,US-EAST-1, eu-west-2") == ("eu-west-2", "us-east-1")


@pytest.mark.parametrize("text", ["*", " * ", ""], ids=["star", "padded-star", "empty"])
def test_star_or_nothing_selects_every_region(text: str) -> None:
    assert regions.parse(text) == (regions.RegionSelection(), [])


@pytest.mark.parametrize(
    ("default", "partition", "signing"),
    [
        (None, "aws", "us-east-1"),
        ("eu-west-1", "aws", "us-east-1"),
        ("cn-north-1", "aws-cn", "cn-northwest-1"),
        ("us-gov-east-1", "aws-us-gov", "us-gov-west-1"),
        ("moon-1", "aws", "us-east-1"),
    ],
    ids=["no-default", "aws-default", "china-default", "govcloud-default", "unknown-default"],
)
def test_star_takes_the_partition_of_the_default_region(
    default: str | None, partition: str, signing: str
) -> None:
    plan = regions.plan(regions.RegionSelection(), default)
    assert (plan.partition, plan.signing_region) == (partition, signing)
    assert set(plan.regions) == set(regions.partition_named(partition).regions)


def test_a_list_plans_its_own_partition() -> None:
    selection, _ = regions.parse("cn-northwest-1,cn-north-1")
    plan = regions.plan(selection, "us-east-1")
    assert plan.partition == "aws-cn"
    assert plan.regions == ("cn-northwest-1", "cn-north-1")


def test_problems_are_all_reported() -> None:
    _, problems = regions.parse("us-est-1,,moon-1,us-east-1,cn-north-1")
    assert problems == [
        'parameters.regions: "us-est-1" is not a region that botocore lists; did you mean "us-east-1" or "us-west-1"?',
        "parameters.regions: item 2 is empty",
        'parameters.regions: "moon-1" is not a region that botocore lists',
        "parameters.regions: the regions span partitions (aws, aws-cn); one set of credentials lives in one partition, so name regions of one partition only",
    ]


def test_a_value_that_is_not_region_like_is_not_echoed() -> None:
    _, problems = regions.parse("us-east-1,Secret/Value+With=Symbols")
    assert problems == ["parameters.regions: item 2 is not a region that botocore lists"]
