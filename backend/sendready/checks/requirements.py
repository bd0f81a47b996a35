"""Mailbox-provider sender requirements (Gmail, Yahoo, Outlook.com) rolled up as a checklist.

DOMAIN.md §4: each requirement that DNS or the draft's headers can show becomes one finding,
judged from the sections that already ran (SPF, DKIM, DMARC, alignment, PTR, SMTP); what
neither can show (spam rate, list hygiene, ARC, message format) is listed as such, never
passed. Rules are pure functions of sections, unit-tested on hand-built ones.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine import CheckContext, Section
from ..model import Finding, Severity, Status, rule
from .dkim import DkimFacts
from .dmarc import WILL_FAIL, DmarcFacts
from .services import ServicesFacts

SPEC = "DOMAIN.md §4 (Gmail, Yahoo, Outlook.com sender requirements)"
ONE_CLICK = "List-Unsubscribe=One-Click"
#: The only draft headers the roll-up reads (RFC 2369, RFC 8058).
HEADER_NAMES = ("List-Unsubscribe", "List-Unsubscribe-Post")


class Audience(enum.StrEnum):
    ALL = "all senders"
    BULK = "bulk senders"
    RECOMMENDED = "recommended"


class ItemStatus(enum.StrEnum):
    """A checklist line: the three finding statuses, plus "cannot be checked from here"."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
    NOT_CHECKABLE = "not_checkable"


@dataclass(frozen=True, slots=True)
class ProviderAsk:
    """One provider's version of a requirement: for whom, and how sure the source is."""

    provider: str
    applies_to: Audience
    uncertain: bool = False
    note: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    status: ItemStatus
    why: str
    severity: Severity = Severity.WARNING


@dataclass(frozen=True, slots=True)
class Requirement:
    """One line of the checklist."""

    id: str
    requirement: str
    providers: tuple[ProviderAsk, ...]
    status: ItemStatus
    why: str


@dataclass(frozen=True, slots=True)
class RequirementsFacts:
    domain: str
    checklist: tuple[Requirement, ...]
    #: "alignment" when the alignment simulation ran, else "spf/dkim/dmarc records".
    alignment_source: str = ""
    #: "given", or why the draft's headers are not known.
    headers: str = ""


def _ask(
    provider: str, applies_to: Audience, *, uncertain: bool = False, note: str = ""
) -> ProviderAsk:
    return ProviderAsk(provider, applies_to, uncertain, note)


G, Y, O_ = "Gmail", "Yahoo", "Outlook.com"
_A, _B, _R = Audience.ALL, Audience.BULK, Audience.RECOMMENDED
_UNC = "secondary sources only"

SPF_OR_DKIM = rule(
    "requirements.spf_or_dkim",
    "Mailbox providers: SPF or DKIM must pass for all senders.",
    SPEC + " R1",
)
SPF_AND_DKIM = rule(
    "requirements.spf_and_dkim",
    "Mailbox providers: bulk senders need both SPF and DKIM to pass.",
    SPEC + " R2",
)
DMARC_RECORD = rule(
    "requirements.dmarc_record",
    "Mailbox providers: bulk senders need a DMARC record (p=none is accepted).",
    SPEC + " R3",
)
ALIGNMENT = rule(
    "requirements.alignment",
    "Mailbox providers: bulk senders' From domain must align with the SPF or DKIM domain.",
    SPEC + " R4",
)
REVERSE_DNS = rule(
    "requirements.reverse_dns",
    "Mailbox providers: sending IPs need forward and reverse DNS that match.",
    SPEC + " R5",
)
TLS = rule(
    "requirements.tls",
    "Mailbox providers: mail must travel over TLS.",
    SPEC + " R6",
)
ONE_CLICK_UNSUBSCRIBE = rule(
    "requirements.one_click_unsubscribe",
    "Mailbox providers: bulk and marketing mail needs one-click unsubscribe headers.",
    SPEC + " R9; RFC 8058 §3",
)
NOT_CHECKABLE = rule(
    "requirements.not_checkable",
    "Provider requirements that neither DNS nor the draft can show; check them yourself.",
    SPEC + " R7, R8, R10, R11",
    Severity.INFO,
)

