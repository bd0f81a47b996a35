"""Validation of the bearer tokens Entra ID issues to the task pane (ADDIN.md §4.4).

Keys come from the authority's JWKS, fetched here (not through PyJWKClient) because the
key issuer check needs each key's own ``issuer`` member, which PyJWK hides. The JWKS is
cached, refreshed about daily and when a token names an unknown ``kid`` (at most once per
``jwks_min_refresh`` seconds, so a flood of made-up kids cannot make us hammer Entra).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import requests

from ..config import Settings

SCOPE = "access_as_user"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
JWKS_LIFESPAN = 24 * 3600.0
TENANT_PLACEHOLDER = "{tenantid}"


class AuthError(Exception):
    """A request that cannot be authenticated: the HTTP status and a machine-readable reason."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def _unauthorized(reason: str, detail: str) -> AuthError:
    return AuthError(401, reason, detail)


def _forbidden(reason: str, detail: str) -> AuthError:
    return AuthError(403, reason, detail)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: Entra's object id within its tenant; ``name`` is for display only."""

    oid: str
    tid: str
    name: str = ""
    client: str = ""
    token: str = ""  # the incoming bearer, kept for on-behalf-of; never logged

    @property
    def user(self) -> str:
        return f"{self.oid}@{self.tid}"

    def __repr__(self) -> str:
        return f"Principal(user={self.user!r})"


@dataclass(frozen=True, slots=True)
class Metadata:
    issuer: str  # may contain {tenantid}
    jwks_uri: str


class KeySet:
    """The JWKS of one authority: cached, refreshed on age and on unknown kids."""

    def __init__(
        self,
        jwks_uri: str,
        fetch: Callable[[str], Mapping[str, Any]],
        *,
        min_refresh: float,
        lifespan: float = JWKS_LIFESPAN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_uri = jwks_uri
        self._fetch = fetch
        self._min_refresh = min_refresh
        self._lifespan = lifespan
        self._clock = clock
        self._keys: dict[str, Mapping[str, Any]] = {}
        self._objects: dict[str, tuple[Mapping[str, Any], Any]] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def _refresh(self) -> None:
        document = self._fetch(self.jwks_uri)
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise ValueError("the JWKS has no keys array")
        self._keys = {
            str(k["kid"]): k
            for k in keys
            if isinstance(k, Mapping) and isinstance(k.get("kid"), str)
        }
        self._fetched_at = self._clock()
        self.fetches += 1

    def key_object(self, kid: str, jwk: Mapping[str, Any]) -> Any:
        """The public key of ``jwk``, built once per published key rather than per token."""
        with self._lock:
            cached = self._objects.get(kid)
            if cached is not None and cached[0] is jwk:
                return cached[1]
        key = jwt.PyJWK(dict(jwk)).key
        with self._lock:
            self._objects[kid] = (jwk, key)
        return key

    def get(self, kid: str) -> Mapping[str, Any] | None:
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at > self._lifespan
            may_refresh = self._fetched_at is None or now - self._fetched_at >= self._min_refresh
            if stale or (kid not in self._keys and may_refresh):
                self._refresh()
            return self._keys.get(kid)


def fetch_json(session: requests.Session) -> Callable[[str], Mapping[str, Any]]:
    def fetch(url: str) -> Mapping[str, Any]:
        response = session.get(url, allow_redirects=False)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, Mapping):
            raise ValueError(f"{url} did not return a JSON object")
        return document

    return fetch


