"""Send As through the real service under gunicorn (TESTING.md §10.1): the mailbox comes from
the pane's token, the own addresses from the fake issuer's Graph on behalf of the user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fixtures.backend import Backend
from tests.fixtures.issuer import API_CLIENT_ID, TENANT
from tests.servers.fake_issuer import FakeIssuer

MAILBOX = "alice@m365-good.test"
PROXIES = [
    "SMTP:Alice@m365-good.test",
    "smtp:Sales@M365-Good.test",
    "SIP:ceo@m365-good.test",
    "X500:/o=ExchangeLabs/cn=alice",
]
REJECTION = "550 5.7.60 SMTP; Client does not have permissions to send as this sender"


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        yield session


def token_for(issuer: FakeIssuer, oid: str) -> str:
    """The pane's token for a user whose Graph proxy addresses are PROXIES."""
    issuer.proxy_addresses[oid] = PROXIES
    return issuer.mint(issuer.user_claims(TENANT, API_CLIENT_ID, oid=oid, upn=MAILBOX))


def check(http: requests.Session, backend: Backend, token: str, sender: str) -> dict[str, Any]:
    response = http.post(
        f"{backend.base}/api/v1/checks",
        json={"from": sender, "options": {"probe_smtp": False}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def send_as(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["id"] == "sendas.not_permitted"]


def test_an_alias_of_the_mailbox_passes_whatever_its_case(
    backend: Backend, issuer: FakeIssuer, http: requests.Session
) -> None:
    report = check(http, backend, token_for(issuer, "sendas-alias"), "sales@m365-good.test")
    [found] = send_as(report)
    assert found["status"] == "pass"
    assert found["title"] == "sales@m365-good.test is one of your own addresses"
    assert found["data"]["mailbox"] == MAILBOX


def test_a_foreign_from_predicts_the_5_7_60_rejection_and_the_fix(
    backend: Backend, issuer: FakeIssuer, http: requests.Session
) -> None:
    # ceo@ appears only as a SIP proxy address: not an SMTP address of the mailbox.
    report = check(http, backend, token_for(issuer, "sendas-foreign"), "ceo@m365-good.test")
    [found] = send_as(report)
    assert (found["status"], found["severity"]) == ("fail", "critical")
    assert REJECTION in found["detail"] and found["data"]["reply"] == REJECTION
    assert "Send As" in found["fix"] and "alias" in found["fix"]
    assert "Add-RecipientPermission -Identity ceo@m365-good.test -Trustee" in found["fix"]


def test_a_graph_failure_gives_unknown_and_the_check_still_runs(
    backend: Backend, issuer: FakeIssuer, http: requests.Session
) -> None:
    scope = f"{issuer.base}/graph/User.Read"
    issuer.no_consent.add(scope)
    try:
        report = check(http, backend, token_for(issuer, "sendas-nograph"), "ceo@m365-good.test")
    finally:
        issuer.no_consent.discard(scope)
    [found] = send_as(report)
    assert found["status"] == "unknown"
    assert "could not be read from Microsoft Graph" in found["detail"]
    assert any(f["id"] == "dmarc.will_fail" for f in report["findings"])


def test_sending_as_the_mailbox_itself_asks_graph_nothing(
    backend: Backend, issuer: FakeIssuer, http: requests.Session
) -> None:
    token = token_for(issuer, "sendas-self")
    before = issuer.counters["graph_me"]
    report = check(http, backend, token, "Alice@M365-Good.test")
    assert send_as(report) == []
    assert issuer.counters["graph_me"] == before
