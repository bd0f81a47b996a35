"""Pure parts of auth/: the JWKS refresh policy, AADSTS explanations, the token store,
the bearer header, and log redaction."""

from __future__ import annotations

from typing import Any

import pytest

from sendready.auth.msal_client import AccessToken, MemoryTokenStore, explain
from sendready.auth.tokens import AuthError, KeySet, bearer
from sendready.web.logs import redact


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keyset_refreshes_on_unknown_kid_at_most_once_per_interval() -> None:
    clock, fetched = Clock(), []
    published = {"keys": [{"kid": "a", "kty": "RSA"}]}

    def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        return published

    keys = KeySet("https://issuer.test/keys", fetch, min_refresh=60, clock=clock)
    assert keys.get("a") is not None and len(fetched) == 1
    assert keys.get("b") is None and len(fetched) == 1  # too soon after the first fetch
    clock.now += 61
    published = {"keys": [{"kid": "a"}, {"kid": "b"}]}
    assert keys.get("b") is not None and len(fetched) == 2
    assert keys.get("a") is not None and len(fetched) == 2  # known kid: no fetch


def test_keyset_refreshes_daily_even_for_known_kids() -> None:
    clock, fetched = Clock(), []

    def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        return {"keys": [{"kid": "a"}]}

    keys = KeySet("https://issuer.test/keys", fetch, min_refresh=60, clock=clock)
    keys.get("a")
    clock.now += 24 * 3600 + 1
    keys.get("a")
    assert len(fetched) == 2


def test_keyset_refuses_a_document_without_keys() -> None:
    keys = KeySet("u", lambda url: {"nope": []}, min_refresh=0)
    with pytest.raises(ValueError, match="keys"):
        keys.get("a")


@pytest.mark.parametrize(
    ("header", "ok"),
    [("Bearer abc", True), ("bearer abc", True), ("Basic abc", False), ("Bearer ", False),
     ("", False), (None, False), ("abc", False)],
)  # fmt: skip
def test_bearer_header(header: str | None, ok: bool) -> None:
    if ok:
        assert bearer(header) == "abc"
    else:
        with pytest.raises(AuthError) as caught:
            bearer(header)
        assert caught.value.status == 401 and caught.value.reason == "missing_token"


def test_aadsts_codes_become_admin_instructions() -> None:
    consent = explain({"error": "invalid_grant", "error_codes": [65001]})
    assert (consent.status, consent.reason) == (403, "consent_required")
    assert "admin consent" in consent.detail
    expired = explain({"error": "invalid_grant", "error_codes": [500133]})
    assert (expired.status, expired.reason) == (401, "token_expired")
    unknown = explain({"error": "temporarily_unavailable", "error_description": "busy\nTrace"})
    assert unknown.status == 502 and unknown.detail == "busy"


def test_memory_token_store_expires_and_is_bounded() -> None:
    clock = Clock()
    store = MemoryTokenStore(limit=2, clock=clock)
    token = AccessToken("secret-token-value", clock.now + 100, ("s",))
    store.put("a", token, ttl=10)
    assert store.get("a") == token
    clock.now += 11
    assert store.get("a") is None
    for key in "bcd":
        store.put(key, token, ttl=10)
    assert store.get("b") is None and store.get("d") == token
    assert "secret-token-value" not in repr(token)


def test_redaction_removes_tokens_and_secrets() -> None:
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    text = redact(
        f"auth {jwt_like} Authorization: Bearer abc.def client_secret=s3cret password: hunter2"
    )
    for secret in (jwt_like, "abc.def", "s3cret", "hunter2"):
        assert secret not in text
    assert redact("alice@example.com checked m365-good.test") == (
        "alice@example.com checked m365-good.test"
    )
