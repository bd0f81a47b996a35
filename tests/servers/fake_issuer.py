"""An Entra-like token issuer over HTTPS on loopback (TESTING.md §8), for MSAL and PyJWT.

Serves, for any tenant path ``T`` (a GUID, or ``organizations``/``common`` with the
``{tenantid}`` issuer template Entra uses): OIDC metadata, the JWKS with each key's own
``issuer``, and the token endpoint with the client-credentials and on-behalf-of grants.
A test-only ``/test/user-token`` mints the v2 token the task pane would get, and
``/graph/v1.0/me`` plays Microsoft Graph for the user's proxy addresses, and
``/graph/v1.0/domains`` (app-only, ``Domain.Read.All``, paged with ``@odata.nextLink``) for
the tenant's domains, and ``/graph/v1.0/organization`` (delegated, ``User.Read``) for the
caller's tenant and its verified domains. Counters per endpoint let tests assert on caching.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify, request
from jwt.algorithms import RSAAlgorithm
from werkzeug.serving import BaseWSGIServer, make_server

OBO_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TEMPLATE = "{tenantid}"


class FakeIssuer:
    def __init__(self, host: str, port: int, clients: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.base = f"https://{host}:{port}"
        self.clients = dict(clients)  # client id -> secret
        self.client_certs: dict[str, Any] = {}  # client id -> certificate public key
        self.counters: collections.Counter[str] = collections.Counter()
        self.keys: dict[str, Any] = {}  # kid -> private key
        self.key_issuers: dict[str, str] = {}  # kid -> the issuer published with the key
        self.no_consent: set[str] = set()  # scopes whose OBO answers AADSTS65001
        self.proxy_addresses: dict[str, list[str]] = {}  # oid -> proxyAddresses
        self.domains: list[tuple[str, bool]] = []  # Graph /domains: (id, isVerified)
        self.domains_initial = ""  # the /domains entry answered with isInitial true
        self.organizations: dict[str, list[dict[str, Any]]] = {}  # tid -> verifiedDomains
        self.organization_status: dict[str, int] = {}  # tid -> error status /organization gives
        self.domains_page_size = 2
        self.domains_next_base = ""  # set: nextLink points there instead (a foreign origin)
        self.domains_throttled = 0  # answer this many /domains requests with 429 first
        self.app_roles: dict[str, list[str]] = {}  # client id -> roles; default Domain.Read.All
        self.expires_in = 3600
        self._lock = threading.Lock()
        self.add_key("key-1")
        self.app = self._make_app()
        self._server: BaseWSGIServer | None = None

    # -- keys and tokens ---------------------------------------------------------------

    def issuer(self, tenant: str) -> str:
        return f"{self.base}/{tenant}/v2.0"

    def add_key(self, kid: str, issuer: str | None = None) -> Any:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with self._lock:
            self.keys[kid] = key
            self.key_issuers[kid] = issuer or self.issuer(TEMPLATE)
        return key

    def mint(
        self,
        claims: dict[str, Any],
        *,
        kid: str = "key-1",
        key: Any = None,
        algorithm: str = "RS256",
        headers: dict[str, Any] | None = None,
    ) -> str:
        signing = key if key is not None else self.keys[kid]
        return jwt.encode(
            claims, signing, algorithm=algorithm, headers={"kid": kid, **(headers or {})}
        )

    def user_claims(self, tenant: str, audience: str, /, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer(tenant),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "tid": tenant,
            "oid": extra.pop("oid", "00000000-0000-4000-8000-00000000a11c"),
            "sub": "sub-alice",
            "preferred_username": extra.pop("upn", "alice@m365-good.test"),
            "scp": "access_as_user",
            "azp": audience,
            "ver": "2.0",
        }
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    # -- the server --------------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def _make_app(self) -> Flask:
        app = Flask("fake-issuer")

        @app.get("/<tenant>/v2.0/.well-known/openid-configuration")
        def metadata(tenant: str) -> Any:
            self._count("metadata")
            issuer_tenant = TEMPLATE if tenant in ("organizations", "common") else tenant
            return jsonify(
                issuer=self.issuer(issuer_tenant),
                authorization_endpoint=f"{self.base}/{tenant}/oauth2/v2.0/authorize",
                token_endpoint=f"{self.base}/{tenant}/oauth2/v2.0/token",
                jwks_uri=f"{self.base}/{tenant}/discovery/v2.0/keys",
                response_types_supported=["code", "id_token", "token"],
                subject_types_supported=["pairwise"],
                id_token_signing_alg_values_supported=["RS256"],
                tenant_region_scope="EU",
            )

        @app.get("/<tenant>/discovery/v2.0/keys")
        def keys(tenant: str) -> Any:
            self._count("jwks")
            published = []
            with self._lock:
                items = list(self.keys.items())
            for kid, key in items:
                jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
                jwk.update(kid=kid, use="sig", alg="RS256", issuer=self.key_issuers[kid])
                published.append(jwk)
            return jsonify(keys=published)

        @app.post("/<tenant>/oauth2/v2.0/token")
        def token(tenant: str) -> Any:
            form = request.form
            client_id = form.get("client_id", "")
            if "client_assertion" in form:
                if not self._client_assertion_ok(client_id, form["client_assertion"], tenant):
                    self._count("token_rejected")
                    return _error(401, "invalid_client", 700027, "Client assertion failed.", tenant)
                self._count("client_assertion")
            elif self.clients.get(client_id) != form.get("client_secret"):
                self._count("token_rejected")
                return _error(
                    401, "invalid_client", 7000215, "Invalid client secret provided.", tenant
                )
            grant = form.get("grant_type")
            scopes = form.get("scope", "").split()
            if grant == "client_credentials":
                self._count("client_credentials")
                return self._app_token(tenant, client_id, scopes)
            if grant == OBO_GRANT and form.get("requested_token_use") == "on_behalf_of":
                self._count("obo")
                return self._obo(tenant, client_id, form.get("assertion", ""), scopes)
            return _error(400, "unsupported_grant_type", 70003, f"grant {grant}", tenant)

        @app.post("/test/user-token")
        def user_token() -> Any:
            body = request.get_json(force=True)
            tenant = body.get("tid", "11111111-2222-4333-8444-555555555555")
            claims = self.user_claims(tenant, body["aud"], upn=body.get("upn"))
            return jsonify(access_token=self.mint(claims))

        @app.get("/graph/v1.0/me")
        def me() -> Any:
            self._count("graph_me")
            claims = self._graph_claims()
            if claims is None:
                return jsonify(error={"code": "InvalidAuthenticationToken"}), 401
            oid = claims["oid"]
            return jsonify(
                mail=claims.get("upn"),
                userPrincipalName=claims.get("upn"),
                proxyAddresses=self.proxy_addresses.get(oid, [f"SMTP:{claims.get('upn')}"]),
            )

        @app.get("/graph/v1.0/domains")
        def domains() -> Any:
            self._count("graph_domains")
            claims = self._graph_claims()
            if claims is None:
                return jsonify(error={"code": "InvalidAuthenticationToken"}), 401
            if claims.get("idtyp") != "app" or "Domain.Read.All" not in claims.get("roles", []):
                denied = {
                    "code": "Authorization_RequestDenied",
                    "message": "Insufficient privileges",
                }
                return jsonify(error=denied), 403
            with self._lock:
                if self.domains_throttled > 0:
                    self.domains_throttled -= 1
                    return jsonify(error={"code": "TooManyRequests"}), 429, {"Retry-After": "0"}
            start = int(request.args.get("$skiptoken", "0"))
            end = start + self.domains_page_size
            page = [
                {"id": d, "isVerified": v, "isInitial": d == self.domains_initial}
                for d, v in self.domains[start:end]
            ]
            body: dict[str, Any] = {"value": page}
            if end < len(self.domains):
                base = self.domains_next_base or self.base
                body["@odata.nextLink"] = f"{base}/graph/v1.0/domains?$skiptoken={end}"
            return jsonify(body)

        @app.get("/graph/v1.0/organization")
        def organization() -> Any:
            self._count("graph_organization")
            claims = self._graph_claims()
            if claims is None:
                return jsonify(error={"code": "InvalidAuthenticationToken"}), 401
            if "User.Read" not in str(claims.get("scp", "")).split():
                return jsonify(error={"code": "Authorization_RequestDenied"}), 403
            tid = claims["tid"]
            status = self.organization_status.get(tid)
            if status is not None:
                return jsonify(error={"code": "ServiceUnavailable"}), status
            org = {"id": tid, "verifiedDomains": self.organizations.get(tid, [])}
            return jsonify(value=[org])

        return app

    def _client_assertion_ok(self, client_id: str, assertion: str, tenant: str) -> bool:
        """A certificate credential: a JWT signed by the registered certificate's key."""
        key = self.client_certs.get(client_id)
        if key is None:
            return False
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256", "PS256"],
                audience=f"{self.base}/{tenant}/oauth2/v2.0/token",
            )
        except jwt.PyJWTError:
            return False
        return bool(claims.get("iss") == client_id and claims.get("sub") == client_id)

    def _graph_claims(self) -> dict[str, Any] | None:
        """The claims of the request's bearer token for Graph, or None if it does not verify."""
        auth = request.headers.get("Authorization", "")
        try:
            return self._verify(
                auth.removeprefix("Bearer "), audience=f"{self.base}/graph", issuer=None
            )
        except jwt.PyJWTError:
            return None

    def _verify(self, token: str, *, audience: Any, issuer: str | None) -> dict[str, Any]:
        kid = jwt.get_unverified_header(token).get("kid")
        key = self.keys.get(str(kid))
        if key is None:
            raise jwt.InvalidKeyError("unknown kid")
        options = {"verify_iss": issuer is not None}
        return jwt.decode(
            token,
            key.public_key(),
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer,
            options=options,
        )

    def _app_token(self, tenant: str, client_id: str, scopes: list[str]) -> Any:
        resource = scopes[0].removesuffix("/.default") if scopes else ""
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": self.issuer(tenant),
            "iat": now,
            "nbf": now,
            "exp": now + self.expires_in,
            "tid": tenant,
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, client_id)),
            "azp": client_id,
            "appid": client_id,
            "idtyp": "app",
            "roles": self.app_roles.get(client_id, ["Domain.Read.All"]),
        }
        return jsonify(
            token_type="Bearer", expires_in=self.expires_in, access_token=self.mint(claims)
        )

    def _obo(self, tenant: str, client_id: str, assertion: str, scopes: list[str]) -> Any:
        try:
            user = self._verify(assertion, audience=[client_id, f"api://{client_id}"], issuer=None)
            if user.get("tid") and user["iss"] != self.issuer(user["tid"]):
                raise jwt.InvalidIssuerError("issuer")
        except jwt.ExpiredSignatureError:
            return _error(
                400,
                "invalid_grant",
                500133,
                "Assertion is not within its valid time range.",
                tenant,
            )
        except jwt.PyJWTError as exc:
            return _error(
                400, "invalid_grant", 50013, f"Assertion failed signature validation: {exc}", tenant
            )
        wanted = [s for s in scopes if s not in ("openid", "profile", "offline_access")]
        if any(s in self.no_consent for s in wanted):
            return _error(
                400,
                "invalid_grant",
                65001,
                "The user or administrator has not consented to use the application.",
                tenant,
                suberror="consent_required",
            )
        resource, _, _scope = wanted[0].rpartition("/") if wanted else ("", "", "")
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": self.issuer(user["tid"]),
            "iat": now,
            "nbf": now,
            "exp": now + self.expires_in,
            "tid": user["tid"],
            "oid": user["oid"],
            "sub": user.get("sub"),
            "upn": user.get("preferred_username"),
            "scp": " ".join(s.rpartition("/")[2] for s in wanted),
            "azp": client_id,
        }
        id_claims = {
            "aud": client_id,
            "iss": self.issuer(user["tid"]),
            "iat": now,
            "exp": now + self.expires_in,
            "tid": user["tid"],
            "oid": user["oid"],
            "sub": user.get("sub"),
            "preferred_username": user.get("preferred_username"),
        }
        client_info = jwt.utils.base64url_encode(
            f'{{"uid":"{user["oid"]}","utid":"{user["tid"]}"}}'.encode()
        ).decode()
        return jsonify(
            token_type="Bearer",
            scope=" ".join(wanted),
            expires_in=self.expires_in,
            access_token=self.mint(claims),
            id_token=self.mint(id_claims),
            client_info=client_info,
        )

    def start(self, ssl_context: Any) -> None:
        self._server = make_server(
            self.host, self.port, self.app, threaded=True, ssl_context=ssl_context
        )
        threading.Thread(target=self._server.serve_forever, name="fake-issuer", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _error(status: int, error: str, code: int, text: str, tenant: str, **extra: Any) -> Any:
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {text} Trace ID: {uuid.uuid4()}",
        "error_codes": [code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
        **extra,
    }
    return jsonify(body), status
