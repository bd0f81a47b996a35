"""SMTP readiness: the MX hosts on 25 and the sending service's submission endpoint on 587/465
(RFC 3207, RFC 6409, RFC 8314, RFC 4954), probed concurrently within the request's budget.

The probes (``smtp/probe.py``) gather facts; :func:`findings_for` turns one probe's facts into
findings and does no I/O, so the rules are unit-tested on facts. Each failure mode has its own
id; a probe that ran out of time is ``unknown``, never a guess.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import dns.reversename

from ..dns.names import is_ip
from ..engine import CheckContext, Section
from ..model import Finding, Severity, rule
from ..providers import Catalog, Endpoint, Service, TlsMode, catalog
from ..smtp.explain import explain
from ..smtp.guard import ConnectionLimiter, process_limiter
from ..smtp.probe import Mode, Outcome, ProbeConfig, ProbeResult, Target, XOAuth2, probe
from .services import services_of

UNREACHABLE = rule(
    "smtp.unreachable",
    "The SMTP server refused the connection or cannot be reached.",
    "RFC 5321 §3.1",
    Severity.CRITICAL,
)
PORT_BLOCKED = rule(
    "smtp.port_blocked",
    "Connecting timed out: the port is most likely blocked by a firewall, the network or the ISP.",
    "RFC 5321 §3.1; RFC 8314 §3.3",
    Severity.WARNING,
)
TARGET_REFUSED = rule(
    "smtp.target_refused",
    "SendReady does not connect to this address (loopback, private, link-local or metadata).",
    "SendReady security rules; RFC 6890",
    Severity.WARNING,
)
GREETING_REJECTED = rule(
    "smtp.greeting_rejected",
    "The server greeted with a 4xx or 5xx reply instead of 220.",
    "RFC 5321 §4.3.1",
    Severity.CRITICAL,
)
SLOW_BANNER = rule(
    "smtp.slow_banner",
    "The 220 banner came late: the server may be tarpitting (delaying clients on purpose).",
    "RFC 5321 §4.5.3.2.1",
    Severity.INFO,
)
PROTOCOL_ERROR = rule(
    "smtp.protocol_error",
    "The server's replies are not valid SMTP, or it hung up mid-conversation.",
    "RFC 5321 §4.2",
    Severity.WARNING,
)
TIMEOUT = rule(
    "smtp.timeout",
    "The SMTP probe did not finish within its time budget.",
    "SendReady: request budget",
    Severity.WARNING,
)
STARTTLS_MISSING = rule(
    "smtp.starttls_missing",
    "The server does not offer STARTTLS, so mail to or through it travels unencrypted.",
    "RFC 3207 §4; RFC 8314 §3",
    Severity.WARNING,
)
TLS_RESET = rule(
    "smtp.tls_reset",
    "The server reset or closed the connection during the TLS handshake.",
    "RFC 3207 §4; RFC 8446 §6",
    Severity.WARNING,
)
TLS_FAILED = rule(
    "smtp.tls_failed",
    "STARTTLS was refused or the TLS handshake failed.",
    "RFC 3207 §4",
    Severity.WARNING,
)
TLS_OUTDATED = rule(
    "smtp.tls_outdated",
    "The server offers no TLS 1.2 or newer.",
    "RFC 8314 §4.1; RFC 8996",
    Severity.WARNING,
)
CERT_UNTRUSTED = rule(
    "smtp.cert_untrusted",
    "The server's certificate chain does not lead to a trusted CA.",
    "RFC 5280 §6; RFC 8461 §4.2; RFC 7672 §3",
    Severity.WARNING,
)
CERT_NAME_MISMATCH = rule(
    "smtp.cert_name_mismatch",
    "The server's certificate does not carry the host name it is reached by.",
    "RFC 6125 §6; RFC 8461 §4.2",
    Severity.WARNING,
)
CERT_EXPIRED = rule(
    "smtp.cert_expired",
    "The server's certificate has expired (or is not valid yet).",
    "RFC 5280 §4.1.2.5",
    Severity.WARNING,
)
CERT_WEAK_KEY = rule(
    "smtp.cert_weak_key",
    "The server's certificate key is too small (RSA below 2048 bits, EC below 256).",
    "NIST SP 800-131A; CA/Browser Forum BR §6.1.5",
    Severity.WARNING,
)
TLS_OK = rule(
    "smtp.tls_ok",
    "STARTTLS or implicit TLS works with TLS 1.2+ and a valid certificate for the host name.",
    "RFC 3207; RFC 8314",
    Severity.INFO,
)
AUTH_BEFORE_TLS = rule(
    "smtp.auth_before_tls",
    "Password mechanisms (PLAIN, LOGIN) are offered before TLS, inviting cleartext passwords.",
    "RFC 4954 §4; RFC 8314 §3",
    Severity.WARNING,
)
AUTH_NOT_OFFERED = rule(
    "smtp.auth_not_offered",
    "The submission server offers no AUTH mechanism (or not the one needed) after TLS.",
    "RFC 6409 §4.3; RFC 4954 §3",
    Severity.CRITICAL,
)
AUTH_OFFERED = rule(
    "smtp.auth_offered",
    "The submission server offers AUTH only after TLS 1.2 or newer.",
    "RFC 4954 §4; RFC 8314 §4.1",
    Severity.INFO,
)
AUTH_FAILED = rule(
    "smtp.auth_failed",
    "The authenticated submission test was refused.",
    "RFC 4954 §6",
    Severity.CRITICAL,
)
AUTH_OK = rule(
    "smtp.auth_ok",
    "The authenticated submission test succeeded (AUTH, then QUIT; no mail sent).",
    "RFC 4954 §4",
    Severity.INFO,
)
PORT_NOT_OFFERED = rule(
    "smtp.port_not_offered",
    "The sending service does not offer this submission port.",
    "Provider documentation (DOMAIN.md §2)",
    Severity.INFO,
)
SUBMISSION_UNKNOWN = rule(
    "smtp.submission_unknown",
    "No submission endpoint is known for this sender.",
    "RFC 6409 §3.1",
    Severity.INFO,
)
PTR_MISMATCH = rule(
    "smtp.ptr_mismatch",
    "The MX address's PTR name differs from the name in its banner (informational only).",
    "RFC 5321 §4.1.4 (no rule requires a match)",
    Severity.INFO,
)

MARGIN = 0.3  # seconds kept back from the request budget to build the report
ADDRESSES_PER_HOST = 2


@dataclass(frozen=True, slots=True)
class SmtpFacts:
    """What the SMTP section saw: every probe with its TLS and certificate details."""

    mx: tuple[ProbeResult, ...] = ()
    submission: tuple[ProbeResult, ...] = ()
    service: str | None = None
    submission_source: str = ""  # request, service, spf, mx, or "" when none was found
    not_offered: Mapping[int, str] = field(default_factory=dict)
    ptr: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


# -- pure rules ------------------------------------------------------------------------


def _subject(result: ProbeResult) -> str:
    t = result.target
    return f"{t.host}:{t.port}" if t.host == t.address else f"{t.host}:{t.port} ({t.address})"


def _alternatives(port: int, offered: Sequence[int], service: str | None) -> str:
    if port == 25:
        return (
            "Outbound port 25 is blocked on many home, office and cloud networks: run the check "
            "from a network that allows it. To send mail, use your service's submission port "
            "587 (STARTTLS) or 465 (implicit TLS) instead of 25."
        )
    others = [p for p in (587, 465, 25) if p != port and (not offered or p in offered)]
    who = service or "the service"
    if not others:
        return f"Allow outbound TCP {port} on this network; {who} offers no other port."
    names = {587: "587 (STARTTLS)", 465: "465 (implicit TLS)", 25: "25 (STARTTLS)"}
    listed = ", ".join(names[p] for p in others)
    return f"Allow outbound TCP {port} on this network, or use {listed} of {who}."


def findings_for(
    result: ProbeResult,
    *,
    slow_banner: float,
    offered_ports: Sequence[int] = (),
    service: str | None = None,
) -> list[Finding]:
    """The findings of one probe (MX or submission), from its facts alone."""
    t = result.target
    subject = _subject(result)
    submission = t.role == "submission"
    crit = Severity.CRITICAL if submission else Severity.WARNING
    data: dict[str, Any] = {
        "host": t.host,
        "address": t.address,
        "port": t.port,
        "stage": result.stage,
    }
    out: list[Finding] = []
    outcome = result.outcome
    if outcome is Outcome.TARGET_REFUSED:
        return [
            TARGET_REFUSED.failed(
                subject,
                f"{t.host} was not probed: {result.reason}.",
                f"{t.host} resolves to {t.address}, which the service never contacts.",
                "Point the DNS name at the server's public address.",
                **data,
            )
        ]
    if outcome in (Outcome.REFUSED, Outcome.UNREACHABLE):
        return [
            UNREACHABLE.failed(
                subject,
                f"{t.host} does not accept connections on port {t.port}.",
                f"{result.reason.capitalize()}.",
                f"Start the mail service on {t.host} port {t.port}, or open the port in its "
                "firewall; if the host is retired, remove it from DNS.",
                severity=crit if submission else Severity.WARNING,
                **data,
            )
        ]
    if outcome is Outcome.CONNECT_TIMEOUT:
        return [
            PORT_BLOCKED.failed(
                subject,
                f"No answer from {t.host} on port {t.port}: the port is probably blocked.",
                f"{result.reason.capitalize()}. A timeout means nothing was learned about the "
                "server itself: it is not reported as lacking TLS.",
                _alternatives(t.port, offered_ports, service),
                **data,
            )
        ]
    if outcome is Outcome.GREETING_REJECTED:
        why = explain(result.banner)
        return [
            GREETING_REJECTED.failed(
                subject,
                f"{t.host} refused the session in its greeting ({result.banner_code}).",
                f"Banner: {result.banner!r}. {why.cause}",
                why.fix,
                severity=Severity.WARNING if str(result.banner_code).startswith("4") else None,
                banner=result.banner,
                **data,
            )
        ]
    if outcome in (Outcome.PROTOCOL_ERROR, Outcome.CLOSED):
        return [
            PROTOCOL_ERROR.failed(
                subject,
                f"{t.host} broke the SMTP conversation during the {result.stage}.",
                f"{result.reason.capitalize()}.",
                "Check the mail server (or whatever answers on this port: a proxy, a firewall "
                "with SMTP inspection) and its logs.",
                **data,
            )
        ]
    if outcome is Outcome.DEADLINE:
        reason = result.reason
        if result.stage == "banner":
            reason += (
                "; a banner this slow is often tarpitting (deliberate delay), not a fault — "
                "senders wait up to 5 minutes for it (RFC 5321 §4.5.3.2.1)"
            )
        return [TIMEOUT.unknown(subject, reason, **data)]
    if outcome is Outcome.TLS_RESET:
        return [
            TLS_RESET.failed(
                subject,
                f"{t.host} dropped the connection during the TLS handshake.",
                f"{result.reason.capitalize()} (after {result.starttls_reply or 'connect'}).",
                "Check the server's TLS configuration and certificate files (a missing key or "
                "chain often makes servers drop the handshake) and any middlebox on the path.",
                severity=crit,
                **data,
            )
        ]
    if outcome is Outcome.TLS_OUTDATED:
        return [
            TLS_OUTDATED.failed(
                subject,
                f"{t.host} offers no TLS 1.2 or newer.",
                f"{result.reason.capitalize()}.",
                "Enable TLS 1.2 and TLS 1.3 on the server (e.g. postfix "
                "smtpd_tls_protocols = >=TLSv1.2); TLS 1.0/1.1 are deprecated (RFC 8996).",
                severity=crit,
                **data,
            )
        ]
    if outcome is Outcome.TLS_FAILED:
        return [
            TLS_FAILED.failed(
                subject,
                f"TLS could not be started with {t.host}.",
                f"{result.reason.capitalize()}.",
                "A 454 reply means the server's TLS is broken (postfix: tlsmgr missing, "
                "unreadable key); check its TLS settings and logs.",
                severity=crit,
                **data,
            )
        ]
    # The conversation completed: judge what it showed.
    if result.banner_ms is not None and result.banner_ms > slow_banner * 1000:
        out.append(
            SLOW_BANNER.failed(
                subject,
                f"{t.host} took {result.banner_ms / 1000:.1f} s to send its banner.",
                "Servers delay the banner on purpose (tarpitting, postscreen) to catch clients "
                "that talk too early; it slows every delivery attempt a little.",
                "Nothing is broken. If the delay is unintended, check the server's greeting "
                "delay (postfix: postscreen_greet_wait) and its reverse DNS lookups.",
                banner_ms=result.banner_ms,
                **data,
            )
        )
    if t.mode is Mode.STARTTLS and not result.starttls_offered:
        out.append(
            STARTTLS_MISSING.failed(
                subject,
                f"{t.host} does not offer STARTTLS on port {t.port}.",
                f"EHLO capabilities: {', '.join(result.ehlo) or 'none'}.",
                "Enable STARTTLS with a certificate for "
                f"{t.host} (postfix: smtpd_tls_security_level = may, smtpd_tls_chain_files).",
                severity=crit,
                **data,
            )
        )
    tls = result.tls
    cert = tls.cert if tls is not None else None
    if tls is not None and tls.version in ("TLSv1", "TLSv1.1", "SSLv3"):
        out.append(
            TLS_OUTDATED.failed(
                subject,
                f"{t.host} negotiated {tls.version}.",
                f"Negotiated {tls.version} with {tls.cipher}.",
                "Enable TLS 1.2 and TLS 1.3 on the server.",
                severity=crit,
                **data,
            )
        )
    problems = 0
    if cert is not None:
        names = ", ".join(cert.names) or "none"
        if not cert.trusted:
            problems += 1
            out.append(
                CERT_UNTRUSTED.failed(
                    subject,
                    f"The certificate of {t.host} is not trusted.",
                    f"Verification said: {cert.verify_error or 'untrusted'}. Issuer: "
                    f"{cert.issuer}. Senders that require valid certificates (MTA-STS enforce, "
                    "DANE) will not deliver; opportunistic senders still encrypt.",
                    "Install a certificate from a public CA and serve the full chain (leaf and "
                    "intermediates), e.g. postfix smtpd_tls_chain_files = key, fullchain.pem.",
                    severity=crit,
                    issuer=cert.issuer,
                    verify_error=cert.verify_error,
                    **data,
                )
            )
        if not cert.name_matches:
            problems += 1
            out.append(
                CERT_NAME_MISMATCH.failed(
                    subject,
                    f"The certificate of {t.host} is for other names.",
                    f"Names in the certificate: {names}; expected {t.host}.",
                    f"Issue the certificate with {t.host} in its subject alternative names.",
                    severity=crit,
                    names=list(cert.names),
                    **data,
                )
            )
        if cert.expired or cert.not_yet_valid:
            problems += 1
            when = "expired on" if cert.expired else "is not valid before"
            stamp = cert.not_after if cert.expired else cert.not_before
            out.append(
                CERT_EXPIRED.failed(
                    subject,
                    f"The certificate of {t.host} {when} {stamp[:10]}.",
                    f"Valid from {cert.not_before} to {cert.not_after}.",
                    "Renew the certificate and reload the mail server (automate it, e.g. ACME).",
                    severity=crit,
                    not_after=cert.not_after,
                    **data,
                )
            )
        weak = (cert.key_type == "RSA" and cert.key_bits < 2048) or (
            cert.key_type.startswith("EC") and cert.key_bits < 256
        )
        if weak:
            problems += 1
            out.append(
                CERT_WEAK_KEY.failed(
                    subject,
                    f"The certificate of {t.host} has a {cert.key_bits}-bit {cert.key_type} key.",
                    f"Key: {cert.key_type} {cert.key_bits} bits.",
                    "Issue a new certificate with an RSA 2048+ or EC P-256+ key.",
                    bits=cert.key_bits,
                    **data,
                )
            )
    if tls is not None and cert is not None and problems == 0:
        out.append(
            TLS_OK.passed(
                subject,
                f"{t.host}: {tls.version}, {tls.cipher}, trusted certificate valid for "
                f"{cert.days_left} more days.",
                f"Names: {', '.join(cert.names)}; issuer {cert.issuer}; key {cert.key_type} "
                f"{cert.key_bits} bits.",
                version=tls.version,
                cipher=tls.cipher,
                days_left=cert.days_left,
                **data,
            )
        )
    if submission:
        plain = [m for m in result.auth_before_tls if m in ("PLAIN", "LOGIN")]
        if plain:
            out.append(
                AUTH_BEFORE_TLS.failed(
                    subject,
                    f"{t.host} offers {' '.join(plain)} before TLS.",
                    f"EHLO before STARTTLS lists AUTH {' '.join(result.auth_before_tls)}.",
                    "Offer AUTH only after TLS (postfix: smtpd_tls_auth_only = yes).",
                    **data,
                )
            )
        if tls is not None and not result.auth_after_tls:
            out.append(
                AUTH_NOT_OFFERED.failed(
                    subject,
                    f"{t.host} offers no AUTH after TLS on port {t.port}.",
                    f"EHLO after TLS: {', '.join(result.ehlo_tls) or 'none'}.",
                    "Enable SMTP AUTH on the submission port (postfix: smtpd_sasl_auth_enable = "
                    "yes), or use the service's documented submission host.",
                    **data,
                )
            )
        elif tls is not None:
            out.append(
                AUTH_OFFERED.passed(
                    subject,
                    f"{t.host}:{t.port} offers AUTH {' '.join(result.auth_after_tls)} after "
                    f"{tls.version}.",
                    mechanisms=list(result.auth_after_tls),
                    **data,
                )
            )
    auth = result.auth
    if auth is not None and not auth.offered:
        out.append(
            AUTH_NOT_OFFERED.failed(
                subject,
                f"{t.host} does not offer {auth.mechanism}.",
                f"AUTH after TLS: {' '.join(result.auth_after_tls) or 'none'}.",
                "Use a server that supports OAuth (XOAUTH2), e.g. smtp.office365.com for "
                "Microsoft 365.",
                **data,
            )
        )
    elif auth is not None and auth.success:
        out.append(
            AUTH_OK.passed(
                subject,
                f"The token was accepted by {t.host} ({auth.reply}); nothing was sent.",
                **data,
            )
        )
    elif auth is not None:
        context = auth.reply if "5." in auth.reply else f"{auth.reply} ({auth.mechanism})"
        why = explain(context)
        out.append(
            AUTH_FAILED.failed(
                subject,
                f"{t.host} refused the {auth.mechanism} sign-in: {auth.reply}.",
                why.cause,
                why.fix,
                reply=auth.reply,
                explanation=why.entry or "not recognised",
                **data,
            )
        )
    return out


def ptr_findings(result: ProbeResult, ptr_names: Sequence[str]) -> list[Finding]:
    """PTR name vs banner name: info only (DOMAIN.md §1.10: a tool habit, not a standard)."""
    banner = result.banner_name.lower().rstrip(".")
    if not banner or not ptr_names or "." not in banner:
        return []
    names = [n.lower().rstrip(".") for n in ptr_names]
    if banner in names:
        return []
    t = result.target
    return [
        PTR_MISMATCH.failed(
            _subject(result),
            f"{t.address} has PTR {', '.join(names)} but its banner says {banner}.",
            "No standard requires them to match; some tools flag it.",
            f"If you control the server, set its banner name to {names[0]} or the PTR to {banner}.",
            ptr=names,
            banner_name=banner,
            address=t.address,
        )
    ]


# -- planning ----------------------------------------------------------------------------


def parse_submission(text: str) -> list[Endpoint]:
    """``HOST[:PORT]`` (or ``[v6]:PORT``): with a port, that port; without, 587 and 465."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not host:
        raise ValueError(f"{text!r}: no host")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{text!r}: bad port")
        port = int(port_text)
        mode = TlsMode.IMPLICIT if port in (465, 2465) else TlsMode.STARTTLS
        return [Endpoint(host.lower().rstrip("."), port, mode)]
    host = host.lower().rstrip(".")
    return [Endpoint(host, 587, TlsMode.STARTTLS), Endpoint(host, 465, TlsMode.IMPLICIT)]


