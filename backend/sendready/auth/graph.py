"""Microsoft Graph, for the one fact the pane needs: which addresses the user may send as."""

from __future__ import annotations

import requests

from .msal_client import ServiceAuthError


def proxy_addresses(session: requests.Session, graph_url: str, token: str) -> list[str]:
    """The user's SMTP addresses (primary first), from ``/me`` proxyAddresses and mail."""
    response = session.get(
        f"{graph_url}/v1.0/me",
        params={"$select": "mail,userPrincipalName,proxyAddresses"},
        headers={"Authorization": f"Bearer {token}"},
        allow_redirects=False,
    )
    if response.status_code in (401, 403):
        raise ServiceAuthError(
            403,
            "graph_denied",
            "Microsoft Graph refused the request",
            "An administrator must grant SendReady the User.Read permission.",
        )
    if response.status_code != 200:
        raise ServiceAuthError(
            502, "graph_error", "Microsoft Graph failed", f"HTTP {response.status_code}"
        )
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
