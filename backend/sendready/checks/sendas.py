"""Send As: may the signed-in mailbox send with this From address? (DOMAIN.md §2.1, §3, §5.3)

Exchange Online refuses a message whose From is not the authenticated mailbox, unless the
address is one of the mailbox's own (proxy) addresses or Send As / Send on Behalf is
granted. The caller (the API) fills ``CheckRequest.mailbox`` from the token and
``own_addresses`` from Microsoft Graph; this check only compares, and does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..engine import CheckContext, Section
from ..model import Finding, Severity, rule

#: The Exchange Online rejection, exactly as the client sees it (DOMAIN.md §3).
REJECTION = "550 5.7.60 SMTP; Client does not have permissions to send as this sender"

NOT_PERMITTED = rule(
    "sendas.not_permitted",
    "The From address is not one of the signed-in mailbox's own addresses: Exchange Online "
    "rejects the message with 550 5.7.60 unless Send As or Send on Behalf is granted.",
    "DOMAIN.md §2.1 (Send As), §3 (5.7.60)",
    Severity.CRITICAL,
)


@dataclass(frozen=True, slots=True)
class SendAsFacts:
    """The Send As question and its answer (None: the user's addresses could not be read)."""

    mailbox: str
    address: str
    own: bool | None


def smtp_address(entry: str) -> str | None:
    """The address of a proxy-address entry, lower-case: ``SMTP:a@b`` (primary) and
    ``smtp:a@b`` give ``a@b``; other types (``SIP:``, ``X500:``) give None; an entry without
    a type prefix is taken as an address."""
    kind, sep, rest = entry.strip().partition(":")
    if not sep:
        return kind.lower() or None
    if kind.lower() != "smtp":
        return None
    return rest.strip().lower() or None


def own_set(mailbox: str, entries: Iterable[str]) -> frozenset[str]:
    """Every SMTP address the mailbox owns: the mailbox itself and its proxy addresses."""
    found = {a for a in (smtp_address(e) for e in entries) if a}
    return frozenset({mailbox.lower(), *found})


def judge(address: str, mailbox: str, own_addresses: tuple[str, ...] | None) -> Finding:
    """The ``sendas.not_permitted`` finding for a From that differs from the mailbox."""
    data: dict[str, Any] = {"mailbox": mailbox, "address": address}
    if own_addresses is None:
        return NOT_PERMITTED.unknown(
            address,
            f"Signed in as {mailbox}, but the mailbox's own addresses could not be read from "
            f"Microsoft Graph, so whether it may send as {address} is not known.",
            f"Could not check whether {mailbox} may send as {address}",
            **data,
        )
    if address.lower() in own_set(mailbox, own_addresses):
        return NOT_PERMITTED.passed(
            address,
            f"{address} is one of your own addresses",
            f"Signed in as {mailbox}; {address} is a proxy address of that mailbox, so "
            "Exchange Online accepts it as the From.",
            **data,
        )
    return NOT_PERMITTED.failed(
        address,
        f"Exchange Online will reject this From: {address} is not one of your addresses",
        f"Signed in as {mailbox}, whose own addresses do not include {address}. Submitted as "
        f"{mailbox}, the message is refused with `{REJECTION}` unless {mailbox} has Send As "
        f"or Send on Behalf permission on {address}.",
        _fix(address, mailbox),
        reply=REJECTION,
        **data,
    )


def _fix(address: str, mailbox: str) -> str:
    return (
        f"Ask an Exchange administrator to grant {mailbox} Send As on {address} (Exchange "
        f"admin center → Recipients → {address} → Delegation, or "
        f"`Add-RecipientPermission -Identity {address} -Trustee {mailbox} -AccessRights "
        f"SendAs`) or Send on Behalf (`Set-Mailbox -Identity {address} "
        f"-GrantSendOnBehalfTo {mailbox}`). If {address} should be yours, have it added as an "
        f"alias (proxy address) of your mailbox. Otherwise send from {mailbox}, or through a "
        "relay connector."
    )


async def check(ctx: CheckContext) -> Section:
    """The "sendas" section: a finding only when the From differs from the mailbox."""
    address, mailbox = ctx.request.address, ctx.request.mailbox
    if not address or not mailbox or address.lower() == mailbox.lower():
        return Section()
    found = judge(address, mailbox, ctx.request.own_addresses)
    own = None if ctx.request.own_addresses is None else found.is_problem is False
    return Section((found,), SendAsFacts(mailbox, address, own))