#: (rule, requirement, providers) of each checkable line, in checklist order.
CHECKABLE = (
    (SPF_OR_DKIM, "SPF or DKIM passes", (_ask(G, _A), _ask(Y, _A, uncertain=True, note=_UNC))),
    (
        SPF_AND_DKIM,
        "SPF and DKIM both pass",
        (_ask(G, _B), _ask(Y, _B, uncertain=True, note=_UNC), _ask(O_, _B)),
    ),
    (
        DMARC_RECORD,
        "A DMARC record is published (p=none accepted)",
        (
            _ask(G, _B),
            _ask(Y, _B, uncertain=True, note=_UNC),
            _ask(O_, _B, note="p=reject recommended"),
        ),
    ),
    (
        ALIGNMENT,
        "From domain aligned with SPF or DKIM",
        (
            _ask(G, _B, note="direct mail"),
            _ask(Y, _B, uncertain=True, note=_UNC),
            _ask(O_, _B, note="both aligned preferred"),
        ),
    ),
    (
        REVERSE_DNS,
        "Sending IPs have forward and reverse DNS",
        (_ask(G, _A), _ask(Y, _A, uncertain=True, note="Yahoo FAQ of 2015")),
    ),
    (TLS, "Mail travels over TLS", (_ask(G, _A),)),
    (
        ONE_CLICK_UNSUBSCRIBE,
        "One-click unsubscribe (RFC 8058) on subscribed mail",
        (_ask(G, _B), _ask(Y, _B, uncertain=True, note=_UNC), _ask(O_, _R)),
    ),
)

#: What neither DNS nor the draft's two headers can show (DOMAIN.md §4 R7, R8, R10, R11).
UNCHECKABLE = (
    (
        "Spam rate below 0.3% in Postmaster Tools; bulk senders aim below 0.1%",
        (_ask(G, _A), _ask(Y, _A, uncertain=True, note="0.3%, " + _UNC)),
        "only the provider's postmaster dashboards see complaint rates",
    ),
    (
        "RFC 5322-valid message; valid From and Reply-To; no impersonation of Gmail",
        (_ask(G, _A), _ask(O_, _R)),
        "the pane reads only the draft's unsubscribe headers, not the whole message",
    ),
    (
        "Forwarders and mailing lists add ARC headers",
        (_ask(G, _A),),
        "ARC is added by forwarding systems when they relay, not published in DNS",
    ),
    (
        "List hygiene and bounce handling",
        (_ask(O_, _R),),
        "a sending practice, visible to no lookup",
    ),
)


# -- what each section shows (pure) ------------------------------------------------------


def _of(section: Section | None, prefix: str) -> list[Finding]:
    return [f for f in section.findings if f.id.startswith(prefix)] if section else []


def _titles(findings: Iterable[Finding]) -> str:
    return "; ".join(dict.fromkeys(f.title for f in findings))


def spf_verdict(section: Section | None) -> Verdict:
    """Whether the domain's SPF record can pass: one valid record within the limits."""
    found = _of(section, "spf.")
    broken = [f for f in found if f.is_problem and f.severity is Severity.CRITICAL]
    if broken:
        return Verdict(ItemStatus.FAIL, f"SPF: {_titles(broken)}")
    if any(f.id == "spf.valid" and f.status is Status.PASS for f in found):
        return Verdict(ItemStatus.PASS, "SPF: one valid record within the lookup limits")
    unknown = [f for f in _of(section, "") if f.status is Status.UNKNOWN]
    reason = _titles(unknown) or "the SPF check did not run"
    return Verdict(ItemStatus.UNKNOWN, f"SPF: {reason}")


