"""The bearer-token attack matrix (ADDIN.md §4.4), against the real issuer's JWKS over HTTPS:
each forged or wrong token is rejected with the right status and machine-readable reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

from sendready.auth.http import make_session
from sendready.auth.tokens import AuthError, TokenValidator
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.web import create_app
from tests.conftest import Pki, addr
from tests.fixtures.issuer import API_CLIENT_ID, OTHER_TENANT, TENANT
from tests.servers.fake_issuer import FakeIssuer


def settings_for(issuer: FakeIssuer, pki: Pki, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "client_id": API_CLIENT_ID,
        "authority": f"{issuer.base}/organizations",
        "auth_ca_file": pki.ca,
        # No checks run in these tests; the nameserver is never asked.
        "dns_servers": parse_nameservers(addr(54)),
        **extra,
    }
    return Settings(**values)


def app_for(settings: Settings) -> Flask:
    return create_app(settings, engine=Engine(settings, checks={}))


def post(client: FlaskClient, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post("/api/v1/checks", json={"from": "alice@m365-good.test"}, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def client(issuer: FakeIssuer, pki: Pki) -> FlaskClient:
    return app_for(settings_for(issuer, pki, tenant_allowlist=(TENANT,))).test_client()


def good_claims(issuer: FakeIssuer, **extra: Any) -> dict[str, Any]:
    return issuer.user_claims(TENANT, API_CLIENT_ID, **extra)


def test_valid_token_is_accepted_and_the_user_is_oid_and_tid(
    client: FlaskClient, issuer: FakeIssuer, pki: Pki
) -> None:
    response = post(client, issuer.mint(good_claims(issuer)))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["domain"] == "m365-good.test"
    validator = TokenValidator(settings_for(issuer, pki), make_session(settings_for(issuer, pki)))
    principal = validator.validate("Bearer " + issuer.mint(good_claims(issuer, oid="o-1")))
    assert principal.user == f"o-1@{TENANT}"
    assert principal.token not in repr(principal)


def _hs256_with_public_key(issuer: FakeIssuer) -> str:
    public_pem = (
        issuer.keys["key-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "key-1"}).encode())
    payload = b64(json.dumps(good_claims(issuer)).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def _alg_none(issuer: FakeIssuer) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "key-1"}).encode())
    return f"{header}.{b64(json.dumps(good_claims(issuer)).encode())}."


CASES: dict[str, tuple[Any, int, str]] = {
    "missing header": (lambda i: None, 401, "missing_token"),
    "alg none": (_alg_none, 403, "bad_algorithm"),
    "HS256 signed with the public key": (_hs256_with_public_key, 403, "bad_algorithm"),
    "wrong aud": (
        lambda i: i.mint(i.user_claims(TENANT, "api://someone-else")),
        403,
        "wrong_audience",
    ),
    "wrong iss": (
        lambda i: i.mint(good_claims(i, iss=f"https://{addr(45)}:8443/{TENANT}/v2.0")),
        403,
        "wrong_issuer",
    ),
    "iss of another tenant than tid": (
        lambda i: i.mint(good_claims(i, iss=i.issuer(OTHER_TENANT))),
        403,
        "wrong_issuer",
    ),
    "tenant outside the allow-list": (
        lambda i: i.mint(i.user_claims(OTHER_TENANT, API_CLIENT_ID)),
        403,
        "tenant_not_allowed",
    ),
    "expired": (
        lambda i: i.mint(good_claims(i, exp=int(time.time()) - 3600)),
        401,
        "token_expired",
    ),
    "nbf in the future": (
        lambda i: i.mint(good_claims(i, nbf=int(time.time()) + 3600)),
        403,
        "token_not_yet_valid",
    ),
    "unknown kid": (
        lambda i: i.mint(
            good_claims(i),
            kid="ghost",
            key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ),
        403,
        "unknown_key",
    ),
    "missing scp": (lambda i: i.mint(good_claims(i, scp=None)), 403, "missing_scope"),
    "other scope only": (lambda i: i.mint(good_claims(i, scp="User.Read")), 403, "missing_scope"),
    "missing oid": (lambda i: i.mint(good_claims(i, oid=None)), 403, "missing_claim"),
    "tid not a GUID": (lambda i: i.mint(good_claims(i, tid="contoso")), 403, "bad_tenant"),
    "garbage": (lambda i: "not-a-jwt", 403, "malformed_token"),
    "garbage with dots": (lambda i: "eyJhbGciOi.eyJzdWIi.c2ln", 403, "malformed_token"),
    "v1 token": (
        lambda i: i.mint(good_claims(i, ver="1.0", aud=f"api://{API_CLIENT_ID}")),
        403,
        "v1_token",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_attack_matrix_rejects_each_bad_token_with_the_right_status(
    case: str, client: FlaskClient, issuer: FakeIssuer
) -> None:
    make, status, reason = CASES[case]
    response = post(client, make(issuer))
    assert response.status_code == status, response.get_json()
    problem = response.get_json()
    assert response.mimetype == "application/problem+json"
    assert problem["status"] == status and problem["reason"] == reason
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_a_key_published_for_another_issuer_cannot_sign_for_this_one(
    issuer: FakeIssuer, pki: Pki
) -> None:
    # The key is in the JWKS, but Entra publishes it for one tenant's issuer only.
    key = issuer.add_key("tenant-key", issuer=issuer.issuer(OTHER_TENANT))
    client = app_for(settings_for(issuer, pki)).test_client()
    response = post(client, issuer.mint(good_claims(issuer), kid="tenant-key", key=key))
    assert response.status_code == 403
    assert response.get_json()["reason"] == "key_issuer_mismatch"
    # The same key is fine for the tenant it was published for.
    other = issuer.user_claims(OTHER_TENANT, API_CLIENT_ID)
    assert post(client, issuer.mint(other, kid="tenant-key", key=key)).status_code == 200


def test_rotated_key_is_fetched_on_unknown_kid(issuer: FakeIssuer, pki: Pki) -> None:
    settings = settings_for(issuer, pki, jwks_min_refresh=0.0)
    validator = TokenValidator(settings, make_session(settings))
    validator.validate("Bearer " + issuer.mint(good_claims(issuer)))
    assert validator.jwks_fetches == 1
    validator.validate("Bearer " + issuer.mint(good_claims(issuer)))
    assert validator.jwks_fetches == 1  # cached
    issuer.add_key("rotated")
    validator.validate("Bearer " + issuer.mint(good_claims(issuer), kid="rotated"))
    assert validator.jwks_fetches == 2


def test_a_flood_of_unknown_kids_refreshes_the_jwks_at_most_once_per_interval(
    issuer: FakeIssuer, pki: Pki
) -> None:
    settings = settings_for(issuer, pki, jwks_min_refresh=60.0)
    validator = TokenValidator(settings, make_session(settings))
    validator.validate("Bearer " + issuer.mint(good_claims(issuer)))
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for n in range(20):
        with pytest.raises(AuthError) as caught:
            validator.validate(
                "Bearer " + issuer.mint(good_claims(issuer), kid=f"made-up-{n}", key=stranger)
            )
        assert caught.value.reason == "unknown_key"
    assert validator.jwks_fetches == 1


def test_v1_tokens_are_accepted_only_when_configured_with_the_app_id_uri(
    issuer: FakeIssuer, pki: Pki
) -> None:
    settings = settings_for(
        issuer, pki, accept_v1_tokens=True, token_v1_issuer=f"{issuer.base}/{{tenantid}}/"
    )
    client = app_for(settings).test_client()
    v1 = good_claims(
        issuer, ver="1.0", aud=f"api://{API_CLIENT_ID}", iss=f"{issuer.base}/{TENANT}/"
    )
    assert post(client, issuer.mint(v1)).status_code == 200
    wrong_aud = dict(v1, aud=API_CLIENT_ID)
    assert post(client, issuer.mint(wrong_aud)).get_json()["reason"] == "wrong_audience"


def test_small_clock_skew_is_tolerated(client: FlaskClient, issuer: FakeIssuer) -> None:
    now = int(time.time())
    token = issuer.mint(good_claims(issuer, exp=now - 20, nbf=now + 20))
    assert post(client, token).status_code == 200


def test_unreachable_issuer_is_503_not_a_rejected_user(pki: Pki) -> None:
    settings = Settings(
        client_id=API_CLIENT_ID,
        authority=f"https://{addr(44)}:8499/organizations",  # nothing listens there
        auth_ca_file=pki.ca,
        dns_servers=parse_nameservers(addr(54)),
    )
    client = app_for(settings).test_client()
    token = jwt.encode(
        {"tid": TENANT, "oid": "x"},
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
        headers={"kid": "k"},
    )
    response = post(client, token)
    assert response.status_code == 503
    assert response.get_json()["reason"] == "keys_unavailable"
