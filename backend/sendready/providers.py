"""What SendReady knows about sending services: SPF includes, DKIM selectors and CNAME targets,
MX patterns, return-path domains and submission endpoints (facts: DOMAIN.md §2).

This is the only place such data lives. Tests run against look-alike zones (`outlook.test`
for `outlook.com`): :func:`catalog` rewrites every name through the configured aliases.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace


class TlsMode(enum.StrEnum):
    STARTTLS = "starttls"
    IMPLICIT = "implicit"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A submission endpoint: host, port and how TLS starts there."""

    host: str
    port: int
    tls: TlsMode
    note: str = ""


@dataclass(frozen=True, slots=True)
class Service:
    """One sending service, as DNS shows it and as a client submits to it."""

    id: str
    name: str
    spf_includes: tuple[str, ...] = ()
    #: DKIM selectors the service publishes under the customer's domain (probed when unknown).
    dkim_selectors: tuple[str, ...] = ()
    #: Suffixes of the CNAME targets of those selectors (recognise the service from DKIM).
    dkim_cname_suffixes: tuple[str, ...] = ()
    #: fnmatch patterns of the service's MX hosts (recognise it from MX).
    mx_patterns: tuple[str, ...] = ()
    submission: tuple[Endpoint, ...] = ()
    #: Ports the service does not offer, with why, so a probe can say so plainly.
    not_offered: Mapping[int, str] = field(default_factory=dict)
    #: How the service chooses the SMTP MAIL FROM (return-path) domain.
    return_path: str = "from"  # "from": the sender's own; "service": the service's own domain
    return_path_domain: str = ""
    notes: tuple[str, ...] = ()


_M365 = Service(
    id="microsoft365",
    name="Microsoft 365",
    spf_includes=("spf.protection.outlook.com",),
    dkim_selectors=("selector1", "selector2"),
    dkim_cname_suffixes=("onmicrosoft.com", "dkim.mail.microsoft"),
    mx_patterns=("*.mail.protection.outlook.com", "*.?-v1.mx.microsoft"),
    submission=(Endpoint("smtp.office365.com", 587, TlsMode.STARTTLS, "TLS 1.2 or newer"),),
    not_offered={465: "Microsoft 365 does not offer implicit TLS on 465; use 587 with STARTTLS."},
    return_path="from",
    notes=(
        "Custom domains are not DKIM-signed until signing is enabled; until then mail carries "
        "d=<tenant>.onmicrosoft.com, which does not align with the From domain.",
    ),
)

_GOOGLE = Service(
    id="google",
    name="Google Workspace",
    spf_includes=("_spf.google.com",),
    dkim_selectors=("google",),
    mx_patterns=("smtp.google.com", "aspmx.l.google.com", "alt?.aspmx.l.google.com"),
    submission=(
        Endpoint("smtp.gmail.com", 587, TlsMode.STARTTLS),
        Endpoint("smtp.gmail.com", 465, TlsMode.IMPLICIT),
    ),
    return_path="from",
)

_SENDGRID = Service(
    id="sendgrid",
    name="SendGrid",
    spf_includes=("sendgrid.net",),
    dkim_selectors=("s1", "s2"),
    dkim_cname_suffixes=("sendgrid.net",),
    submission=(
        Endpoint("smtp.sendgrid.net", 587, TlsMode.STARTTLS),
        Endpoint("smtp.sendgrid.net", 465, TlsMode.IMPLICIT),
    ),
    return_path="subdomain",  # em<NNNN>.<domain>, a CNAME into sendgrid.net
    notes=("The user name is literally 'apikey'; the password is an API key.",),
)

_SES = Service(
    id="amazonses",
    name="Amazon SES",
    spf_includes=("amazonses.com",),
    dkim_cname_suffixes=("dkim.amazonses.com",),
    submission=tuple(
        Endpoint(f"email-smtp.{region}.amazonaws.com", port, mode)
        for region in ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1")
        for port, mode in ((587, TlsMode.STARTTLS), (465, TlsMode.IMPLICIT))
    ),
    return_path="service",
    return_path_domain="amazonses.com",
    notes=(
        "Easy DKIM selectors are random tokens and cannot be guessed: give them with --selector.",
    ),
)

_MAILCHIMP = Service(
    id="mailchimp",
    name="Mailchimp",
    spf_includes=("servers.mcsv.net",),
    dkim_selectors=("k2", "k3", "k1"),
    dkim_cname_suffixes=("mcsv.net",),
    return_path="service",
    return_path_domain="mcsv.net",
)

