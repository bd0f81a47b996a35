"""MSAL's real code path against the Entra-like issuer over HTTPS: client credentials,
on-behalf-of for SMTP.Send and Graph, token caching (in memory and shared through Redis,
asserted on the issuer's request counters), and AADSTS errors as problems for the admin."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import redis

from sendready.auth.http import make_session
from sendready.auth.msal_client import RedisTokenStore, ServiceAuthError, TokenBroker
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.web import create_app
from tests.conftest import Pki, addr
from tests.fixtures.issuer import API_CLIENT_ID, API_SECRET, TENANT
from tests.servers.fake_issuer import FakeIssuer

SMTP_SEND = "https://outlook.office.com/SMTP.Send"


def settings_for(issuer: FakeIssuer, pki: Pki, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "client_id": API_CLIENT_ID,
        "client_secret": API_SECRET,
        "authority": f"{issuer.base}/{TENANT}",
        "auth_ca_file": pki.ca,
        "graph_url": f"{issuer.base}/graph",
        "dns_servers": parse_nameservers(addr(54)),
        **extra,
    }
    return Settings(**values)


@pytest.fixture
def fresh(issuer: FakeIssuer) -> Iterator[FakeIssuer]:
    issuer.counters.clear()
    issuer.no_consent.clear()
    yield issuer
    issuer.no_consent.clear()


def user_token(issuer: FakeIssuer, **extra: Any) -> str:
    return issuer.mint(issuer.user_claims(TENANT, API_CLIENT_ID, **extra))


def test_client_credentials_token_is_for_the_resource_and_cached(
    fresh: FakeIssuer, pki: Pki
) -> None:
    settings = settings_for(fresh, pki)
    broker = TokenBroker(settings, make_session(settings))
    first = broker.for_client(["api://downstream/.default"])
    second = broker.for_client(["api://downstream/.default"])
    assert first == second
    claims = jwt.decode(first, options={"verify_signature": False})
    assert claims["aud"] == "api://downstream" and claims["idtyp"] == "app"
    assert claims["appid"] == API_CLIENT_ID
    assert fresh.counters["client_credentials"] == 1


def test_obo_for_smtp_send_carries_the_user_and_is_cached(fresh: FakeIssuer, pki: Pki) -> None:
    settings = settings_for(fresh, pki)
    broker = TokenBroker(settings, make_session(settings))
    assertion = user_token(fresh, oid="0b0-user")
    token = broker.on_behalf_of(assertion, [SMTP_SEND])
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == "https://outlook.office.com" and claims["scp"] == "SMTP.Send"
    assert claims["oid"] == "0b0-user" and claims["tid"] == TENANT
    assert broker.on_behalf_of(assertion, [SMTP_SEND]) == token
    assert fresh.counters["obo"] == 1
    # Another user's assertion is another exchange.
    broker.on_behalf_of(user_token(fresh, oid="someone-else"), [SMTP_SEND])
    assert fresh.counters["obo"] == 2


def test_tokens_close_to_expiry_are_not_reused(fresh: FakeIssuer, pki: Pki) -> None:
    settings = settings_for(fresh, pki)
    broker = TokenBroker(settings, make_session(settings))
    fresh.expires_in = 200  # under the 300 s margin: never worth caching
    try:
        assertion = user_token(fresh)
        broker.on_behalf_of(assertion, [SMTP_SEND])
        broker.on_behalf_of(assertion, [SMTP_SEND])
    finally:
        fresh.expires_in = 3600
    assert fresh.counters["obo"] == 2


def test_obo_cache_in_redis_is_shared_between_instances(
    fresh: FakeIssuer, pki: Pki, redis_url: str
) -> None:
    settings = settings_for(fresh, pki, redis_url=redis_url)
    client = redis.Redis.from_url(redis_url)
    a = TokenBroker(settings, make_session(settings), RedisTokenStore(client))
    b = TokenBroker(settings, make_session(settings), RedisTokenStore(client))
    assertion = user_token(fresh)
    assert a.on_behalf_of(assertion, [SMTP_SEND]) == b.on_behalf_of(assertion, [SMTP_SEND])
    assert fresh.counters["obo"] == 1
    keys = client.keys("sendready:token:*")
    assert len(keys) == 1 and assertion.encode() not in keys[0]  # keyed by a hash
    ttl = client.ttl(keys[0])
    assert 0 < ttl <= 3600 - 300


def test_missing_consent_is_a_403_that_tells_the_admin_what_to_do(
    fresh: FakeIssuer, pki: Pki
) -> None:
    settings = settings_for(fresh, pki)
    broker = TokenBroker(settings, make_session(settings))
    fresh.no_consent.add(SMTP_SEND)
    with pytest.raises(ServiceAuthError) as caught:
        broker.on_behalf_of(user_token(fresh), [SMTP_SEND])
    assert caught.value.status == 403 and caught.value.reason == "consent_required"
    assert "admin consent" in caught.value.detail and "AADSTS65001" in caught.value.detail


def test_wrong_client_secret_says_which_setting_to_fix(fresh: FakeIssuer, pki: Pki) -> None:
    settings = settings_for(fresh, pki, client_secret="stale-secret")
    broker = TokenBroker(settings, make_session(settings))
    with pytest.raises(ServiceAuthError) as caught:
        broker.for_client(["api://downstream/.default"])
    assert caught.value.status == 403
    assert "SENDREADY_CLIENT_SECRET" in caught.value.detail


def test_api_returns_the_users_addresses_from_graph_primary_first(
    fresh: FakeIssuer, pki: Pki
) -> None:
    settings = settings_for(fresh, pki)
    client = create_app(settings, engine=Engine(settings, checks={})).test_client()
    fresh.proxy_addresses["graph-user"] = [
        "smtp:alias@m365-good.test",
        "SMTP:Alice@M365-Good.test",
        "X500:/o=ExchangeLabs/cn=alice",
        "smtp:alice@contoso.onmicrosoft.test",
    ]
    headers = {"Authorization": "Bearer " + user_token(fresh, oid="graph-user")}
    response = client.get("/api/v1/me/addresses", headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["addresses"] == [
        "alice@m365-good.test",
        "alias@m365-good.test",
        "alice@contoso.onmicrosoft.test",
    ]
    client.get("/api/v1/me/addresses", headers=headers)
    assert fresh.counters["obo"] == 1  # the Graph token was reused
    assert fresh.counters["graph_me"] == 2


def test_api_turns_missing_graph_consent_into_a_problem(fresh: FakeIssuer, pki: Pki) -> None:
    settings = settings_for(fresh, pki)
    client = create_app(settings, engine=Engine(settings, checks={})).test_client()
    fresh.no_consent.add(f"{fresh.base}/graph/User.Read")
    headers = {"Authorization": "Bearer " + user_token(fresh)}
    response = client.get("/api/v1/me/addresses", headers=headers)
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["reason"] == "consent_required" and "administrator" in problem["detail"]


def test_submission_option_passes_an_obo_smtp_token_to_the_engine(
    fresh: FakeIssuer, pki: Pki
) -> None:
    from sendready.engine import Section

    seen: list[str | None] = []

    async def record(ctx: Any) -> Section:
        seen.append(ctx.request.oauth_token)
        return Section(())

    settings = settings_for(fresh, pki)
    client = create_app(settings, engine=Engine(settings, checks={"r": record})).test_client()
    headers = {"Authorization": "Bearer " + user_token(fresh, oid="sender")}
    body = {"from": "alice@m365-good.test", "options": {"submission": True}}
    assert client.post("/api/v1/checks", json=body, headers=headers).status_code == 200
    (token,) = seen
    assert token is not None
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["scp"] == "SMTP.Send" and claims["oid"] == "sender"


def test_msal_never_leaves_loopback(fresh: FakeIssuer, pki: Pki) -> None:
    # The loopback guard would raise on any other address; a full exchange succeeded,
    # and instance discovery (which would contact Microsoft) is off.
    settings = settings_for(fresh, pki)
    broker = TokenBroker(settings, make_session(settings))
    broker.for_client(["api://x/.default"])
    assert fresh.counters["metadata"] >= 1
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("login.microsoftonline.com", 443)


def test_certificate_credential_signs_a_client_assertion(
    fresh: FakeIssuer, pki: Pki, tmp_path: Any
) -> None:
    import trustme
    from cryptography import x509

    # Entra takes RSA certificates for client assertions.
    leaf = pki.intermediate.issue_cert("sendready-client.test", key_type=trustme.KeyType.RSA)
    pem = tmp_path / "client.pem"
    pem.write_bytes(leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes())
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    fresh.client_certs[API_CLIENT_ID] = cert.public_key()
    try:
        settings = settings_for(fresh, pki, client_secret="", client_cert=str(pem))
        broker = TokenBroker(settings, make_session(settings))
        token = broker.for_client(["api://downstream/.default"])
        assert jwt.decode(token, options={"verify_signature": False})["appid"] == API_CLIENT_ID
        assert fresh.counters["client_assertion"] == 1
    finally:
        fresh.client_certs.clear()