def dkim_verdict(section: Section | None) -> Verdict:
    """Whether a usable DKIM key is published under the domain at a selector tried."""
    facts = section.facts if section else None
    if not isinstance(facts, DkimFacts):
        return Verdict(ItemStatus.UNKNOWN, "DKIM: the DKIM check did not run")
    usable = [s.selector for s in facts.selectors for k in s.keys if not k.error and not k.revoked]
    if usable:
        return Verdict(ItemStatus.PASS, f"DKIM: a usable key at selector {usable[0]}")
    assert section is not None
    broken = [f for f in _of(section, "dkim.") if f.is_problem]
    if broken:
        return Verdict(ItemStatus.FAIL, f"DKIM: {_titles(broken)}")
    return Verdict(
        ItemStatus.UNKNOWN,
        "DKIM: no key at the selectors tried, and selectors cannot be listed from DNS; give "
        "the selector your service signs with",
    )


def dmarc_verdict(section: Section | None) -> Verdict:
    facts = section.facts if section else None
    if not isinstance(facts, DmarcFacts):
        return Verdict(ItemStatus.UNKNOWN, "DMARC: the DMARC check did not run")
    if facts.unknown:
        return Verdict(ItemStatus.UNKNOWN, f"DMARC: the lookup failed ({facts.unknown})")
    if facts.record is None or facts.policy is None:
        return Verdict(ItemStatus.FAIL, f"DMARC: no record applies to {facts.domain}")
    where = (
        f" (inherited from {facts.policy_domain})" if facts.policy_domain != facts.domain else ""
    )
    advice = "; Outlook.com recommends p=reject" if facts.policy != "reject" else ""
    return Verdict(ItemStatus.PASS, f"DMARC: p={facts.policy}{where}{advice}")


def alignment_verdict(
    alignment: Section | None, dkim: Verdict, spf: Verdict, dmarc: Section | None
) -> Verdict:
    """From the alignment simulation when it ran, else an estimate from the records.

    Only the DMARC predictions count: R4 asks that SPF *or* DKIM align, so an SPF problem on
    a path whose DKIM aligns (``spf.sender_not_authorized`` beside a passing DMARC) is not
    an alignment failure.
    """
    predictions = _of(dmarc, WILL_FAIL.id) + _of(alignment, WILL_FAIL.id)
    predicted = [f for f in predictions if f.is_problem]
    if predicted:
        return Verdict(ItemStatus.FAIL, _titles(predicted))
    if alignment is not None:
        passed = [f for f in predictions if f.status is Status.PASS]
        if passed:
            return Verdict(ItemStatus.PASS, _titles(passed))
        return Verdict(ItemStatus.UNKNOWN, _titles(predictions) or "no alignment result")
    estimate = "estimated from the records (the alignment simulation is not in this check)"
    if dkim.status is ItemStatus.PASS:
        return Verdict(
            ItemStatus.PASS,
            f"{estimate}: a key under the From domain lets a signature with d= that domain "
            "align, provided the service signs with it",
        )
    if spf.status is ItemStatus.PASS:
        return Verdict(
            ItemStatus.UNKNOWN,
            f"{estimate}: only SPF could align, and that depends on the MAIL FROM domain "
            "the service uses",
        )
    return Verdict(ItemStatus.FAIL, f"{estimate}: neither SPF nor DKIM can pass for the domain")


def _service_names(services: Section | None) -> str:
    facts = services.facts if services else None
    if isinstance(facts, ServicesFacts):
        return ", ".join(d.name for d in facts.detected)
    return ""


