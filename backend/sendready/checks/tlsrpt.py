"""TLS-RPT (RFC 8460): the _smtp._tls record, and whether one is missing where MTA-STS or DANE
makes TLS failures worth hearing about."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from ..engine import CheckContext, Section
from ..model import Finding, Severity, rule
from .mta_sts import sts_records
from .services import mx_names

MISSING = rule(
    "tlsrpt.missing",
    "The domain uses MTA-STS or DANE but publishes no TLS-RPT record to hear of TLS failures.",
    "RFC 8460 §3; RFC 8461 §6",
    Severity.WARNING,
)
SYNTAX = rule(
    "tlsrpt.syntax_error",
    "The TLS-RPT record is malformed: rua is required and takes mailto: or https: URIs.",
    "RFC 8460 §3",
    Severity.WARNING,
)
MULTIPLE = rule(
    "tlsrpt.multiple_records",
    "More than one TLS-RPT record: senders treat that as none.",
    "RFC 8460 §3",
    Severity.WARNING,
)

_RECORD = re.compile(r"^v=TLSRPTv1\s*;", re.ASCII)


def report_mailbox(domain: str) -> str:
    """The mailbox a suggested record sends the reports to (the admin must create it)."""
    return f"tls-reports@{domain}"


def suggested_record(domain: str) -> str:
    """The record to publish for daily reports by mail: the fix text shows it and the
    fixes' TXT record carries it."""
    return f"v=TLSRPTv1; rua=mailto:{report_mailbox(domain)}"


@dataclass(frozen=True, slots=True)
class TlsRptFacts:
    domain: str
    records: tuple[str, ...] = ()
    rua: tuple[str, ...] = ()
    mta_sts: bool = False
    dane_hosts: tuple[str, ...] = ()


def rpt_records(texts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t for t in texts if _RECORD.match(t))


def parse_record(record: str) -> tuple[tuple[str, ...], str]:
    """(rua URIs, error) of one v=TLSRPTv1 record (pure)."""
    fields: dict[str, str] = {}
    for part in record.split(";")[1:]:
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            return (), f"{part!r} is not a key=value field"
        fields.setdefault(name.strip().lower(), value.strip())
    if "rua" not in fields:
        return (), "the required rua= field is missing"
    uris = tuple(u.strip() for u in fields["rua"].split(",") if u.strip())
    if not uris:
        return (), "rua= is empty"
    for uri in uris:
        lowered = uri.lower()
        if lowered.startswith("mailto:"):
            if "@" not in uri[7:]:
                return uris, f"{uri!r} is not a mailto: address"
        elif lowered.startswith("https://"):
            if len(uri) <= len("https://"):
                return uris, f"{uri!r} has no host"
        else:
            return uris, f"{uri!r}: only mailto: and https: URIs are allowed"
    return uris, ""


def findings(facts: TlsRptFacts) -> list[Finding]:
    domain = facts.domain
    needed = facts.mta_sts or bool(facts.dane_hosts)
    why = " and ".join(
        w for w in ("MTA-STS" if facts.mta_sts else "", "DANE" if facts.dane_hosts else "") if w
    )
    example = f'_smtp._tls.{domain} TXT "{suggested_record(domain)}"'
    if not facts.records:
        if not needed:
            return [
                MISSING.passed(
                    domain,
                    "No TLS-RPT record; none is needed without MTA-STS or DANE",
                    f"TXT _smtp._tls.{domain}: none",
                )
            ]
        return [
            MISSING.failed(
                domain,
                f"The domain uses {why} but publishes no TLS-RPT record",
                f"TXT _smtp._tls.{domain}: no record starting v=TLSRPTv1;",
                f"Publish `{example}` to receive daily reports of TLS delivery failures.",
                uses=why,
            )
        ]
    if len(facts.records) > 1:
        return [
            MULTIPLE.failed(
                domain,
                f"{len(facts.records)} TLS-RPT records",
                " | ".join(facts.records),
                f"Keep exactly one: `{example}`.",
            )
        ]
    _, error = parse_record(facts.records[0])
    if error:
        return [
            SYNTAX.failed(
                domain,
                f"The TLS-RPT record is invalid: {error}",
                f'TXT _smtp._tls.{domain}: "{facts.records[0]}"',
                f"Publish `{example}`.",
            )
        ]
    return [
        MISSING.passed(
            domain,
            "TLS-RPT record published",
            f'TXT _smtp._tls.{domain}: "{facts.records[0]}"',
            rua=list(facts.rua),
        )
    ]


async def check(ctx: CheckContext) -> Section:
    """The "tlsrpt" section. The _mta-sts and TLSA answers come from the session memo."""
    domain = ctx.request.domain
    rpt, sts, names = await asyncio.gather(
        ctx.dns.query(f"_smtp._tls.{domain}", "TXT"),
        ctx.dns.query(f"_mta-sts.{domain}", "TXT"),
        mx_names(ctx),
    )
    if rpt.failed:
        return Section(
            (MISSING.unknown(domain, f"TXT _smtp._tls.{domain}: {rpt.reason}"),),
            TlsRptFacts(domain),
        )
    # want_dnssec as the DANE check asks, so the session memo answers both with one query.
    tlsa = await asyncio.gather(
        *(ctx.dns.query(f"_25._tcp.{h}", "TLSA", want_dnssec=True) for h in names.hosts)
    )
    dane = tuple(h for h, lk in zip(names.hosts, tlsa, strict=True) if lk.ok)
    records = rpt_records(rpt.texts()) if rpt.ok else ()
    rua = parse_record(records[0])[0] if len(records) == 1 else ()
    facts = TlsRptFacts(
        domain, records, rua, bool(sts_records(sts.texts())) if sts.ok else False, dane
    )
    return Section(tuple(findings(facts)), facts)
