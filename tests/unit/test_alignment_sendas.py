"""The Send As rules: proxy-address parsing and the 5.7.60 prediction (sendas.py)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from sendready.checks.sendas import REJECTION, SendAsFacts, check, judge, own_set, smtp_address
from sendready.config import Settings
from sendready.dns import Deadline, Nameserver, Resolver
from sendready.engine import CheckContext
from sendready.model import CheckRequest, Severity, Status


@pytest.mark.parametrize(
    ("entry", "address"),
    [
        ("SMTP:Alice@Example.test", "alice@example.test"),
        ("smtp:sales@example.test", "sales@example.test"),
        ("SIP:alice@example.test", None),
        ("X500:/o=ExchangeLabs/cn=alice", None),
        ("bob@example.test", "bob@example.test"),
        ("smtp:", None),
    ],
)
def test_only_smtp_proxy_addresses_count(entry: str, address: str | None) -> None:
    assert smtp_address(entry) == address


def test_the_mailbox_is_always_one_of_its_own_addresses() -> None:
    assert own_set("Alice@example.test", ()) == {"alice@example.test"}


def test_an_own_address_passes_case_insensitively() -> None:
    found = judge("Sales@Example.test", "alice@example.test", ("smtp:sales@example.test",))
    assert (found.id, found.status) == ("sendas.not_permitted", Status.PASS)


def test_a_foreign_address_fails_with_the_exact_exchange_rejection() -> None:
    found = judge("ceo@example.test", "alice@example.test", ("SIP:ceo@example.test",))
    assert (found.status, found.severity) == (Status.FAIL, Severity.CRITICAL)
    assert REJECTION == "550 5.7.60 SMTP; Client does not have permissions to send as this sender"
    assert REJECTION in found.detail
    assert "Send As" in found.fix and "Send on Behalf" in found.fix and "alias" in found.fix


def test_unknown_own_addresses_give_unknown_with_the_reason() -> None:
    found = judge("ceo@example.test", "alice@example.test", None)
    assert found.status is Status.UNKNOWN
    assert "could not be read from Microsoft Graph" in found.detail


def section(request: CheckRequest) -> tuple[int, object]:
    async def go() -> tuple[int, object]:
        resolver = Resolver([Nameserver("127.0.0.1", 53)], timeout=0.1)
        ctx = CheckContext(request, resolver.session(), Settings(), Deadline.after(1))
        result = await check(ctx)
        return len(result.findings), result.facts

    return asyncio.run(go())


def test_no_finding_without_a_mailbox_or_when_the_from_is_the_mailbox() -> None:
    base = CheckRequest(domain="example.test", address="Alice@example.test")
    assert section(base) == (0, None)
    assert section(dataclasses.replace(base, mailbox="alice@example.test")) == (0, None)


def test_a_send_as_puts_the_answer_into_the_facts() -> None:
    base = CheckRequest(domain="example.test", address="ceo@example.test", mailbox="a@example.test")
    assert section(base) == (1, SendAsFacts("a@example.test", "ceo@example.test", None))
    known = dataclasses.replace(base, own_addresses=("smtp:ceo@example.test",))
    assert section(known) == (1, SendAsFacts("a@example.test", "ceo@example.test", True))
    foreign = dataclasses.replace(base, own_addresses=())
    assert section(foreign) == (1, SendAsFacts("a@example.test", "ceo@example.test", False))
