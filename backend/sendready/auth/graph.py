"""Microsoft Graph, for the facts the pane needs: which addresses the user may send as, and
the tenant's initial domain (Microsoft 365's DKIM CNAME targets are built from it); and the
request and error every Graph call makes (scan.py lists a tenant's domains with them)."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from ..dns.names import InvalidInput, normalize_domain
from .msal_client import ServiceAuthError

#: Verified domains read from one answer: far above any tenant, low enough to bound a bad one.
MAX_VERIFIED_DOMAINS = 5000


def graph_get(
    session: requests.Session, url: str, token: str, params: dict[str, str] | None = None
) -> requests.Response:
    """GET a Graph URL with the bearer token; never following a redirect, which would take
    the token to wherever Graph (or an impostor) points."""
    return session.get(
        url, params=params, headers={"Authorization": f"Bearer {token}"}, allow_redirects=False
    )


def graph_error(detail: str, status: int = 502) -> ServiceAuthError:
    """Graph failed in a way no permission fixes (an HTTP error, a malformed answer)."""
    return ServiceAuthError(status, "graph_error", "Microsoft Graph failed", detail)


def proxy_addresses(session: requests.Session, graph_url: str, token: str) -> list[str]:
    """The user's SMTP addresses (primary first), from ``/me`` proxyAddresses and mail."""
    response = graph_get(
        session, f"{graph_url}/v1.0/me", token, {"$select": "mail,userPrincipalName,proxyAddresses"}
    )
    if response.status_code in (401, 403):
        raise ServiceAuthError(
            403,
            "graph_denied",
            "Microsoft Graph refused the request",
            "An administrator must grant SendReady the User.Read permission.",
        )
    if response.status_code != 200:
        raise graph_error(f"HTTP {response.status_code}")
    data = response.json()
    primary: list[str] = []
    others: list[str] = []
    for entry in data.get("proxyAddresses") or []:
        if not isinstance(entry, str) or ":" not in entry:
            continue
        kind, _, address = entry.partition(":")
        if kind.lower() != "smtp":
            continue
        # "SMTP:" (upper case) marks the primary address.
        (primary if kind == "SMTP" else others).append(address.lower())
    mail = data.get("mail")
    if isinstance(mail, str) and mail and mail.lower() not in primary + others:
        primary.append(mail.lower())
    return list(dict.fromkeys(primary + others))


@dataclass(frozen=True, slots=True)
class TenantDomains:
    """The signed-in user's tenant as Graph /organization shows it with User.Read: its
    initial domain (``<tenant>.onmicrosoft.com``, Microsoft 365's DKIM CNAME targets and
    default signing domain) and every verified domain, lower-case."""

    initial: str | None
    verified: frozenset[str] = frozenset()

    def covers(self, domain: str) -> bool:
        """Whether ``domain`` is one of the verified domains or a subdomain of one: only
        then does the initial domain say anything about how its mail is signed."""
        return any(domain == v or domain.endswith("." + v) for v in self.verified)


def organization_domains(session: requests.Session, graph_url: str, token: str) -> TenantDomains:
    """The tenant's initial and verified domains, from ``/organization`` (User.Read reads
    ``verifiedDomains``); names that are not valid domain names are left out."""
    response = graph_get(
        session, f"{graph_url}/v1.0/organization", token, {"$select": "verifiedDomains"}
    )
    if response.status_code != 200:
        raise graph_error(f"HTTP {response.status_code}")
    data = response.json()
    organizations = data.get("value") if isinstance(data, dict) else None
    entries = [
        entry
        for org in (organizations if isinstance(organizations, list) else [])[:1]
        if isinstance(org, dict) and isinstance(org.get("verifiedDomains"), list)
        for entry in org["verifiedDomains"][:MAX_VERIFIED_DOMAINS]
        if isinstance(entry, dict)
    ]
    initial: str | None = None
    verified: set[str] = set()
    for entry in entries:
        name = _domain(entry.get("name"))
        if name is None:
            continue
        verified.add(name)
        if entry.get("isInitial") is True and initial is None:
            initial = name
    return TenantDomains(initial, frozenset(verified))


def _domain(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return normalize_domain(value)
    except InvalidInput:
        return None
