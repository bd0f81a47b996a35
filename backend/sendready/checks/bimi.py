"""BIMI (draft-brand-indicators): the default._bimi record, the DMARC enforcement it needs, and
the SVG logo fetched over guarded HTTPS and checked against SVG Tiny PS basics. Info severity:
BIMI changes how mail is displayed, not whether it is delivered (DOMAIN.md §1.7)."""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..engine import CheckContext, Section
from ..fetch import SVG_LIMIT, fetch
from ..model import Finding, Severity, rule

SPEC = "draft-brand-indicators-for-message-identification"
SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

NOT_PUBLISHED = rule(
    "bimi.not_published", "No BIMI record: no brand logo is shown.", f"{SPEC} §4", Severity.INFO
)
RECORD = rule(
    "bimi.record_invalid",
    "The default._bimi record is malformed (v=BIMI1; l=https URL; a=https URL).",
    f"{SPEC} §4.2",
    Severity.INFO,
)
DMARC = rule(
    "bimi.dmarc_not_enforced",
    "BIMI needs DMARC at enforcement (p=quarantine or reject, sp not none).",
    f"{SPEC} §3",
    Severity.INFO,
)
LOGO_UNREACHABLE = rule(
    "bimi.logo_unreachable", "The BIMI logo (l=) cannot be fetched.", f"{SPEC} §5", Severity.INFO
)
SVG = rule(
    "bimi.svg_invalid",
    "The BIMI logo is not SVG Tiny PS: baseProfile tiny-ps, a title, square, no scripts or "
    "external references, at most 32 KB.",
    f"{SPEC} §5; SVG Tiny Portable/Secure",
    Severity.INFO,
)
CERTIFICATE = rule(
    "bimi.certificate",
    "The BIMI mark certificate (a=); some mailbox providers show logos only with one.",
    f"{SPEC} §4.2",
    Severity.INFO,
)


@dataclass(frozen=True, slots=True)
class BimiRecord:
    record: str
    logo: str = ""
    authority: str = ""
    declined: bool = False
    error: str = ""


@dataclass(frozen=True, slots=True)
class BimiFacts:
    domain: str
    record: BimiRecord | None = None
    dmarc_policy: str = ""
    svg_problems: tuple[str, ...] = ()


# -- pure ------------------------------------------------------------------------------


def parse_record(text: str) -> BimiRecord:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep:
            return BimiRecord(text, error=f"{part!r} is not a tag=value pair")
        if name in tags:
            return BimiRecord(text, error=f"the tag {name}= appears twice")
        tags[name] = value.strip()
    if tags.get("v") != "BIMI1":
        return BimiRecord(text, error="v=BIMI1 must come first")
    logo, authority = tags.get("l", ""), tags.get("a", "")
    for tag, value in (("l", logo), ("a", authority)):
        if value and (urlsplit(value).scheme != "https" or not urlsplit(value).hostname):
            return BimiRecord(text, logo, authority, error=f"{tag}= must be an https URL")
    if "l" not in tags:
        return BimiRecord(text, error="the l= tag (the logo URL) is missing")
    return BimiRecord(text, logo, authority, declined=not logo and not authority)


def dmarc_policy(texts: tuple[str, ...]) -> tuple[str, str]:
    """(p, sp) of the one v=DMARC1 record among ``texts``; ("", "") when there is none."""
    records = [t for t in texts if re.match(r"^v=DMARC1\s*(;|$)", t)]
    if len(records) != 1:
        return "", ""
    tags: dict[str, str] = {}
    for part in records[0].split(";"):
        name, _, value = part.partition("=")
        tags.setdefault(name.strip().lower(), value.strip().lower())
    return tags.get("p", ""), tags.get("sp", "")


