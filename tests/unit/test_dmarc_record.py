"""The DMARC record grammar: RFC 9989 §4.7 tags and §4.8 error handling, on record text."""

from __future__ import annotations

import pytest

from sendready.checks.dmarc_record import (
    IssueKind,
    looks_like_dmarc,
    parse,
    parse_uri,
    render,
    repair_version,
    starts_with_version,
)


def kinds(text: str) -> list[tuple[str, str]]:
    record = parse(text)
    assert record is not None
    return [(i.kind, i.tag) for i in record.issues]


def test_a_full_record_parses_every_tag() -> None:
    record = parse(
        "v=DMARC1; p=reject; sp=quarantine; np=reject; adkim=s; aspf=s; psd=n; t=n; "
        "rua=mailto:agg@example.com,mailto:other@reports.example.net; "
        "ruf=mailto:forensic@example.com; fo=d:s"
    )
    assert record is not None
    assert (record.p, record.sp, record.np) == ("reject", "quarantine", "reject")
    assert (record.adkim, record.aspf, record.psd, record.t) == ("s", "s", "n", "n")
    assert [u.address for u in record.rua] == ["agg@example.com", "other@reports.example.net"]
    assert [u.domain for u in record.rua] == ["example.com", "reports.example.net"]
    assert record.ruf[0].domain == "example.com"
    assert record.fo == ("d", "s")
    assert record.issues == ()


def test_defaults_apply_when_tags_are_absent() -> None:
    record = parse("v=DMARC1")
    assert record is not None
    assert record.p is None and record.sp is None and record.np is None
    assert (record.adkim, record.aspf, record.psd, record.t, record.fo) == (
        "r",
        "r",
        "u",
        "n",
        ("0",),
    )
    assert record.rua == () and record.issues == ()


@pytest.mark.parametrize(
    "text",
    [
        "v=DMARC2; p=reject",
        "v=dmarc1; p=reject",
        " v=DMARC1; p=reject",
        "p=reject; v=DMARC1",
        "v=spf1 -all",
        "",
        "DMARC1",
    ],
)
def test_only_a_first_v_equal_dmarc1_makes_a_dmarc_record(text: str) -> None:
    assert parse(text) is None
    assert not starts_with_version(text)


def test_whitespace_around_the_equals_sign_of_v_is_allowed() -> None:
    record = parse("v = DMARC1 ;p=quarantine")
    assert record is not None and record.p == "quarantine"


def test_leading_whitespace_and_lower_case_version_are_recognised_as_meant_for_dmarc() -> None:
    assert looks_like_dmarc(" v=DMARC1; p=reject")
    assert looks_like_dmarc("v=dmarc1; p=reject")
    assert not looks_like_dmarc("v=DMARC1; p=reject")
    assert not looks_like_dmarc("v=spf1 -all")


def test_tag_names_and_keyword_values_are_case_insensitive() -> None:
    record = parse("v=DMARC1; P=Reject; ADKIM=S")
    assert record is not None and record.p == "reject" and record.adkim == "s"


@pytest.mark.parametrize(
    ("text", "tag", "field", "default"),
    [
        ("v=DMARC1; p=block", "p", "p", None),
        ("v=DMARC1; p=none; sp=rejected", "sp", "sp", None),
        ("v=DMARC1; p=none; np=yes", "np", "np", None),
        ("v=DMARC1; p=none; adkim=strict", "adkim", "adkim", "r"),
        ("v=DMARC1; p=none; aspf=x", "aspf", "aspf", "r"),
        ("v=DMARC1; p=none; psd=true", "psd", "psd", "u"),
        ("v=DMARC1; p=none; t=1", "t", "t", "n"),
    ],
)
def test_a_bad_value_falls_back_to_the_default_and_is_reported(
    text: str, tag: str, field: str, default: str | None
) -> None:
    record = parse(text)
    assert record is not None
    assert getattr(record, field) == default
    assert (IssueKind.INVALID_VALUE, tag) in kinds(text)


def test_an_element_without_equals_is_a_syntax_error_and_the_rest_still_counts() -> None:
    text = "v=DMARC1; p=reject; garbage; rua=mailto:a@example.com"
    record = parse(text)
    assert record is not None
    assert record.p == "reject" and record.rua[0].address == "a@example.com"
    assert kinds(text) == [(IssueKind.SYNTAX, "")]


def test_a_repeated_tag_is_a_syntax_error_and_the_first_wins() -> None:
    text = "v=DMARC1; p=reject; p=none"
    record = parse(text)
    assert record is not None and record.p == "reject"
    assert kinds(text) == [(IssueKind.SYNTAX, "p")]


def test_a_second_v_tag_is_a_syntax_error() -> None:
    assert kinds("v=DMARC1; p=none; v=DMARC1") == [(IssueKind.SYNTAX, "v")]


def test_empty_elements_and_a_trailing_semicolon_are_fine() -> None:
    assert kinds("v=DMARC1;; p=none ;") == []


