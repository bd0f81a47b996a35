"""Alignment simulation: will this From address, sent through this service, pass DMARC?

For each sending service the domain uses (or the one the request names) the check predicts
what a receiver will see (DOMAIN.md §1.2–1.4, §2, §5.2): SPF is ``check_host()`` with an
address from the service's own published range against the MAIL FROM domain that service
uses; DKIM is whether the service can sign with a key under the From domain; DMARC combines
both under ``aspf``/``adkim`` with RFC 9989 organizational domains, and the policy decides
what happens to a message that aligns neither way.

It reuses the facts of the services, DKIM and DMARC sections; its own lookups are the
service's SPF include (for an egress address), the ``check_host()`` walk and the tree walk of
an identifier that differs from the From domain, most of them already answered for the
session.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Any

from ..dns import DnsSession
from ..engine import CheckContext, Section
from ..model import Finding, Severity
from ..providers import Catalog, Service
from .dkim import DkimFacts, DkimKey, SelectorFacts, selector_facts
from .dmarc import WILL_FAIL, DmarcFacts
from .dmarc_orgdomain import aligned, discover_organizational_domain
from .dmarc_record import parse
from .services import dkim_name, known, services_of
from .spf import sender_authorization
from .spf_eval import SpfResultCode, check_host, query_name
from .spf_syntax import SpfSyntaxError, parse_record, select_records

#: How deep the egress search follows include/redirect inside a service's own SPF record
#: (spf.protection.outlook.com nests includes two levels deep).
EGRESS_DEPTH = 4
#: SendGrid's automated security names the return path ``em<N>.<domain>`` and the DKIM
#: targets ``s1.domainkey.u<N>.wl<M>.sendgrid.net`` with the same N (DOMAIN.md §2.3).
SENDGRID_USER = re.compile(r"(?:^|\.)u(\d+)\.wl\d+\.")
#: What a receiver does with a message that fails DMARC, by the policy it applies.
DISPOSITION = {"reject": "reject", "quarantine": "quarantine", "none": "deliver"}
CONSEQUENCE = {
    "reject": "the message will be rejected",
    "quarantine": "the message will go to spam (quarantine)",
    "none": "it is delivered for now (monitoring only), but fails any enforced policy",
}


@dataclass(frozen=True, slots=True)
class SpfPrediction:
    """What SPF gives for the service's MAIL FROM domain from one of its egress addresses."""

    mail_from: str  # the MAIL FROM (return-path) domain; "" when it cannot be known
    ip: str  # the egress address evaluated; "" when none is known
    result: str  # a check_host() result (RFC 7208 §2.6), or "unknown"
    aligned: bool | None
    reason: str


@dataclass(frozen=True, slots=True)
class DkimPrediction:
    """Whether the service's signature verifies, with which d=, and whether d= aligns."""

    domain: str  # the d= the service signs with; "" when it does not sign as anyone known
    selector: str
    result: str  # "pass" | "fail" | "none" | "unknown"
    aligned: bool | None
    reason: str


@dataclass(frozen=True, slots=True)
class Prediction:
    """The whole verdict for one service: SPF, DKIM, DMARC and what the receiver does."""

    service: str
    name: str
    spf: SpfPrediction
    dkim: DkimPrediction
    dmarc: str  # "pass" | "fail" | "none" (no policy) | "unknown"
    policy: str | None  # the policy receivers apply (after t=y)
    disposition: str  # "deliver" | "quarantine" | "reject" | "unknown"
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AlignmentFacts:
    domain: str
    aspf: str
    adkim: str
    policy: str | None
    predictions: tuple[Prediction, ...] = ()
    unknown: str = ""
    #: The Microsoft 365 tenant's initial domain when the request knew it: the d= Microsoft
    #: 365 signs with while DKIM is not enabled for the From domain.
    tenant_domain: str | None = None