def reverse_dns_verdict(ptr: Section | None, services: Section | None) -> Verdict:
    """A sending service's IPs are the service's; own servers are judged by their MX PTRs."""
    names = _service_names(services)
    if names:
        return Verdict(
            ItemStatus.PASS,
            f"mail leaves through {names}, whose sending IPs carry the service's reverse DNS "
            "(the provider's side, not looked up here)",
        )
    found = _of(ptr, "ptr.")
    if any(f.is_problem for f in found):
        return Verdict(ItemStatus.FAIL, _titles(f for f in found if f.is_problem))
    if found and all(f.status is Status.PASS for f in found):
        return Verdict(
            ItemStatus.PASS,
            "the MX addresses have forward-confirmed reverse DNS (assuming they also send)",
        )
    return Verdict(ItemStatus.UNKNOWN, _titles(found) or "no own sending server is known")


def tls_verdict(smtp: Section | None, services: Section | None) -> Verdict:
    names = _service_names(services)
    if names:
        return Verdict(
            ItemStatus.PASS, f"{names} send over TLS (the provider's side, not probed here)"
        )
    found = _of(smtp, "smtp.")
    missing = [f for f in found if f.id == "smtp.starttls_missing" and f.is_problem]
    if missing:
        return Verdict(ItemStatus.FAIL, _titles(missing))
    if any(f.id == "smtp.tls_ok" and f.status is Status.PASS for f in found):
        return Verdict(ItemStatus.PASS, "the domain's own mail servers offer STARTTLS")
    return Verdict(ItemStatus.UNKNOWN, "the mail servers were not probed")


def _uris(value: str) -> list[str]:
    return [u.strip() for u in re.findall(r"<([^>]*)>", value)]


def unsubscribe_verdict(headers: Sequence[tuple[str, str]] | None) -> Verdict:
    """RFC 8058 §3: an https URI in List-Unsubscribe and the exact one-click Post value."""
    if headers is None:
        return Verdict(ItemStatus.UNKNOWN, "the draft's headers were not available")
    given = {name.lower(): value.strip() for name, value in headers}
    listed, post = given.get("list-unsubscribe"), given.get("list-unsubscribe-post")
    if listed is None and post is None:
        return Verdict(
            ItemStatus.FAIL,
            "the draft has no List-Unsubscribe headers: fine for person-to-person mail, but "
            "bulk and marketing mail needs them",
            Severity.INFO,
        )
    problems = []
    if not any(u.lower().startswith("https://") for u in _uris(listed or "")):
        problems.append("List-Unsubscribe has no <https://…> URI")
    if post != ONE_CLICK:
        problems.append(f"List-Unsubscribe-Post is not exactly `{ONE_CLICK}`")
    if problems:
        return Verdict(ItemStatus.FAIL, "; ".join(problems))
    return Verdict(
        ItemStatus.PASS,
        "one-click headers present; the DKIM signature must also cover both headers",
    )


# -- the roll-up (pure) ---------------------------------------------------------------------


def combine(spf: Verdict, dkim: Verdict, *, both: bool) -> Verdict:
    """R1 (either passes) and R2 (both pass) from the two verdicts."""
    statuses = {spf.status, dkim.status}
    why = f"{spf.why}. {dkim.why}"
    if both:
        if statuses == {ItemStatus.PASS}:
            return Verdict(ItemStatus.PASS, why)
        return Verdict(ItemStatus.FAIL if ItemStatus.FAIL in statuses else ItemStatus.UNKNOWN, why)
    if ItemStatus.PASS in statuses:
        return Verdict(ItemStatus.PASS, why)
    return Verdict(ItemStatus.FAIL if statuses == {ItemStatus.FAIL} else ItemStatus.UNKNOWN, why)


def checklist(verdicts: Sequence[Verdict]) -> tuple[Requirement, ...]:
    """The lines of the checklist: the checkable ones in order, then the uncheckable ones."""
    lines = [
        Requirement(r.id, text, providers, v.status, v.why)
        for (r, text, providers), v in zip(CHECKABLE, verdicts, strict=True)
    ]
    lines += [
        Requirement(NOT_CHECKABLE.id, text, providers, ItemStatus.NOT_CHECKABLE, why)
        for text, providers, why in UNCHECKABLE
    ]
    return tuple(lines)