_SOURCES = (("SPF", "spf"), ("MX", "mx"), ("DKIM", "dkim"))


async def _plan_submission(
    ctx: CheckContext, cat: Catalog
) -> tuple[Service | None, list[Endpoint], str]:
    """The endpoint to probe: the one asked for, the named service's, or a detected one's.

    Detection is the "services" section's (SPF includes, MX hosts, DKIM CNAMEs); a service
    seen in SPF is preferred, as that is what authorises it to send, then MX, then DKIM.
    """
    req = ctx.request
    if req.submission:
        return None, parse_submission(req.submission), "request"
    named = cat.get(req.service) if req.service else None
    if named is not None:
        return named, list(named.submission), "service"
    detected = (await services_of(ctx)).detected
    for prefix, source in _SOURCES:
        for found in detected:
            service = cat.get(found.id)
            if (
                service is not None
                and service.submission
                and any(e.startswith(prefix) for e in found.evidence)
            ):
                return service, list(service.submission), source
    return None, [], ""


async def _addresses(ctx: CheckContext, host: str) -> tuple[list[str], str]:
    if is_ip(host):
        return [host], ""
    a, aaaa = await ctx.dns.query_many(((host, "A"), (host, "AAAA")))
    found = [str(r) for lookup in (a, aaaa) if lookup.ok for r in lookup.records]
    if found:
        return found[:ADDRESSES_PER_HOST], ""
    failed = next((x for x in (a, aaaa) if x.failed), None)
    return [], (failed or a).describe()


