"""Organizational domains: the RFC 9989 §4.10 walk's names, §4.10.2 selection, alignment, PSL."""

from __future__ import annotations

import pytest

from sendready.checks.dmarc_orgdomain import (
    MAX_WALK_QUERIES,
    SuffixList,
    aligned,
    bundled_suffix_list,
    organizational_domain,
    walk_names,
)
from sendready.checks.dmarc_record import DmarcRecord, parse


def rec(text: str) -> DmarcRecord:
    record = parse(text)
    assert record is not None
    return record


def test_a_short_name_walks_every_ancestor_down_to_the_tld() -> None:
    assert walk_names("mail.example.com") == ("mail.example.com", "example.com", "com")


def test_a_single_label_is_one_query() -> None:
    assert walk_names("com") == ("com",)


def test_eight_labels_still_walk_one_label_at_a_time() -> None:
    name = "a.b.c.d.e.f.example.com"  # 8 labels
    assert walk_names(name) == (
        name,
        "b.c.d.e.f.example.com",
        "c.d.e.f.example.com",
        "d.e.f.example.com",
        "e.f.example.com",
        "f.example.com",
        "example.com",
        "com",
    )


def test_a_long_name_jumps_to_its_last_seven_labels() -> None:
    name = "x.y.z.a.b.c.d.e.f.example.com"  # 11 labels
    names = walk_names(name)
    assert names[0] == name
    assert names[1] == "b.c.d.e.f.example.com"  # seven labels
    assert names[-1] == "com"
    assert len(names) == MAX_WALK_QUERIES


@pytest.mark.parametrize("labels", range(1, 20))
def test_the_walk_never_exceeds_eight_queries(labels: int) -> None:
    name = ".".join(f"l{i}" for i in range(labels))
    names = walk_names(name)
    assert len(names) <= MAX_WALK_QUERIES
    assert names[0] == name and names[-1] == f"l{labels - 1}"
    assert len(set(names)) == len(names)


def test_no_record_anywhere_makes_the_name_its_own_organizational_domain() -> None:
    assert organizational_domain("a.b.example.com", {}) == "a.b.example.com"


def test_the_record_with_fewest_labels_is_the_organizational_domain() -> None:
    records = {
        "a.b.example.com": rec("v=DMARC1; p=reject"),
        "example.com": rec("v=DMARC1; p=none"),
    }
    assert organizational_domain("a.b.example.com", records) == "example.com"


def test_psd_n_stops_at_that_name() -> None:
    records = {
        "b.example.com": rec("v=DMARC1; p=reject; psd=n"),
        "example.com": rec("v=DMARC1; p=none"),
    }
    assert organizational_domain("a.b.example.com", records) == "b.example.com"


def test_psd_y_makes_the_name_one_label_below_it_the_organizational_domain() -> None:
    records = {"example": rec("v=DMARC1; p=reject; psd=y")}
    assert organizational_domain("x.y.shop.example", records) == "shop.example"


def test_psd_y_at_the_starting_name_itself_does_not_count() -> None:
    records = {"shop.example": rec("v=DMARC1; p=reject; psd=y")}
    assert organizational_domain("shop.example", records) == "shop.example"


def test_a_longer_name_with_psd_n_wins_over_a_psd_y_ancestor() -> None:
    records = {
        "sub.shop.example": rec("v=DMARC1; p=none; psd=n"),
        "example": rec("v=DMARC1; p=reject; psd=y"),
    }
    assert organizational_domain("a.sub.shop.example", records) == "sub.shop.example"


def test_records_outside_the_walk_are_not_consulted() -> None:
    # 11 labels: the walk skips from the name to its last 7 labels.
    name = "x.y.z.a.b.c.d.e.f.example.com"
    records = {"z.a.b.c.d.e.f.example.com": rec("v=DMARC1; p=reject; psd=n")}
    assert organizational_domain(name, records) == name


def test_strict_alignment_needs_identical_names() -> None:
    org = {"mail.example.com": "example.com", "example.com": "example.com"}.__getitem__
    assert aligned("Example.com", "example.com.", "s", org)
    assert not aligned("mail.example.com", "example.com", "s", org)


def test_relaxed_alignment_compares_organizational_domains() -> None:
    org = {
        "mail.example.com": "example.com",
        "example.com": "example.com",
        "example.net": "example.net",
    }.__getitem__
    assert aligned("mail.example.com", "example.com", "r", org)
    assert not aligned("example.net", "example.com", "r", org)


def test_an_injected_suffix_list_defines_the_legacy_organizational_domain() -> None:
    psl = SuffixList(["test", "pso.test"])
    assert psl.organizational_domain("a.b.org.pso.test") == "org.pso.test"
    assert psl.organizational_domain("a.b.other.test") == "other.test"
    assert psl.is_public_suffix("pso.test")
    assert psl.organizational_domain("pso.test") == "pso.test"


def test_the_bundled_list_knows_real_suffixes_and_treats_test_as_a_tld() -> None:
    psl = bundled_suffix_list()
    assert psl.organizational_domain("mail.example.co.uk") == "example.co.uk"
    assert psl.organizational_domain("deep.mail.example.test") == "example.test"
    assert bundled_suffix_list() is psl