def findings(facts: RequirementsFacts, verdicts: Sequence[Verdict]) -> list[Finding]:
    """One finding per checkable line, and one info finding for what cannot be checked."""
    out: list[Finding] = []
    for (r, text, providers), verdict in zip(CHECKABLE, verdicts, strict=True):
        data: dict[str, Any] = {"providers": list(providers), "requirement": text}
        if verdict.status is ItemStatus.PASS:
            out.append(r.passed(facts.domain, f"Met: {text}", verdict.why, **data))
        elif verdict.status is ItemStatus.FAIL:
            out.append(
                r.failed(
                    facts.domain,
                    f"Not met: {text} ({_audience(providers)})",
                    verdict.why,
                    _FIXES[r.id],
                    severity=verdict.severity,
                    **data,
                )
            )
        else:
            out.append(r.unknown(facts.domain, verdict.why, f"Not known: {text}", **data))
    items = [line for line in facts.checklist if line.status is ItemStatus.NOT_CHECKABLE]
    out.append(
        NOT_CHECKABLE.unknown(
            facts.domain,
            " ".join(f"{line.requirement}: {line.why}." for line in items),
            "Some provider requirements cannot be checked here; check them yourself",
            items=[{"requirement": i.requirement, "providers": list(i.providers)} for i in items],
        )
    )
    return out


def _audience(providers: Sequence[ProviderAsk]) -> str:
    return ", ".join(f"{p.provider}: {p.applies_to}" for p in providers)


_FIXES = {
    SPF_OR_DKIM.id: "Publish an SPF record that includes your sending service, and the DKIM "
    "key (or CNAME) your service gives you; see the SPF and DKIM findings.",
    SPF_AND_DKIM.id: "Bulk senders need both: publish the SPF include and the DKIM key of your "
    "sending service; see the SPF and DKIM findings.",
    DMARC_RECORD.id: "Publish a DMARC record at _dmarc.<your domain>; `v=DMARC1; p=none; "
    "rua=mailto:<a mailbox you read>` is accepted to start.",
    ALIGNMENT.id: "Have the service sign with d=<your domain> (publish its DKIM key under your "
    "domain) or use a MAIL FROM under your domain; see the DMARC findings.",
    REVERSE_DNS.id: "Ask the owner of each sending IP to set its PTR to a name that resolves "
    "back to the IP.",
    TLS.id: "Enable STARTTLS with a valid certificate on your mail servers.",
    ONE_CLICK_UNSUBSCRIBE.id: "For subscribed or marketing mail, add `List-Unsubscribe: "
    f"<https://…>` and `List-Unsubscribe-Post: {ONE_CLICK}`, both covered by the DKIM "
    "signature, and honour requests within 2 days.",
}


# -- the check ---------------------------------------------------------------------------


async def check(ctx: CheckContext) -> Section:
    """The "requirements" section: waits for the sections it rolls up, then judges."""
    spf_s, dkim_s, dmarc_s, ptr_s, smtp_s, services_s, alignment_s = [
        await ctx.optional(name)
        for name in ("spf", "dkim", "dmarc", "ptr", "smtp", "services", "alignment")
    ]
    spf, dkim = spf_verdict(spf_s), dkim_verdict(dkim_s)
    verdicts = (
        combine(spf, dkim, both=False),
        combine(spf, dkim, both=True),
        dmarc_verdict(dmarc_s),
        alignment_verdict(alignment_s, dkim, spf, dmarc_s),
        reverse_dns_verdict(ptr_s, services_s),
        tls_verdict(smtp_s, services_s),
        unsubscribe_verdict(ctx.request.headers),
    )
    headers = "given" if ctx.request.headers is not None else verdicts[-1].why
    facts = RequirementsFacts(
        ctx.request.domain,
        checklist(verdicts),
        "alignment" if alignment_s is not None else "spf/dkim/dmarc records",
        headers,
    )
    return Section(tuple(findings(facts, verdicts)), facts)