class TokenValidator:
    """Validates one bearer token and returns the Principal, or raises AuthError."""

    def __init__(
        self,
        settings: Settings,
        session: requests.Session,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not settings.client_id:
            raise ValueError("token validation needs SENDREADY_CLIENT_ID")
        self.settings = settings
        self._fetch = fetch_json(session)
        self._clock = clock
        self._metadata: Metadata | None = None
        self._keys: KeySet | None = None
        self._lock = threading.Lock()

    # -- discovery ---------------------------------------------------------------------

    def _keyset(self) -> tuple[Metadata, KeySet]:
        with self._lock:
            if self._metadata is None or self._keys is None:
                url = f"{self.settings.authority}/v2.0/.well-known/openid-configuration"
                document = self._fetch(url)
                issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
                if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
                    raise ValueError(f"{url} has no issuer or jwks_uri")
                self._metadata = Metadata(issuer, jwks_uri)
                self._keys = KeySet(
                    jwks_uri, self._fetch, min_refresh=self.settings.jwks_min_refresh
                )
            return self._metadata, self._keys

    @property
    def jwks_fetches(self) -> int:
        return self._keys.fetches if self._keys is not None else 0

    # -- validation --------------------------------------------------------------------

    def validate(self, authorization: str | None) -> Principal:
        token = bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _forbidden("malformed_token", "the bearer token is not a JWT") from None
        if header.get("alg") != "RS256":
            raise _forbidden("bad_algorithm", "the token must be signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _forbidden("unknown_key", "the token names no signing key (kid)")
        tid = unverified.get("tid")
        if not isinstance(tid, str) or not GUID.match(tid):
            raise _forbidden("bad_tenant", "the token's tid is not a tenant id")
        allow = self.settings.tenant_allowlist
        if allow and tid not in allow:
            raise _forbidden("tenant_not_allowed", "this tenant may not use this service")

        try:
            metadata, keys = self._keyset()
            jwk = keys.get(kid)
        except (requests.RequestException, ValueError) as exc:
            # Our side cannot reach Entra: not the caller's fault, and no key was checked.
            raise AuthError(
                503, "keys_unavailable", f"the signing keys could not be fetched: {exc}"
            ) from None
        if jwk is None:
            raise _forbidden("unknown_key", "the token's signing key (kid) is not published")

        v1 = unverified.get("ver") == "1.0"
        if v1 and not self.settings.accept_v1_tokens:
            raise _forbidden("v1_token", "v1 access tokens are not accepted; request a v2 token")
        expected_issuer = (self.settings.token_v1_issuer if v1 else metadata.issuer).replace(
            TENANT_PLACEHOLDER, tid
        )
        # The key issuer check: a key published for one tenant (or for the v2 endpoint)
        # must not validate tokens claiming another.
        key_issuer = jwk.get("issuer")
        if not v1 and (
            not isinstance(key_issuer, str)
            or key_issuer.replace(TENANT_PLACEHOLDER, tid) != expected_issuer
        ):
            raise _forbidden("key_issuer_mismatch", "the signing key is not this issuer's key")

        audience = (
            (self.settings.app_id_uri or f"api://{self.settings.client_id}")
            if v1
            else self.settings.client_id
        )
        try:
            key = keys.key_object(kid, jwk)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=audience,
                issuer=expected_issuer,
                leeway=self.settings.token_leeway,
                options={"require": ["exp", "iss", "aud", "tid", "oid"]},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("token_expired", "the token has expired; get a new one") from None
        except jwt.ImmatureSignatureError:
            raise _forbidden("token_not_yet_valid", "the token is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise _forbidden("wrong_audience", "the token is not for this API (aud)") from None
        except jwt.InvalidIssuerError:
            raise _forbidden("wrong_issuer", "the token's issuer is not accepted (iss)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _forbidden("missing_claim", f"the token has no {exc.claim} claim") from None
        except jwt.PyJWTError:
            raise _forbidden("bad_signature", "the token's signature does not verify") from None

        scopes = str(claims.get("scp", "")).split()
        if SCOPE not in scopes:
            raise _forbidden("missing_scope", f"the token lacks the {SCOPE} scope")
        return Principal(
            oid=str(claims["oid"]),
            tid=tid,
            name=str(claims.get("preferred_username") or claims.get("name") or ""),
            client=str(claims.get("azp") or claims.get("appid") or ""),
            token=token,
        )


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header, or a 401 AuthError."""
    if not authorization:
        raise _unauthorized("missing_token", "send Authorization: Bearer <token>")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing_token", "send Authorization: Bearer <token>")
    return token.strip()