@dataclass(frozen=True, slots=True)
class _Policy:
    """The DMARC inputs: alignment modes, the applied policy, the From's org domain."""

    aspf: str
    adkim: str
    policy: str | None
    organizational_domain: str
    unknown: str = ""
    tenant_domain: str | None = None


# -- pure parts ----------------------------------------------------------------------------


def first_host(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """The first usable host of a range: the address itself for a /32, /31, /128 or /127."""
    if network.num_addresses <= 2:
        return str(network.network_address)
    return str(network.network_address + 1)


def usable(key: DkimKey) -> bool:
    """Whether a verifier can accept a signature made with this key (RFC 6376, RFC 8301)."""
    if key.error or key.revoked:
        return False
    if key.key_type == "rsa" and (key.bits or 0) < 1024:
        return False
    if key.hashes and "sha256" not in key.hashes:
        return False
    return bool({"*", "email"} & set(key.service_types))


def decide(spf_aligned: bool | None, dkim_aligned: bool | None, policy: _Policy) -> tuple[str, str]:
    """(DMARC result, disposition): RFC 9989 §4.4 pass on either aligned pass; otherwise
    the applied policy decides, and anything unknown on the way makes the result unknown."""
    if spf_aligned is True or dkim_aligned is True:
        return "pass", "deliver"
    if spf_aligned is None or dkim_aligned is None or policy.unknown:
        return ("fail" if policy.unknown else "unknown"), "unknown"
    if policy.policy is None:
        return "none", "deliver"
    return "fail", DISPOSITION[policy.policy]


def service_selectors(
    service: Service, dkim: DkimFacts, services: Catalog
) -> tuple[SelectorFacts, ...]:
    """The selectors under the From domain that belong to ``service``: those whose CNAME
    leads into it, or (for a service that publishes plain TXT keys) its own selectors."""

    def belongs(sel: SelectorFacts) -> bool:
        owners = {s.id for t in sel.cname_chain if (s := services.by_dkim_target(t)) is not None}
        if owners:
            return service.id in owners
        return not service.dkim_cname_suffixes and sel.selector in service.dkim_selectors

    return tuple(sel for sel in dkim.selectors if belongs(sel))


def return_path(service: Service, domain: str, selectors: tuple[SelectorFacts, ...]) -> str:
    """The MAIL FROM domain the service uses for ``domain``, or "" when DNS cannot show it."""
    if service.return_path == "from":
        return domain  # DOMAIN.md §2.1: Microsoft 365 uses the sender's own address
    if service.return_path == "service":
        return service.return_path_domain
    if service.id == "sendgrid":
        for sel in selectors:
            for target in sel.cname_chain:
                match = SENDGRID_USER.search(target)
                if match:
                    return f"em{match.group(1)}.{domain}"
    return ""


def is_initial_domain(m365: Service, name: str) -> bool:
    """Whether ``name`` is a Microsoft 365 tenant's initial domain: one label under the
    service's onmicrosoft suffix (``<tenant>.onmicrosoft.com``, DOMAIN.md §2.1)."""
    tenant, dot, rest = name.partition(".")
    return bool(tenant and dot) and any(
        rest == s for s in m365.dkim_cname_suffixes if s.split(".")[0] == "onmicrosoft"
    )


def m365_selector(selector: str, domain: str) -> str:
    """The name Microsoft 365 gives a domain's key under the initial domain:
    ``selector1-contoso-com`` for selector1 of contoso.com (DOMAIN.md §2.1)."""
    return f"{selector}-{domain.replace('.', '-')}"


def tenant_selector(service: Service, domain: str) -> str | None:
    """For a From on a Microsoft 365 tenant domain (``<tenant>.onmicrosoft.com``), the
    selector its mail is signed with: ``selector1-<tenant>-onmicrosoft-com`` (DOMAIN.md §2.1)."""
    if service.id != "microsoft365" or not is_initial_domain(service, domain):
        return None
    return m365_selector("selector1", domain)


def _dkim_prediction(
    service: Service,
    domain: str,
    selectors: tuple[SelectorFacts, ...],
    tenant_domain: str | None = None,
) -> DkimPrediction:
    """The DKIM side, before alignment: which d= the service signs with, and whether it
    verifies. Alignment is filled in later (it may need the tree walk of d=).

    ``tenant_domain`` is the Microsoft 365 tenant's initial domain when the request knows
    it: without a selector of its own, the From domain's mail is signed with that d=."""
    good = next((s for s in selectors if any(usable(k) for k in s.keys)), None)
    if good is not None:
        return DkimPrediction(
            domain,
            good.selector,
            "pass",
            None,
            f"{service.name} signs with {good.selector}._domainkey.{domain} (d={domain})",
        )
    broken = next((s for s in selectors if s.keys), None)
    if broken is not None:
        why = (
            next(
                (k.error or ("revoked: p= is empty" if k.revoked else "") for k in broken.keys),
                "",
            )
            or "too weak or not for email"
        )
        return DkimPrediction(
            domain,
            broken.selector,
            "fail",
            False,
            f"the DKIM key at {broken.name} cannot be used ({why}), so {service.name}'s "
            "signature fails",
        )
    failed = [s for s in selectors if s.outcome not in ("answer", "nxdomain", "nodata")]
    if failed:
        return DkimPrediction(
            "",
            failed[0].selector,
            "unknown",
            None,
            f"the DKIM key lookup failed: {failed[0].name}: "
            f"{failed[0].reason or failed[0].outcome}",
        )
    if not service.dkim_selectors:
        return DkimPrediction(
            "",
            "",
            "unknown",
            None,
            f"{service.name}'s DKIM selectors cannot be guessed; give them to check the key",
        )
    names = "/".join(service.dkim_selectors)
    if service.id == "microsoft365":
        return _m365_default_signature(service, domain, names, tenant_domain)
    return DkimPrediction(
        "",
        "",
        "none",
        False,
        f"no DKIM selector {names} published for {domain}, so {service.name} does not sign "
        f"as {domain}",
    )


def _m365_default_signature(
    service: Service, domain: str, names: str, tenant_domain: str | None
) -> DkimPrediction:
    """Microsoft 365 signs every message; until DKIM is enabled for a custom domain it signs
    with the tenant's initial domain (DOMAIN.md §2.1), named when the request knows it."""
    why = f"no DKIM selector {names} published for {domain}, so {service.name} signs as "
    if tenant_domain is None:
        return DkimPrediction(
            "<tenant>.onmicrosoft.com", "", "pass", False, why + "<tenant>.onmicrosoft.com"
        )
    return DkimPrediction(
        tenant_domain,
        "",
        "pass",
        False,
        why + f"your tenant's initial domain {tenant_domain} (d={tenant_domain}), its default "
        f"until DKIM is enabled for {domain}",
    )


def _chain(prediction: Prediction, domain: str, policy: _Policy) -> tuple[str, ...]:
    """The reasons, in the order a receiver meets them."""
    spf, dkim = prediction.spf, prediction.dkim
    if spf.result == SpfResultCode.PASS and spf.aligned is False:
        first = (
            f"SPF passes for {spf.mail_from} but does not align with {domain} (aspf={policy.aspf})"
        )
    elif spf.result == SpfResultCode.PASS and spf.aligned:
        first = f"SPF passes for {spf.mail_from} and aligns with {domain} (aspf={policy.aspf})"
    else:
        first = spf.reason
    second = dkim.reason
    if dkim.result == "pass" and dkim.aligned is False:
        second = f"{dkim.reason}, which does not align with {domain} (adkim={policy.adkim})"
    if prediction.dmarc == "pass":
        last = "DMARC passes"
    elif prediction.dmarc == "unknown":
        last = "so the DMARC result cannot be predicted"
    elif policy.unknown:
        last = f"DMARC fails, and the policy could not be read ({policy.unknown})"
    elif policy.policy is None:
        last = f"DMARC fails; {domain} publishes no DMARC policy, so receivers decide alone"
    else:
        last = f"DMARC p={policy.policy}: {CONSEQUENCE[policy.policy]}"
    return (first, second, last)


def finding(prediction: Prediction, domain: str, policy: _Policy) -> Finding:
    """The ``dmarc.will_fail`` finding of one service's prediction."""
    spf, dkim = prediction.spf, prediction.dkim
    detail = "; ".join(prediction.reasons) + "."
    tenant = policy.tenant_domain if prediction.service == "microsoft365" else None
    data: dict[str, Any] = {
        "service": prediction.service,
        "spf_result": spf.result,
        "spf_domain": spf.mail_from,
        "spf_aligned": spf.aligned,
        "ip": spf.ip,
        "dkim_result": dkim.result,
        "dkim_domain": dkim.domain,
        "dkim_aligned": dkim.aligned,
        "dmarc": prediction.dmarc,
        "policy": prediction.policy,
        "disposition": prediction.disposition,
    }
    if tenant is not None:
        data["tenant_domain"] = tenant
    path = f"mail sent through {prediction.name}"
    title_path = f"Mail sent through {prediction.name}"
    if prediction.dmarc == "pass":
        which = " and ".join(n for n, ok in (("SPF", spf.aligned), ("DKIM", dkim.aligned)) if ok)
        return WILL_FAIL.passed(
            domain,
            f"{title_path} authenticates as {domain} ({which} aligned)",
            detail,
            **data,
        )
    if prediction.dmarc == "unknown" or (prediction.dmarc == "fail" and policy.unknown):
        return WILL_FAIL.unknown(domain, detail, f"Could not predict DMARC for {path}", **data)
    severity = (
        Severity.CRITICAL if prediction.policy in ("reject", "quarantine") else Severity.WARNING
    )
    return WILL_FAIL.failed(
        domain,
        f"{title_path} will fail DMARC: "
        + {"reject": "it will be rejected", "quarantine": "it will go to spam"}.get(
            prediction.policy or "", "neither SPF nor DKIM aligns"
        ),
        detail,
        _fix(prediction, domain, policy),
        severity=severity,
        **data,
    )


def _fix(prediction: Prediction, domain: str, policy: _Policy) -> str:
    """Each way to make one identifier align, most durable first (DKIM survives forwarding)."""
    name, spf = prediction.name, prediction.spf
    steps = []
    tenant = policy.tenant_domain if prediction.service == "microsoft365" else None
    if prediction.dkim.aligned is not True and tenant is not None and not prediction.dkim.selector:
        steps.append(
            f"let {name} sign as {domain}: publish the two DKIM CNAMEs selector1 and selector2 "
            f"under {domain} that point into {tenant} (the DKIM finding lists them ready to "
            f"paste) and enable signing for {domain} in {name}"
        )
    elif prediction.dkim.aligned is not True:
        steps.append(
            f"let {name} sign as {domain}: publish a working key at its DKIM selector under "
            f"{domain} (see the DKIM findings) and enable signing in {name}"
        )
    own = spf.mail_from and (spf.mail_from == domain or spf.mail_from.endswith("." + domain))
    if not own:
        steps.append(f"or configure a custom return-path (MAIL FROM) domain under {domain}")
    elif spf.result != SpfResultCode.PASS:
        steps.append(f"or authorise {name} in the SPF record of {spf.mail_from}")
    elif policy.aspf == "s":
        steps.append(
            f"or relax the DMARC record to aspf=r, so the return path {spf.mail_from} aligns"
        )
    text = "; ".join(steps)
    return text[0].upper() + text[1:] + "."


# -- lookups -------------------------------------------------------------------------------


async def egress_address(dns: DnsSession, include: str, depth: int = 0) -> tuple[str, str]:
    """(the first usable host of the first ip4/ip6 range in ``include``'s SPF, following its
    own include/redirect in order; or "" and why none is known)."""
    txt = await dns.query(query_name(include), "TXT")
    if txt.failed:
        return "", txt.describe()
    records = select_records(txt.texts()) if txt.ok else ()
    if len(records) != 1:
        return "", f"{include} does not publish exactly one SPF record"
    record = parse_record(records[0])
    if isinstance(record, SpfSyntaxError):
        return "", f"{include}: {record}"
    nested: list[str] = []
    for mechanism in record.mechanisms:
        if mechanism.network is not None and mechanism.qualifier.result == "pass":
            return first_host(mechanism.network), ""
        literal = mechanism.domain.literal if mechanism.domain is not None else None
        if mechanism.name == "include" and literal:
            nested.append(literal)
    if record.redirect_used and record.redirect is not None and record.redirect.value.literal:
        nested.append(record.redirect.value.literal)
    why = f"no ip4/ip6 range in the SPF record of {include}"
    if depth < EGRESS_DEPTH:
        for target in nested:
            ip, why = await egress_address(dns, target.lower().rstrip("."), depth + 1)
            if ip:
                return ip, ""
    return "", why


async def _aligned(
    dns: DnsSession, identifier: str, domain: str, mode: str, from_org: str
) -> tuple[bool | None, str]:
    """Identifier alignment with the From domain (RFC 9989 §4.4); None when the tree walk
    of the identifier failed and the answer depends on it."""
    identifier = identifier.lower().rstrip(".")
    if identifier == domain or mode == "s":
        return identifier == domain, ""
    org = await discover_organizational_domain(dns, identifier)
    if org.uncertain:
        return None, org.uncertain
    orgs = {domain: from_org, identifier: org.domain}
    return aligned(identifier, domain, mode, orgs.__getitem__), ""


async def _spf_prediction(
    ctx: CheckContext, service: Service, mail_from: str, policy: _Policy
) -> tuple[SpfPrediction, Finding | None]:
    domain = ctx.request.domain
    if not service.spf_includes:
        why = f"no published sending range is known for {service.name}, so SPF is not predicted"
        return SpfPrediction(mail_from, "", "unknown", None, why), None
    ip, why = await egress_address(ctx.dns, service.spf_includes[0])
    if not ip:
        why = f"no egress address of {service.name} could be found: {why}"
        return SpfPrediction(mail_from, "", "unknown", None, why), None
    if not mail_from:
        why = f"the return-path (MAIL FROM) domain {service.name} uses cannot be seen in DNS"
        return SpfPrediction("", ip, "unknown", None, why), None
    sender = (
        ctx.request.address
        if mail_from == domain and ctx.request.address
        else f"postmaster@{mail_from}"
    )
    result = await check_host(ip, mail_from, sender, mail_from, ctx.dns)
    own = mail_from == domain or mail_from.endswith("." + domain)
    found = sender_authorization(ip, sender, result) if own else None
    code = result.result
    if code is SpfResultCode.TEMPERROR:
        why = f"SPF for {mail_from} could not be evaluated: {result.reason}"
        return SpfPrediction(mail_from, ip, code.value, None, why), found
    if code is not SpfResultCode.PASS:
        why = (
            f"SPF {code.value} for {mail_from} from {service.name}'s address {ip} ({result.reason})"
        )
        return SpfPrediction(mail_from, ip, code.value, False, why), found
    is_aligned, uncertain = await _aligned(
        ctx.dns, mail_from, domain, policy.aspf, policy.organizational_domain
    )
    why = (
        f"SPF passes for {mail_from}, but its organizational domain is unknown ({uncertain})"
        if is_aligned is None
        else ""
    )
    return SpfPrediction(mail_from, ip, code.value, is_aligned, why), found


async def _with_alignment(
    dns: DnsSession, dkim: DkimPrediction, domain: str, policy: _Policy
) -> DkimPrediction:
    if dkim.result != "pass" or dkim.aligned is not None:
        return dkim
    is_aligned, uncertain = await _aligned(
        dns, dkim.domain, domain, policy.adkim, policy.organizational_domain
    )
    reason = dkim.reason if is_aligned is not None else f"{dkim.reason}; {uncertain}"
    return replace(dkim, aligned=is_aligned, reason=reason)


async def predict(
    ctx: CheckContext, service: Service, dkim: DkimFacts, services: Catalog, policy: _Policy
) -> tuple[Prediction, Finding | None]:
    """One service's prediction, and its ``spf.sender_not_authorized`` finding if any."""
    domain = ctx.request.domain
    selectors = service_selectors(service, dkim, services)
    spf, authorization = await _spf_prediction(
        ctx, service, return_path(service, domain, selectors), policy
    )
    tenant = tenant_selector(service, domain)
    if tenant is not None and not any(usable(k) for s in selectors for k in s.keys):
        own = selector_facts(tenant, await ctx.dns.query(dkim_name(tenant, domain), "TXT"))
        if own.keys:
            selectors = (own,)
    signed = await _with_alignment(
        ctx.dns, _dkim_prediction(service, domain, selectors, policy.tenant_domain), domain, policy
    )
    result, disposition = decide(spf.aligned, signed.aligned, policy)
    draft = Prediction(
        service.id, service.name, spf, signed, result, policy.policy, disposition, ()
    )
    return replace(draft, reasons=_chain(draft, domain, policy)), authorization


def _policy(dmarc: DmarcFacts | None, domain: str, tenant_domain: str | None) -> _Policy:
    if dmarc is None:
        return _Policy("r", "r", None, domain, "the DMARC check did not run", tenant_domain)
    record = parse(dmarc.record) if dmarc.record else None
    return _Policy(
        record.aspf if record else "r",
        record.adkim if record else "r",
        dmarc.applied_policy,
        dmarc.organizational_domain or domain,
        dmarc.unknown,
        tenant_domain,
    )


async def check(ctx: CheckContext) -> Section:
    """The "alignment" section: one DMARC prediction per sending service."""
    domain = ctx.request.domain
    services = known(ctx)
    detected = await services_of(ctx)
    chosen = services.get(ctx.request.service) if ctx.request.service else None
    targets = (
        (chosen,)
        if chosen is not None
        else tuple(s for i in detected.ids if (s := services.get(i)) is not None)
    )
    dmarc_facts, dkim_facts = await _facts(ctx, "dmarc"), await _facts(ctx, "dkim")
    dmarc = dmarc_facts if isinstance(dmarc_facts, DmarcFacts) else None
    dkim = dkim_facts if isinstance(dkim_facts, DkimFacts) else DkimFacts(domain)
    tenant = ctx.request.tenant_domain.lower().rstrip(".") if ctx.request.tenant_domain else None
    policy = _policy(dmarc, domain, tenant)
    if not targets:
        why = (
            "no sending service was recognised in SPF, MX or DKIM, so there is no path to "
            "simulate; name the service in the request"
        )
        return Section(
            (WILL_FAIL.unknown(domain, why, "Could not predict DMARC: no sending service known"),),
            AlignmentFacts(domain, policy.aspf, policy.adkim, policy.policy, (), why, tenant),
        )
    results = await asyncio.gather(*(predict(ctx, s, dkim, services, policy) for s in targets))
    out: list[Finding] = []
    for prediction, authorization in results:
        out.append(finding(prediction, domain, policy))
        if authorization is not None:
            out.append(authorization)
    predictions = tuple(p for p, _ in results)
    facts = AlignmentFacts(
        domain, policy.aspf, policy.adkim, policy.policy, predictions, tenant_domain=tenant
    )
    return Section(tuple(out), facts)


async def _facts(ctx: CheckContext, name: str) -> object:
    """Another section's facts, or None when that check is not in this plan."""
    section = await ctx.optional(name)
    return section.facts if section is not None else None
