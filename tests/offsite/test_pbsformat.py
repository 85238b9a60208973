"""PBS's stored forms and filter semantics for sync job options (no PBS needed)."""

from __future__ import annotations

import pytest

from offsite.pbsformat import (
    bounded_id,
    group_passes,
    normalize_byte_size,
    normalize_group_filters,
    parse_group_filter,
    tenant_job_id,
)


def test_it_stores_include_filters_without_the_prefix_as_pbs_does():
    assert normalize_group_filters(["include:type:vm", "exclude:group:vm/100", "regex:^ct/"]) == [
        "type:vm",
        "exclude:group:vm/100",
        "regex:^ct/",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("type:lxc", "unable to parse backup type 'lxc'"),
        ("kind:vm", "expected 'group', 'type' or 'regex' prefix, got 'kind'"),
        ("vm", "input doesn't match expected format"),
        ("regex:(", "regex parse error"),
        ("group:vm", "value does not match the regex pattern"),
    ],
)
def test_it_refuses_malformed_group_filters(value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("|", r"\|")):
        parse_group_filter(value)


def test_group_filters_include_any_and_exclude_wins():
    filters = [parse_group_filter(v) for v in ["type:vm", "group:ct/200", "exclude:regex:^vm/1"]]
    assert group_passes(filters, "vm", "200")
    assert group_passes(filters, "ct", "200")
    assert not group_passes(filters, "ct", "201")  # not included by any include filter
    assert not group_passes(filters, "vm", "100")  # excluded
    assert group_passes([], "host", "anything")  # no filters: everything
    only_exclude = [parse_group_filter("exclude:type:host")]
    assert group_passes(only_exclude, "vm", "1")
    assert not group_passes(only_exclude, "host", "a")


@pytest.mark.parametrize(
    ("given", "stored"),
    [("10MiB", "10 MiB"), ("10 MiB", "10 MiB"), ("1.5GB", "1.5 GB"), ("4096", "4096 B")],
)
def test_it_stores_rates_the_way_pbs_prints_them(given, stored):
    assert normalize_byte_size(given) == stored


def test_it_refuses_unknown_rate_units():
    with pytest.raises(ValueError, match="unknown size unit 'Mbit'"):
        normalize_byte_size("10Mbit")


def test_long_tenant_job_ids_stay_unique_safe_ids_within_32_chars():
    a = tenant_job_id(12, "a-very-long-tenant-slug-number-one")
    b = tenant_job_id(12, "a-very-long-tenant-slug-number-two")
    assert a != b
    assert len(a) <= 32
    assert len(b) <= 32
    assert tenant_job_id(3, "acme") == "offsite-3-acme"
    assert bounded_id("x-", "y" * 40, limit=20).startswith("x-yyyy")