def test_removed_tags_are_reported_each() -> None:
    assert kinds("v=DMARC1; p=reject; pct=50; rf=afrf; ri=86400") == [
        (IssueKind.REMOVED, "pct"),
        (IssueKind.REMOVED, "rf"),
        (IssueKind.REMOVED, "ri"),
    ]


def test_unknown_tags_are_reported_and_ignored() -> None:
    record = parse("v=DMARC1; p=reject; foo=bar")
    assert record is not None and record.p == "reject"
    assert kinds("v=DMARC1; p=reject; foo=bar") == [(IssueKind.UNKNOWN, "foo")]


def test_fo_zero_and_one_exclude_each_other() -> None:
    text = "v=DMARC1; p=none; ruf=mailto:f@example.com; fo=0:1"
    record = parse(text)
    assert record is not None and record.fo == ("0",)
    assert kinds(text) == [(IssueKind.INVALID_VALUE, "fo")]


def test_fo_without_ruf_is_noted_as_without_effect() -> None:
    assert kinds("v=DMARC1; p=none; fo=1") == [(IssueKind.IGNORED, "fo")]


def test_the_size_suffix_is_parsed_off_and_reported_obsolete() -> None:
    text = "v=DMARC1; p=none; rua=mailto:agg@example.com!10m"
    record = parse(text)
    assert record is not None
    assert record.rua[0].address == "agg@example.com" and record.rua[0].size_limit == "10m"
    assert kinds(text) == [(IssueKind.SIZE_LIMIT, "rua")]


def test_one_bad_uri_is_dropped_and_the_good_one_kept() -> None:
    text = "v=DMARC1; p=none; rua=agg@example.com, mailto:ok@example.org"
    record = parse(text)
    assert record is not None
    assert [u.address for u in record.rua] == ["ok@example.org"]
    assert kinds(text) == [(IssueKind.INVALID_VALUE, "rua")]


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("agg@example.com", "is not a URI"),
        ("mailto:example.com", "with a mailbox"),
        ("mailto:a@", "with a mailbox"),
        ("mailto:a@bad..name", "bad mail domain"),
        ("mailto:a@localhost", "single label"),
        ("mailto:a@example.com!big", "size limit"),
    ],
)
def test_malformed_report_uris_say_why(uri: str, problem: str) -> None:
    parsed, why = parse_uri(uri)
    assert parsed is None and problem in why


def test_a_mailto_uri_is_percent_decoded_and_its_domain_normalised() -> None:
    parsed, _ = parse_uri("MAILTO:dmarc%2Breports@Example.COM?subject=x")
    assert parsed is not None
    assert (parsed.scheme, parsed.address, parsed.domain) == (
        "mailto",
        "dmarc+reports@example.com",
        "example.com",
    )


def test_an_https_uri_keeps_its_host() -> None:
    parsed, _ = parse_uri("https://reports.example.net/dmarc")
    assert parsed is not None and parsed.domain == "reports.example.net"


def test_render_changes_removes_and_adds_tags_in_place() -> None:
    record = parse("v=DMARC1; p=none; pct=0; rua=mailto:a@example.com")
    assert record is not None
    assert render(record, {"p": "reject", "pct": None, "t": "y"}) == (
        "v=DMARC1; p=reject; rua=mailto:a@example.com; t=y"
    )
    bare = parse("v=DMARC1; rua=mailto:a@example.com")
    assert bare is not None
    assert render(bare, {"p": "none"}) == "v=DMARC1; p=none; rua=mailto:a@example.com"


@pytest.mark.parametrize(
    ("text", "repaired"),
    [
        (" v=DMARC1; p=reject", "v=DMARC1; p=reject"),
        ("v=dmarc1; p=none", "v=DMARC1; p=none"),
        ("v=DMARC1p=reject", "v=DMARC1; p=reject"),
        ("\tv = DMARC1", "v=DMARC1"),
    ],
)
def test_records_meant_as_dmarc_are_recognised_and_repaired(text: str, repaired: str) -> None:
    assert looks_like_dmarc(text)
    assert repair_version(text) == repaired
    assert parse(repaired) is not None


@pytest.mark.parametrize("text", ["v=DMARC10; p=reject", "v=spf1 -all", "DMARC1", "v=DMARC2"])
def test_other_records_are_not_taken_for_broken_dmarc(text: str) -> None:
    assert not looks_like_dmarc(text)


def test_hostile_records_parse_without_crashing() -> None:
    huge = "v=DMARC1; " + "; ".join(f"x{i}={'y' * 50}" for i in range(2000))
    record = parse(huge)
    assert record is not None and len(record.issues) == 2000
    weird = parse("v=DMARC1; p=\x00\xff; rua=mailto:\u00e9@\u2603.example,;;==;=x; sp")
    assert weird is not None and weird.p is None
    assert {i.kind for i in weird.issues} >= {IssueKind.INVALID_VALUE, IssueKind.SYNTAX}
    assert parse("v=DMARC1; rua=" + "mailto:a@example.com," * 500) is not None