async def check(ctx: CheckContext) -> Section:
    if not ctx.request.probe_smtp:
        return Section()
    settings = ctx.settings
    cat = catalog(settings.provider_aliases)
    config = ProbeConfig(
        timeout=settings.smtp_timeout,
        source_address=settings.smtp_source_address,
        ca_file=settings.ca_file,
        allowed=settings.allow_private_targets,
        slow_banner=settings.smtp_slow_banner,
    )
    process = ctx.services.get("smtp_limiter")
    if not isinstance(process, ConnectionLimiter):
        process = process_limiter(settings.smtp_max_connections)
    limiter = process.child(settings.smtp_per_request)
    deadline = ctx.deadline.at - MARGIN
    # Leave room for a second round of connects behind the per-request cap.
    connect = max(0.2, min(settings.smtp_timeout, (deadline - time.monotonic()) / 2.5))
    config = replace(config, connect_timeout=connect)
    domain = ctx.request.domain
    findings: list[Finding] = []

    # A plan without the MX check: only the submission endpoint is probed.
    mx = await ctx.optional("mx")
    hosts = getattr(mx.facts, "hosts", ()) if mx is not None else ()
    mx_hosts = [(h.name, tuple(h.addresses)) for h in hosts]

    service, endpoints, source = await _plan_submission(ctx, cat)
    credentials = None
    if ctx.request.oauth_token and ctx.request.address:
        credentials = XOAuth2(ctx.request.address, ctx.request.oauth_token)
    not_offered = dict(service.not_offered) if service else {}
    offered_ports = sorted({e.port for e in endpoints})
    service_name = service.name if service else None

    mx_targets = [
        Target(name, address, 25, Mode.STARTTLS, "mx")
        for name, addresses in mx_hosts
        for address in addresses[:ADDRESSES_PER_HOST]
    ]
    sub_targets: list[Target] = []
    resolved = await asyncio.gather(*(_addresses(ctx, e.host) for e in endpoints))
    for endpoint, (addresses, why) in zip(endpoints, resolved, strict=True):
        mode = Mode.IMPLICIT if endpoint.tls is TlsMode.IMPLICIT else Mode.STARTTLS
        if not addresses:
            findings.append(
                UNREACHABLE.unknown(
                    f"{endpoint.host}:{endpoint.port}",
                    f"the submission host has no address: {why}",
                )
            )
        sub_targets += [
            Target(endpoint.host, a, endpoint.port, mode, "submission") for a in addresses[:1]
        ]

    # XOAUTH2 once, on the first STARTTLS endpoint: one sign-in is the whole test.
    first_starttls = next((t for t in sub_targets if t.mode is Mode.STARTTLS), None)
    results = await asyncio.gather(
        *(probe(t, config, deadline=deadline, limiter=limiter) for t in mx_targets),
        *(
            probe(
                t,
                config,
                deadline=deadline,
                limiter=limiter,
                credentials=credentials if t is first_starttls else None,
            )
            for t in sub_targets
        ),
    )
    mx_results = tuple(results[: len(mx_targets)])
    sub_results = tuple(results[len(mx_targets) :])

    for result in mx_results:
        findings += findings_for(result, slow_banner=config.slow_banner)
    for result in sub_results:
        findings += findings_for(
            result, slow_banner=config.slow_banner, offered_ports=offered_ports,
            service=service_name,
        )  # fmt: skip
    tested = next((r for r in sub_results if r.target is first_starttls), None)
    if credentials is not None and tested is not None and tested.auth is None:
        why = tested.reason or "the conversation did not reach AUTH"
        if tested.completed and tested.tls is None:
            why = "the token was not sent, because the server offered no TLS"
        elif tested.completed:
            why = "the token was not sent, because the server's certificate did not verify"
        findings.append(AUTH_FAILED.unknown(_subject(tested), why))
    if service is not None:
        for port, why in sorted(not_offered.items()):
            findings.append(
                PORT_NOT_OFFERED.passed(
                    f"{service.name} port {port}", why, service=service.id, port=port
                )
            )
    if not endpoints:
        findings.append(
            SUBMISSION_UNKNOWN.unknown(
                domain,
                "no sending service was named or recognised from SPF or MX; give "
                "--service or --submission HOST[:PORT] to probe the submission endpoint",
            )
        )
    ptr: dict[str, tuple[str, ...]] = {}
    if ctx.deadline.remaining() > MARGIN:
        ptr = await _ptr_names(ctx, [r.target.address for r in mx_results if r.banner_name])
        for result in mx_results:
            findings += ptr_findings(result, ptr.get(result.target.address, ()))
    facts = SmtpFacts(
        mx_results, sub_results, service.id if service else None, source, not_offered, ptr
    )
    return Section(tuple(findings), facts)


async def _ptr_names(ctx: CheckContext, addresses: Sequence[str]) -> dict[str, tuple[str, ...]]:
    unique = list(dict.fromkeys(addresses))
    names = [dns.reversename.from_address(a).to_text(omit_final_dot=True) for a in unique]
    lookups = await ctx.dns.query_many((n, "PTR") for n in names)
    return {
        a: tuple(str(r).rstrip(".") for r in lookup.records)
        for a, lookup in zip(unique, lookups, strict=True)
        if lookup.ok
    }