def svg_problems(body: bytes) -> list[str]:
    """What keeps an SVG from being SVG Tiny PS (the basics mailbox providers check)."""
    if len(body) > SVG_LIMIT:
        return [f"the file is {len(body)} bytes; the limit is {SVG_LIMIT}"]
    if re.search(rb"<!ENTITY", body, re.IGNORECASE):
        return ["the file declares XML entities (not allowed)"]
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    if root.tag != f"{SVG_NS}svg":
        return [f"the root element is {root.tag!r}, not an SVG <svg>"]
    out: list[str] = []
    if root.get("baseProfile") != "tiny-ps":
        out.append(f'baseProfile is {root.get("baseProfile")!r}, must be "tiny-ps"')
    if root.get("version") != "1.2":
        out.append(f'version is {root.get("version")!r}, must be "1.2"')
    box = (root.get("viewBox") or "").replace(",", " ").split()
    try:
        width, height = float(box[2]), float(box[3])
    except (IndexError, ValueError):
        out.append("no usable viewBox")
    else:
        if width != height or width <= 0:
            out.append(f"the viewBox is {box[2]}×{box[3]}; the logo must be square")
    if root.find(f"{SVG_NS}title") is None:
        out.append("no <title> element")
    for element in root.iter():
        tag = element.tag.removeprefix(SVG_NS)
        if tag in ("script", "foreignObject"):
            out.append(f"a <{tag}> element (not allowed)")
        for name, value in element.attrib.items():
            if name.lower().startswith("on"):
                out.append(f"an event handler {name}= on <{tag}>")
            if name in ("href", XLINK_HREF) and not value.startswith("#"):
                out.append(f"an external reference {value[:60]!r} on <{tag}>")
        if tag == "image":
            out.append("an <image> element (raster or external images are not allowed)")
    return list(dict.fromkeys(out))


# -- the check -----------------------------------------------------------------------


async def check(ctx: CheckContext) -> Section:
    """The "bimi" section."""
    domain = ctx.request.domain
    name = f"default._bimi.{domain}"
    txt, dmarc = await asyncio.gather(
        ctx.dns.query(name, "TXT"), ctx.dns.query(f"_dmarc.{domain}", "TXT")
    )
    if txt.failed:
        return Section((NOT_PUBLISHED.unknown(domain, f"TXT {name}: {txt.describe()}"),), None)
    records = [t for t in (txt.texts() if txt.ok else ()) if re.match(r"^v=BIMI1\s*(;|$)", t)]
    if not records:
        return Section(
            (
                NOT_PUBLISHED.failed(
                    domain,
                    "No BIMI record",
                    f"No v=BIMI1 TXT record at {name}.",
                    f'To show a logo: publish TXT {name} "v=BIMI1; l=https://<host>/logo.svg" '
                    "with an SVG Tiny PS logo, once DMARC is at p=quarantine or p=reject.",
                ),
            ),
            BimiFacts(domain),
        )
    if len(records) > 1:
        return Section(
            (
                RECORD.failed(
                    domain,
                    f"{len(records)} BIMI records at {name}",
                    " | ".join(records),
                    "Keep exactly one v=BIMI1 record.",
                ),
            ),
            BimiFacts(domain),
        )
    record = parse_record(records[0])
    out: list[Finding] = []
    if record.error:
        out.append(
            RECORD.failed(
                domain,
                f"The BIMI record is invalid: {record.error}",
                f'{name}: "{record.record}"',
                f'Publish TXT {name} "v=BIMI1; l=https://<host>/logo.svg".',
            )
        )
        return Section(tuple(out), BimiFacts(domain, record))
    if record.declined:
        out.append(RECORD.passed(domain, "BIMI is declined (empty l= and a=)", record.record))
        return Section(tuple(out), BimiFacts(domain, record))
    from_section = await _dmarc_from_section(ctx, domain)
    if from_section is not None:
        dmarc_out, policy = from_section
        out.extend(dmarc_out)
    else:
        out.extend(_dmarc_findings(domain, dmarc.failed, dmarc.describe(), dmarc.texts()))
        policy = dmarc_policy(dmarc.texts())[0] if dmarc.ok else ""
    problems: list[str] = []
    if record.logo:
        result = await fetch(record.logo, ctx.dns, ctx.settings, max_bytes=SVG_LIMIT, after=txt)
        if result.error is not None and result.error.network:
            out.append(
                LOGO_UNREACHABLE.unknown(domain, f"{record.logo}: {result.reason}", url=record.logo)
            )
        elif result.error is not None or result.status != 200:
            why = result.reason or f"HTTP {result.status}"
            out.append(
                LOGO_UNREACHABLE.failed(
                    domain,
                    f"The BIMI logo cannot be fetched: {why}",
                    f"GET {record.logo}: {why}",
                    f"Serve the SVG at {record.logo} with status 200, at most 32 KB, over "
                    "HTTPS with a valid certificate.",
                    url=record.logo,
                )
            )
        else:
            problems = svg_problems(result.body)
            if problems:
                out.append(
                    SVG.failed(
                        domain,
                        "The BIMI logo is not SVG Tiny PS: " + problems[0],
                        f"{record.logo}: " + "; ".join(problems),
                        'Export the logo as SVG Tiny PS (baseProfile="tiny-ps" version="1.2", '
                        "a <title>, a square viewBox, no scripts, images or external links).",
                        problems=problems,
                    )
                )
            else:
                out.append(SVG.passed(domain, "The BIMI logo is SVG Tiny PS", record.logo))
    if record.authority:
        out.append(
            CERTIFICATE.unknown(
                domain,
                f"a={record.authority}: SendReady does not validate mark certificates (VMC/CMC) "
                "yet.",
                title="Mark certificate not checked",
            )
        )
    else:
        out.append(
            CERTIFICATE.failed(
                domain,
                "No mark certificate (a=)",
                "Gmail and Apple Mail show BIMI logos only with a Verified Mark Certificate or "
                "Common Mark Certificate (uncertain; providers change this).",
                "Obtain a VMC or CMC for the logo and add a=https://<host>/<cert>.pem.",
            )
        )
    return Section(tuple(out), BimiFacts(domain, record, policy, tuple(problems)))