_MANDRILL = Service(
    id="mandrill",
    name="Mandrill",
    spf_includes=("spf.mandrillapp.com",),
    dkim_selectors=("mte1", "mte2"),
    dkim_cname_suffixes=("mandrillapp.com",),
    submission=(
        Endpoint("smtp.mandrillapp.com", 587, TlsMode.STARTTLS),
        Endpoint("smtp.mandrillapp.com", 465, TlsMode.IMPLICIT),
    ),
    return_path="service",
    return_path_domain="mandrillapp.com",
)

_MAILGUN = Service(
    id="mailgun",
    name="Mailgun",
    spf_includes=("mailgun.org",),
    submission=(
        Endpoint("smtp.mailgun.org", 587, TlsMode.STARTTLS),
        Endpoint("smtp.mailgun.org", 465, TlsMode.IMPLICIT),
    ),
    return_path="subdomain",
)


def _dkim_only(id: str, name: str, *suffixes: str) -> Service:
    return Service(id=id, name=name, dkim_cname_suffixes=suffixes)


SERVICES: tuple[Service, ...] = (
    _M365,
    _GOOGLE,
    _SENDGRID,
    _SES,
    _MAILCHIMP,
    _MANDRILL,
    _MAILGUN,
    _dkim_only("fastmail", "Fastmail", "messagingengine.com", "dkim.fmhosted.com"),
    _dkim_only("zendesk", "Zendesk", "zendesk.com"),
    _dkim_only("hubspot", "HubSpot", "hubspotemail.net"),
    _dkim_only("intercom", "Intercom", "dkim.intercom.io"),
    _dkim_only("klaviyo", "Klaviyo", "klaviyo.com"),
    _dkim_only("brevo", "Brevo", "dkim.brevo.com"),
    _dkim_only("constantcontact", "Constant Contact", "ccsend.com"),
    _dkim_only("proton", "Proton", "domains.proton.ch"),
)

#: Selectors probed when nothing says which one a domain uses (DOMAIN.md §2.6).
COMMON_SELECTORS: tuple[str, ...] = (
    "selector1",
    "selector2",
    "google",
    "s1",
    "s2",
    "k1",
    "k2",
    "k3",
    "mte1",
    "mte2",
    "default",
    "dkim",
)


@dataclass(frozen=True, slots=True)
class Catalog:
    """The services, with every DNS name rewritten through test aliases if any are set."""

    services: tuple[Service, ...]

    def get(self, id: str) -> Service | None:
        return next((s for s in self.services if s.id == id), None)

    def by_spf_include(self, target: str) -> Service | None:
        target = target.lower().rstrip(".")
        return next((s for s in self.services if target in s.spf_includes), None)

    def by_dkim_target(self, target: str) -> Service | None:
        target = target.lower().rstrip(".")
        for service in self.services:
            for suffix in service.dkim_cname_suffixes:
                if target == suffix or target.endswith("." + suffix):
                    return service
        return None

    def by_mx(self, host: str) -> Service | None:
        host = host.lower().rstrip(".")
        return next(
            (
                s
                for s in self.services
                if any(fnmatch.fnmatchcase(host, pattern) for pattern in s.mx_patterns)
            ),
            None,
        )

    def selectors_for(self, ids: Iterable[str]) -> tuple[str, ...]:
        out: list[str] = []
        for id in ids:
            service = self.get(id)
            if service is not None:
                out.extend(s for s in service.dkim_selectors if s not in out)
        return tuple(out)


def _alias(name: str, aliases: Mapping[str, str]) -> str:
    for real, test in aliases.items():
        if name == real or name.endswith("." + real):
            return name[: len(name) - len(real)] + test
    return name


def catalog(aliases: Mapping[str, str] | None = None) -> Catalog:
    """The catalog; ``aliases`` maps real suffixes to test ones (outlook.com → outlook.test)."""
    if not aliases:
        return Catalog(SERVICES)

    def rewrite(s: Service) -> Service:
        return replace(
            s,
            spf_includes=tuple(_alias(n, aliases) for n in s.spf_includes),
            dkim_cname_suffixes=tuple(_alias(n, aliases) for n in s.dkim_cname_suffixes),
            mx_patterns=tuple(_alias(n, aliases) for n in s.mx_patterns),
            submission=tuple(replace(e, host=_alias(e.host, aliases)) for e in s.submission),
            return_path_domain=_alias(s.return_path_domain, aliases),
        )

    return Catalog(tuple(rewrite(s) for s in SERVICES))
