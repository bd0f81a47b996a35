"""Ready-to-paste records in the task pane, in headless Chromium against the real service
(the multi-tenant gunicorn of tests/integration/test_tenant_domain.py, whose Graph is the fake
issuer's): a sender on a Microsoft 365 domain with no SPF, no DKIM and no DMARC
(tests/zones/fix-spf-missing.test.zone) sees the corrected SPF record, the two DKIM CNAMEs
into the signed-in user's tenant, and the staged DMARC records, each with a labelled copy
button that copies exactly the value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.browser.conftest import Pane
from tests.fixtures.backend import Backend
from tests.fixtures.issuer import API_CLIENT_ID
from tests.fixtures.pane_server import PaneServer
from tests.integration.test_tenant_domain import service, tenant  # noqa: F401 - a fixture
from tests.servers.fake_issuer import FakeIssuer

DOMAIN = "fix-spf-missing.test"
SENDER = f"admin@{DOMAIN}"
TENANT = "fix-tenant.onmicrosoft.test"
DONE = 'body[data-state="done"], body[data-state="error"]'


@pytest.fixture
def signed_in(
    browser: Any,
    service: Backend,  # noqa: F811 - the fixture imported above
    issuer: FakeIssuer,
) -> Iterator[Pane]:
    """A pane on the multi-tenant service, signed in as admin@ of a tenant that verified
    the domain."""
    tid = tenant(issuer, TENANT, DOMAIN)
    claims = issuer.user_claims(tid, API_CLIENT_ID, oid=f"pane-{tid}", upn=SENDER)
    server = PaneServer(service.base, True, None, issuer.mint(claims))
    context = browser.new_context(viewport={"width": 360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20000)
    pane = Pane(page, server)
    page.route("**/*", pane.route)
    try:
        yield pane
    finally:
        context.close()


def records_of(page: Any, finding_id: str) -> list[dict[str, str]]:
    """Each record shown under the finding: its name, value and copy button's attributes."""
    items = page.locator(f'#sender-body li.finding[data-id="{finding_id}"] ul.records > li')
    out = []
    for index in range(items.count()):
        item = items.nth(index)
        button = item.locator("fluent-button.copy")
        out.append(
            {
                "type": item.get_attribute("data-type") or "",
                "name": item.locator("code").first.inner_text(),
                "value": item.locator(".record-value").inner_text(),
                "copy": button.get_attribute("data-copy") or "",
                "label": button.get_attribute("aria-label") or "",
            }
        )
    return out


def test_the_dkim_cnames_spf_and_dmarc_records_show_with_copy_buttons(signed_in: Pane) -> None:
    page = signed_in.open(stub={"from": SENDER, "to": []})
    page.wait_for_selector(DONE)
    assert page.locator("body").get_attribute("data-state") == "done"

    dkim = records_of(page, "dkim.missing")
    assert [(r["type"], r["name"], r["copy"]) for r in dkim] == [
        (
            "CNAME",
            f"{s}._domainkey.{DOMAIN}",
            f"{s}-fix-spf-missing-test._domainkey.{TENANT}",
        )
        for s in ("selector1", "selector2")
    ]
    for n, (record, selector) in enumerate(zip(dkim, ("selector1", "selector2"), strict=True)):
        assert record["value"] == record["copy"]
        # The pane shortens a label to 40 characters; the position comes first, so a
        # screen reader tells the records of one finding apart.
        assert record["label"].startswith(f"Copy {n + 1}/2 CNAME {selector}._domainkey.")

    (spf,) = records_of(page, "spf.missing")
    assert (spf["type"], spf["name"]) == ("TXT", DOMAIN)
    assert spf["copy"] == spf["value"] == "v=spf1 include:spf.protection.outlook.test -all"
    assert spf["label"] == f"Copy TXT {DOMAIN}"

    dmarc = records_of(page, "dmarc.missing")
    assert [r["name"] for r in dmarc] == [f"_dmarc.{DOMAIN}"] * 3
    assert [r["copy"].split("; ")[1] for r in dmarc] == ["p=none", "p=quarantine", "p=reject"]
    assert all(r["copy"] == r["value"] and r["copy"].startswith("v=DMARC1; ") for r in dmarc)
    assert all(f"rua=mailto:dmarc-reports@{DOMAIN}" in r["copy"] for r in dmarc)
    assert [r["label"] for r in dmarc] == [f"Copy {n}/3 TXT _dmarc.{DOMAIN}" for n in (1, 2, 3)]

    first = page.locator('#sender-body li.finding[data-id="dkim.missing"] fluent-button.copy')
    first.first.click()
    page.wait_for_selector("#announce:not(:empty)", state="attached")