async def _dmarc_from_section(ctx: CheckContext, domain: str) -> tuple[list[Finding], str] | None:
    """The policy in force from the DMARC check's facts (organizational-domain fallback
    included) when that check is in the plan; None to read _dmarc ourselves."""
    section = await ctx.optional("dmarc")
    if section is None:
        return None
    facts = section.facts
    if facts is None or not hasattr(facts, "policy") or not hasattr(facts, "tags"):
        return None
    if getattr(facts, "unknown", ""):
        return [DMARC.unknown(domain, f"the DMARC policy is not known: {facts.unknown}")], ""
    policy = str(getattr(facts, "applied_policy", None) or facts.policy or "")
    sp = str(facts.tags.get("sp", "")).lower()
    where = getattr(facts, "policy_domain", None) or domain
    record = getattr(facts, "record", None) or ""
    if not policy:
        finding = DMARC.failed(
            domain,
            "BIMI needs DMARC, and no DMARC policy applies to this domain",
            f"The DMARC check found no policy for {domain} (nor at its organizational domain).",
            f'Publish TXT _dmarc.{domain} "v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}".',
        )
        return [finding], ""
    return _dmarc_findings(
        domain,
        False,
        "",
        (f"v=DMARC1; p={policy}; sp={sp}" if sp else f"v=DMARC1; p={policy}",),
        where,
        record,
    ), policy


def _dmarc_findings(
    domain: str,
    failed: bool,
    described: str,
    texts: tuple[str, ...],
    where: str = "",
    shown_record: str = "",
) -> list[Finding]:
    if failed:
        return [DMARC.unknown(domain, f"TXT _dmarc.{domain}: {described}")]
    p, sp = dmarc_policy(texts)
    fix = (
        f'Move DMARC to enforcement: TXT _dmarc.{domain} "v=DMARC1; p=quarantine; '
        f'rua=mailto:dmarc@{domain}" (or p=reject), once reports show your mail passes.'
    )
    if not p:
        return [
            DMARC.failed(
                domain,
                "BIMI needs DMARC, and there is no DMARC record at this domain",
                f"No single v=DMARC1 record at _dmarc.{domain} (an organizational-domain "
                "policy was not looked up).",
                fix,
            )
        ]
    if p not in ("quarantine", "reject") or sp == "none":
        shown = f"p={p}" + (f", sp={sp}" if sp else "")
        return [
            DMARC.failed(
                domain,
                f"BIMI needs DMARC at enforcement; the policy is {shown}",
                f"_dmarc.{where or domain}: {shown_record or shown}",
                fix,
                p=p,
                sp=sp,
            )
        ]
    return [DMARC.passed(domain, f"DMARC is at enforcement (p={p})", f"_dmarc.{where or domain}")]
