"""The tokens the service itself needs, from MSAL's ConfidentialClientApplication.

On-behalf-of the signed-in user (SMTP.Send for the authenticated submission test, Graph
User.Read for the user's own addresses) and app-only (client credentials) for admin
features. MSAL's ``acquire_token_on_behalf_of`` posts every time, so results are cached
here (in Redis when configured), keyed by a hash of the assertion and the scopes, until
shortly before they expire. Entra errors become ServiceAuthError with what the admin must do.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msal  # type: ignore[import-untyped]
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ..config import Settings

#: Tokens are reused until this many seconds before they expire.
EXPIRY_MARGIN = 300.0


class ServiceAuthError(Exception):
    """Entra refused a token the service asked for; ``detail`` says what the admin must do."""

    def __init__(self, status: int, reason: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.title = title
        self.detail = detail


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_at: float  # time.time()
    scopes: tuple[str, ...]

    def __repr__(self) -> str:
        return f"AccessToken(scopes={self.scopes!r}, expires_at={self.expires_at:.0f})"


class TokenStore(Protocol):
    def get(self, key: str) -> AccessToken | None: ...
    def put(self, key: str, value: AccessToken, ttl: float) -> None: ...


class MemoryTokenStore:
    """Per-process store, bounded; the embedded default."""

    def __init__(self, limit: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self._items: dict[str, tuple[float, AccessToken]] = {}
        self._limit = limit
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, key: str) -> AccessToken | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] <= self._clock():
                del self._items[key]
                return None
            return item[1]

    def put(self, key: str, value: AccessToken, ttl: float) -> None:
        with self._lock:
            if len(self._items) >= self._limit:
                self._items.pop(next(iter(self._items)))
            self._items[key] = (self._clock() + ttl, value)


class RedisTokenStore:
    """Shared by every worker and machine, so one OBO exchange serves them all."""

    def __init__(self, client: Any, prefix: str = "sendready:token:") -> None:
        self._client = client
        self._prefix = prefix

    def get(self, key: str) -> AccessToken | None:
        raw = self._client.get(self._prefix + key)
        if raw is None:
            return None
        data = json.loads(raw)
        return AccessToken(data["token"], float(data["expires_at"]), tuple(data["scopes"]))

    def put(self, key: str, value: AccessToken, ttl: float) -> None:
        body = json.dumps(
            {"token": value.token, "expires_at": value.expires_at, "scopes": list(value.scopes)}
        )
        self._client.set(self._prefix + key, body, ex=max(1, int(ttl)))


# AADSTS code → (status, reason, title, what the admin must do)
AADSTS: dict[int, tuple[int, str, str, str]] = {
    65001: (
        403,
        "consent_required",
        "Consent is missing",
        "An administrator must grant admin consent for SendReady's delegated permissions "
        "(SMTP.Send, User.Read) in Entra ID > Enterprise applications > SendReady > Permissions.",
    ),
    65004: (
        403,
        "consent_declined",
        "Consent was declined",
        "The user declined consent; an administrator can grant it for the whole tenant.",
    ),
    500133: (
        401,
        "token_expired",
        "The sign-in has expired",
        "The user's token expired before the exchange; sign in again and retry.",
    ),
    50013: (
        401,
        "assertion_invalid",
        "The sign-in token was not accepted",
        "Entra ID rejected the user's token for the exchange; sign in again.",
    ),
    7000215: (
        403,
        "invalid_client_secret",
        "The service's credentials were rejected",
        "The administrator must renew the client secret of the SendReady app registration "
        "and set SENDREADY_CLIENT_SECRET to the new value.",
    ),
    700016: (
        403,
        "unknown_client",
        "The service's app registration is not in this tenant",
        "An administrator must consent to SendReady in this tenant (admin consent URL), "
        "or SENDREADY_CLIENT_ID is wrong.",
    ),
    53003: (
        403,
        "conditional_access",
        "Blocked by Conditional Access",
        "A Conditional Access policy blocks this token; an administrator must allow SendReady.",
    ),
}


def explain(result: dict[str, Any]) -> ServiceAuthError:
    """Turn an MSAL error dict into a ServiceAuthError that says what to do."""
    codes = [int(c) for c in result.get("error_codes") or [] if str(c).isdigit()]
    for code in codes:
        if code in AADSTS:
            status, reason, title, detail = AADSTS[code]
            return ServiceAuthError(status, reason, title, f"{detail} (AADSTS{code})")
    error = str(result.get("error") or "unknown_error")
    description = str(result.get("error_description") or "").split("\n")[0][:300]
    if error == "invalid_client":
        return ServiceAuthError(
            403,
            "invalid_client",
            "The service's credentials were rejected",
            "The administrator must check SENDREADY_CLIENT_ID and the client secret or "
            f"certificate of the app registration ({description or error}).",
        )
    if error in ("invalid_grant", "interaction_required", "consent_required"):
        return ServiceAuthError(
            403,
            error,
            "Entra ID refused the token exchange",
            f"{description or error}. An administrator may need to grant consent.",
        )
    return ServiceAuthError(502, error, "Entra ID refused the token request", description or error)


def client_credential(settings: Settings) -> str | dict[str, str]:
    """The secret, or a {private_key, thumbprint} pair from the PEM file SENDREADY_CLIENT_CERT."""
    if settings.client_cert:
        pem = Path(settings.client_cert).read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        return {
            "private_key": pem.decode("ascii"),
            # SHA-1 because that is what Entra calls the certificate thumbprint (x5t).
            "thumbprint": cert.fingerprint(hashes.SHA1()).hex().upper(),
        }
    if settings.client_secret:
        return settings.client_secret
    raise ValueError("MSAL needs SENDREADY_CLIENT_SECRET or SENDREADY_CLIENT_CERT")


class TokenBroker:
    """One ConfidentialClientApplication per app, with a cache for OBO results."""

    def __init__(
        self,
        settings: Settings,
        session: requests.Session,
        store: TokenStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._store = store or MemoryTokenStore(clock=clock)
        self._clock = clock
        self._app = msal.ConfidentialClientApplication(
            settings.client_id,
            client_credential=client_credential(settings),
            authority=settings.authority,
            # Never ask login.microsoftonline.com which authorities exist.
            instance_discovery=False,
            http_client=session,
        )

    def _cached(self, key: str, get: Callable[[], dict[str, Any]], scopes: Sequence[str]) -> str:
        hit = self._store.get(key)
        if hit is not None and hit.expires_at - EXPIRY_MARGIN > self._clock():
            return hit.token
        result = get()
        if "access_token" not in result:
            raise explain(result)
        expires_in = float(result.get("expires_in") or 0)
        token = AccessToken(str(result["access_token"]), self._clock() + expires_in, tuple(scopes))
        ttl = expires_in - EXPIRY_MARGIN
        if ttl > 0:
            self._store.put(key, token, ttl)
        return token.token

    def on_behalf_of(self, assertion: str, scopes: Sequence[str]) -> str:
        """An access token for ``scopes`` on behalf of the user whose token is ``assertion``."""
        digest = hashlib.sha256(
            (assertion + "\x00" + " ".join(sorted(scopes))).encode()
        ).hexdigest()
        return self._cached(
            "obo:" + digest,
            lambda: self._app.acquire_token_on_behalf_of(assertion, list(scopes)),
            scopes,
        )

    def for_client(self, scopes: Sequence[str]) -> str:
        """An app-only token (client credentials) for admin features."""
        key = "app:" + hashlib.sha256(" ".join(sorted(scopes)).encode()).hexdigest()
        return self._cached(key, lambda: self._app.acquire_token_for_client(list(scopes)), scopes)
