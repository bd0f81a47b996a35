"""Pure rules of checks/recipients.py: typo suggestions, MTA-STS parsing, grouping."""

from __future__ import annotations

import pytest

from sendready.checks.recipients import (
    PROVIDER_DOMAINS,
    group_recipients,
    mta_sts_records,
    parse_mta_sts_mode,
    suggest,
    typo_cost,
)
from sendready.model import RULES


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("gmial.com", "gmail.com"),  # swapped letters
        ("gnail.com", "gmail.com"),  # neighbouring key
        ("gmaill.com", "gmail.com"),  # one letter too many
        ("hotmial.com", "hotmail.com"),
        ("outlok.com", "outlook.com"),
        ("yahooo.com", "yahoo.com"),
        ("gmail.con", "gmail.com"),  # top-level-domain slip
        ("gmail.co", "gmail.com"),  # .co is real, but not next to gmail
        ("gmial.con", "gmail.com"),  # both at once
        ("yaho.co.uk", "yahoo.co.uk"),
        ("example.con", "example.com"),  # .con does not exist, for any domain
        ("example.ogr", "example.org"),
    ],
)
def test_likely_typos_get_the_intended_domain(typed: str, meant: str) -> None:
    guess = suggest(typed)
    assert guess is not None
    assert guess.domain == meant
    assert guess.reason


@pytest.mark.parametrize(
    "domain",
    [
        *PROVIDER_DOMAINS[:10],
        "email.com",  # a provider of its own, one letter from gmail
        "example.com",
        "microsoft.com",
        "hotmail.de",  # a real country domain of a provider
        "example.co",  # .co is Colombia
        "mail.gmial.com",  # a subdomain: not a mailbox provider's address
        "ail.com",
        "localhost",
    ],
)
def test_intended_domains_get_no_suggestion(domain: str) -> None:
    assert suggest(domain) is None


def test_short_provider_names_are_not_matched_by_distance() -> None:
    # "aol" and "msn" are one letter from many real domains: only exact names with a TLD
    # slip count.
    assert suggest("aok.com") is None
    assert suggest("msm.com") is None
    assert suggest("aol.con") is not None


def test_neighbouring_keys_cost_less_than_distant_ones() -> None:
    assert typo_cost("gnail", "gmail") == 0.5  # n is next to m
    assert typo_cost("gpail", "gmail") == 1.0  # p is not
    assert typo_cost("gmial", "gmail") == 0.5  # transposition
    assert typo_cost("gmail", "gmail") == 0.0
    assert typo_cost("g", "gmailgmail") >= 3


def test_mta_sts_mode_is_read_from_the_policy_body() -> None:
    body = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmax_age: 86400\r\n"
    assert parse_mta_sts_mode(body) == "enforce"
    assert parse_mta_sts_mode("version: STSv1\nMode: Testing\n") == "testing"
    assert parse_mta_sts_mode("version: STSv1\n") is None


def test_only_records_starting_with_the_version_are_mta_sts_records() -> None:
    assert mta_sts_records(["v=STSv1; id=1", "v=spf1 -all", "v=STSv1 ; id=2"]) == [
        "v=STSv1; id=1",
        "v=STSv1 ; id=2",
    ]


def test_recipients_are_grouped_by_normalised_domain_without_duplicates() -> None:
    groups, bad = group_recipients(
        ["a@Example.TEST", "b@example.test", "a@example.test", "c@other.test", "nope", "x@"]
    )
    assert groups == {
        "example.test": ["a@example.test", "b@example.test"],
        "other.test": ["c@other.test"],
    }
    assert bad == ["nope", "x@"]


def test_the_contract_ids_are_declared() -> None:
    for finding_id in ("recipient.domain_missing", "recipient.no_mail", "recipient.possible_typo"):
        assert finding_id in RULES
