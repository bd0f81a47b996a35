"""Domain and address validation: what the checks may query, and the plain reasons when not."""

from __future__ import annotations

import pytest

from sendready.dns.names import (
    BadAddress,
    BadName,
    normalize_domain,
    parent_names,
    parse_address,
    to_unicode,
)
from sendready.dns.resolver import Nameserver, parse_nameservers


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("  mail.example.org ", "mail.example.org"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
        ("_dmarc.example.com", "_dmarc.example.com"),
        ("ＥＸＡＭＰＬＥ.com", "example.com"),
    ],
)
def test_names_are_normalised_to_lower_case_a_labels(given: str, expected: str) -> None:
    assert normalize_domain(given) == expected


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("", "empty"),
        ("example..com", "empty label"),
        ("-bad.example.com", "hyphen"),
        ("exa mple.com", "letters, digits and hyphens"),
        ("a" * 64 + ".com", "limit is 63"),
        (".".join(["abcdefghi"] * 30) + ".com", "limit is 253"),
        ("x" * 300, "limit is"),
        ("localhost", "single label"),
        ("192.0.2.1", "IP address"),
        ("[2001:db8::1]", "IP address"),
        ("example.123", "numeric"),
        ("xn--zz.example", "A-label"),
    ],
)
def test_bad_names_are_refused_with_the_reason(given: str, reason: str) -> None:
    with pytest.raises(BadName, match=reason):
        normalize_domain(given)


def test_a_300_character_name_is_refused_not_truncated() -> None:
    with pytest.raises(BadName):
        normalize_domain(("a" * 50 + ".") * 6 + "com")


def test_u_labels_come_back_for_display() -> None:
    assert to_unicode("xn--bcher-kva.example") == "bücher.example"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("alice@Example.com", ("alice", "example.com")),
        ("<bob.smith+tag@mail.example.org>", ("bob.smith+tag", "mail.example.org")),
        ('"odd person"@example.com', ('"odd person"', "example.com")),
        ("müller@bücher.example", ("müller", "xn--bcher-kva.example")),
    ],
)
def test_addresses_split_into_local_part_and_domain(given: str, expected: tuple[str, str]) -> None:
    assert parse_address(given) == expected


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("no-at-sign", "no @"),
        ("@example.com", "nothing before"),
        ("a..b@example.com", "dot-atom"),
        (".a@example.com", "dot-atom"),
        ("a b@example.com", "dot-atom"),
        ("x" * 65 + "@example.com", "limit is 64"),
        ("alice@", "domain"),
        ("alice@exa_mple..com", "domain"),
    ],
)
def test_bad_addresses_are_refused_with_the_reason(given: str, reason: str) -> None:
    with pytest.raises(BadAddress, match=reason):
        parse_address(given)


def test_parent_names_go_up_to_the_top_level_domain() -> None:
    assert parent_names("a.b.example.com") == ["b.example.com", "example.com", "com"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.10.53", (Nameserver("127.0.10.53", 53),)),
        ("127.0.10.53:5353, 192.0.2.1", (Nameserver("127.0.10.53", 5353), Nameserver("192.0.2.1"))),
        ("[::1]:5353", (Nameserver("::1", 5353),)),
        ("2001:db8::1", (Nameserver("2001:db8::1"),)),
    ],
)
def test_nameservers_parse_from_ip_port_lists(given: str, expected: tuple[Nameserver, ...]) -> None:
    assert parse_nameservers(given) == expected


@pytest.mark.parametrize("given", ["ns1.example.com", "127.0.0.1:0", "127.0.0.1:99999", "", "[::1"])
def test_bad_nameservers_are_refused(given: str) -> None:
    with pytest.raises(ValueError):
        parse_nameservers(given)
