"""The provider-requirements checklist in the pane, and the draft's unsubscribe headers it
reads through Office.js (Mailbox 1.8 internetHeaders) and sends with the sender's check."""

from __future__ import annotations

from typing import Any

from tests.browser.test_pane import DONE, SENDER, Z, needs_api, outlook

ONE_CLICK = {
    "List-Unsubscribe": "<https://good.mx.test/unsubscribe?u=1>, <mailto:unsub@good.mx.test>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def line(page: Any, item_id: str) -> Any:
    return page.locator(f'#requirements-body li[data-id="{item_id}"]')


def sender_request(p: Any) -> dict[str, Any]:
    (request,) = [r for r in p.api_requests if r["recipients"] == []]
    return request


def test_the_drafts_unsubscribe_headers_go_with_the_senders_check_only(pane: Any) -> None:
    p = pane("backend")
    needs_api(p)
    page = outlook(p, to=[f"bob@good.{Z}"], headers={**ONE_CLICK, "X-Other": "not read"})
    page.wait_for_selector(DONE)
    assert "internetHeaders.getAsync" in page.evaluate("window.__office.calls")
    assert sender_request(p)["headers"] == ONE_CLICK
    (recipients,) = [r for r in p.api_requests if r["recipients"]]
    assert "headers" not in recipients
    unsubscribe = line(page, "requirements.one_click_unsubscribe")
    assert unsubscribe.get_attribute("data-status") == "pass"


def test_a_draft_without_the_headers_is_told_they_are_missing(pane: Any) -> None:
    p = pane("backend")
    needs_api(p, recipients=False)
    page = outlook(p, to=[], headers={})
    page.wait_for_selector(DONE)
    assert sender_request(p)["headers"] == {}
    unsubscribe = line(page, "requirements.one_click_unsubscribe")
    assert unsubscribe.get_attribute("data-status") == "fail"
    assert "List-Unsubscribe" in (unsubscribe.text_content() or "")


def test_a_client_without_internet_headers_sends_none_and_the_line_says_unknown(
    pane: Any,
) -> None:
    p = pane("backend")
    needs_api(p, recipients=False)
    # Mailbox 1.7: internetHeaders is not there to call.
    page = outlook(p, to=[], headers=ONE_CLICK, sets={"Mailbox": "1.7", "NestedAppAuth": "1.1"})
    page.wait_for_selector(DONE)
    assert "internetHeaders.getAsync" not in page.evaluate("window.__office.calls")
    assert "headers" not in sender_request(p)
    assert line(page, "requirements.one_click_unsubscribe").get_attribute("data-status") == (
        "unknown"
    )


def test_the_checklist_names_the_providers_and_what_dns_cannot_show(pane: Any) -> None:
    p = pane("backend")
    needs_api(p, recipients=False)
    page = outlook(p, to=[], headers={})
    page.wait_for_selector(DONE)
    lines = page.locator("#requirements-body li.finding")
    statuses = {lines.nth(i).get_attribute("data-status") for i in range(lines.count())}
    assert lines.count() >= 8 and "not_checkable" in statuses
    dmarc = line(page, "requirements.dmarc_record")
    assert "Gmail" in dmarc.inner_text() and "Yahoo" in dmarc.inner_text()
    # Every line says its status in words for a screen reader.
    labels = page.locator("#requirements-body .status").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('aria-label'))"
    )
    assert all(labels) and "Cannot be checked" in labels
    assert SENDER.split("@")[1] in page.inner_text("#sender-hint")
