"""The task pane in headless Chromium against the service: modes, groups, partial results,
errors explained in place, sign-in at the MSAL boundary, keyboard use and labels."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.browser.conftest import SCREENSHOTS, Pane
from tests.conftest import ROOT
from tests.fixtures.issuer import API_CLIENT_ID as CLIENT_ID

from sendready.engine import default_checks

Z = "recip-cases.test"
SENDER = "alice@good.mx.test"
# Waiting by selector, not wait_for_function: the pane's CSP forbids eval, which that uses.
DONE = 'body[data-state="done"], body[data-state="error"]'


def needs_api(p: Pane, recipients: bool = True) -> None:
    assert p.server.has_api, "the pane server has no API"
    assert not recipients or "recipients" in default_checks()


def outlook(p: Pane, **stub: Any) -> Any:
    stub.setdefault("from", SENDER)
    return p.open(stub=stub)


def accessible(page: Any) -> set[tuple[str, str]]:
    """(role, name) of every node in Chromium's own accessibility tree: what a screen reader
    gets. Fluent buttons take their role from ElementInternals, which Playwright's
    role selectors do not read."""
    cdp = page.context.new_cdp_session(page)
    tree = cdp.send("Accessibility.getFullAXTree")
    cdp.detach()
    out = set()
    for node in tree["nodes"]:
        role = (node.get("role") or {}).get("value", "")
        name = (node.get("name") or {}).get("value", "")
        if role and name and not node.get("ignored"):
            out.add((role, name))
    return out


def finding(page: Any, finding_id: str, subject: str | None = None) -> Any:
    selector = f'li.finding[data-id="{finding_id}"]'
    if subject:
        selector += f'[data-subject="{subject}"]'
    return page.locator(selector)


# -- modes -------------------------------------------------------------------------------


def test_outside_outlook_the_pane_offers_a_form(pane: Any) -> None:
    p = pane()
    page = p.open(stub={"host": None})
    page.wait_for_selector("#standalone:not([hidden])")
    assert page.locator("body").get_attribute("data-mode") == "standalone"
    assert page.locator("#context").is_hidden()
    assert p.api_requests == []  # nothing is checked before the user asks


def test_without_office_js_at_all_the_pane_still_works_standalone(pane: Any) -> None:
    p = pane()
    p.api_fault = None
    page = p.page
    page.route("**/test-site/office-stub.js", lambda route: route.abort())
    page.goto(p.server.base + "/taskpane.html")
    page.wait_for_selector("#standalone:not([hidden])")
    assert page.evaluate("typeof window.Office") == "undefined"


def test_in_outlook_the_pane_reads_from_and_recipients_and_checks_at_once(pane: Any) -> None:
    p = pane()
    page = outlook(p, to=[f"bob@good.{Z}"], cc=[f"carol@good.{Z}", f"BOB@good.{Z}"])
    page.wait_for_selector(DONE)
    assert page.locator("body").get_attribute("data-mode") == "outlook"
    assert SENDER in page.inner_text("#context-from")
    assert f"carol@good.{Z}" in page.inner_text("#context-to")
    calls = page.evaluate("window.__office.calls")
    assert {"from.getAsync", "to.getAsync", "cc.getAsync"} <= set(calls)
    # One request for the sender, one for the (deduplicated) recipients.
    assert [r["recipients"] for r in p.api_requests] == [[], [f"bob@good.{Z}", f"carol@good.{Z}"]]
    assert all(r["from"] == SENDER for r in p.api_requests)


# -- results -----------------------------------------------------------------------------


def test_groups_verdict_and_findings_come_from_the_service(pane: Any) -> None:
    p = pane("backend")
    needs_api(p)
    page = outlook(p, to=[f"bob@good.{Z}", f"dan@missing.{Z}", "erin@gmial.com"])
    page.wait_for_selector(DONE)
    assert page.locator("body").get_attribute("data-state") == "done"
    # Sender group: the MX check of the sender's domain, from Knot via the engine.
    mx = finding(page, "mx.present")
    assert mx.count() == 1 and "mx1.good.mx.test" in (mx.text_content() or "")
    # Recipients group, per domain.
    assert page.locator(f'#recipients-body section[data-domain="good.{Z}"]').count() == 1
    missing = finding(page, "recipient.domain_missing", f"missing.{Z}")
    assert missing.count() == 1
    assert missing.get_attribute("data-status") == "fail"
    assert "does not exist" in missing.inner_text()
    typo = finding(page, "recipient.possible_typo", "gmial.com")
    assert "gmail.com" in typo.inner_text()
    assert "erin@gmail.com" in typo.locator(".fix").inner_text()
    # Status is announced in words, not only by colour or symbol.
    assert missing.locator(".status").get_attribute("aria-label") == "Problem, Critical"
    verdict = page.locator("#verdict")
    assert verdict.get_attribute("data-level") == "critical"
    assert "will probably not arrive" in verdict.inner_text()


def test_a_clean_message_gets_a_clean_verdict(pane: Any) -> None:
    p = pane("backend")
    needs_api(p)
    page = outlook(p, to=[f"bob@good.{Z}"])
    page.wait_for_selector(DONE)
    problems = page.locator('#recipients-body li.finding[data-status="fail"]')
    assert problems.count() == 0
    assert finding(page, "recipient.accepts_mail", f"good.{Z}").count() == 1


def test_partial_results_show_whichever_answer_arrives_first(pane: Any) -> None:
    p = pane("backend")
    needs_api(p)

    def hold_sender(route: Any) -> bool:
        if json.loads(route.request.post_data or "{}").get("recipients") == []:
            p.held.append(route)
            return True
        return False

    p.api_fault = hold_sender
    page = outlook(p, to=[f"dan@missing.{Z}"])
    page.wait_for_selector('#recipients-body li[data-id="recipient.domain_missing"]')
    # The sender's answer is still outstanding: its group says so, the verdict already counts
    # the recipient's problem.
    assert page.locator("#sender-body").get_attribute("aria-busy") == "true"
    assert page.locator("#verdict").get_attribute("data-level") == "critical"
    assert page.locator("body").get_attribute("data-state") == "checking"
    (held,) = p.held
    held.continue_()
    page.wait_for_selector(DONE)
    assert page.locator("#sender-body").get_attribute("aria-busy") == "false"
    assert finding(page, "mx.present").count() == 1


def test_a_record_in_a_fix_has_a_labelled_copy_button(pane: Any) -> None:
    p = pane("backend")
    needs_api(p, recipients=False)
    page = outlook(p, to=[])
    page.wait_for_selector(DONE)
    buttons = page.locator("#sender-body fluent-button.copy")
    if buttons.count() == 0:
        pytest.fail("no finding of good.mx.test quotes a record to copy")
    first = buttons.first
    record = first.get_attribute("data-copy")
    assert record and first.get_attribute("aria-label", timeout=1000).startswith("Copy ")
    first.click()
    page.wait_for_selector("#announce:not(:empty)", state="attached")
    assert first.inner_text() in ("Copied", "Copy")


# -- errors in place ---------------------------------------------------------------------


def test_no_network_is_explained_in_place(pane: Any) -> None:
    p = pane()

    def offline(route: Any) -> bool:
        route.abort("internetdisconnected")
        return True

    p.api_fault = offline
    page = outlook(p, to=[f"bob@good.{Z}"])
    page.wait_for_selector(DONE)
    error = page.locator("#error")
    assert error.get_attribute("data-kind") == "network"
    assert "No network" in error.inner_text()
    assert error.get_attribute("role") == "alert"
    assert "see the message above" in page.inner_text("#sender-body")


def test_backend_down_is_explained_and_retry_asks_again(pane: Any) -> None:
    p = pane()

    def down(route: Any) -> bool:
        route.fulfill(
            status=503,
            content_type="application/problem+json",
            body=json.dumps({"title": "Service Unavailable", "status": 503}),
        )
        return True

    p.api_fault = down
    page = outlook(p, to=[])
    page.wait_for_selector(DONE)
    error = page.locator("#error")
    assert error.get_attribute("data-kind") == "backend"
    assert "not answering" in error.inner_text() and "503" in error.inner_text()
    before = len(p.api_requests)
    assert ("button", "Try again") in accessible(page)
    page.locator("#error fluent-button.retry").click()
    page.wait_for_selector(DONE)
    assert len(p.api_requests) > before


def test_a_declined_sign_in_is_explained_and_nothing_is_sent(pane: Any) -> None:
    p = pane("backend")
    page = outlook(
        p,
        to=[f"bob@good.{Z}"],
        sets={"Mailbox": "1.14", "NestedAppAuth": "1.1"},
        msal={"silent": "interaction", "popup": "cancel"},
    )
    page.wait_for_selector(DONE)
    error = page.locator("#error")
    assert error.get_attribute("data-kind") == "declined"
    assert "Sign-in was cancelled" in error.inner_text()
    assert p.api_requests == []
    calls = page.evaluate("window.__msal.calls")
    assert [c["call"] for c in calls] == [
        "createNestablePublicClientApplication",
        "acquireTokenSilent",
        "acquireTokenPopup",
    ]
    assert calls[1]["scopes"] == [f"api://{CLIENT_ID}/access_as_user"]


def test_the_access_token_goes_to_the_api_as_a_bearer(pane: Any) -> None:
    p = pane("backend")
    seen: list[str | None] = []

    def record(route: Any) -> bool:
        seen.append(route.request.headers.get("authorization"))
        return False

    p.api_fault = record
    page = outlook(
        p,
        to=[],
        sets={"Mailbox": "1.14", "NestedAppAuth": "1.1"},
        msal={"silent": "ok", "token": "stub-access-token"},
    )
    page.wait_for_selector(DONE)
    assert seen == ["Bearer stub-access-token"]


# -- keyboard and labels -----------------------------------------------------------------


def test_the_form_is_labelled_and_usable_by_keyboard_alone(pane: Any) -> None:
    p = pane()
    page = p.open(stub={"host": None})
    page.wait_for_selector("#standalone:not([hidden])")
    address = page.get_by_label("Send from")
    recipients = page.get_by_label("Recipients (comma or one per line)")
    assert address.count() == 1 and recipients.count() == 1
    names = accessible(page)
    assert ("button", "Check") in names
    assert ("textbox", "Send from") in names
    assert ("textbox", "Recipients (comma or one per line)") in names
    # The pane focuses the first field; Tab walks the form in reading order.
    assert page.evaluate("document.activeElement.id") == "from"
    page.keyboard.type(SENDER)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "recipients"
    page.keyboard.type(f"bob@good.{Z}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "check"
    page.keyboard.press("Enter")
    page.wait_for_selector(DONE)
    assert [r["recipients"] for r in p.api_requests] == [[], [f"bob@good.{Z}"]]


def test_enter_in_the_address_field_checks(pane: Any) -> None:
    p = pane()
    page = p.open(stub={"host": None})
    page.wait_for_selector("#standalone:not([hidden])")
    page.keyboard.type(SENDER)
    page.keyboard.press("Enter")
    page.wait_for_selector(DONE)
    assert [r["from"] for r in p.api_requests] == [SENDER]


def test_an_empty_address_is_explained_not_sent(pane: Any) -> None:
    p = pane()
    page = p.open(stub={"host": None})
    page.wait_for_selector("#standalone:not([hidden])")
    page.locator("#check").click()
    assert "Enter the address" in page.locator("#error").inner_text()
    assert p.api_requests == []


def test_findings_are_reachable_by_keyboard(pane: Any) -> None:
    p = pane("backend")
    needs_api(p)
    page = outlook(p, to=[f"dan@missing.{Z}"])
    page.wait_for_selector(DONE)
    summaries = page.locator("li.finding summary")
    assert summaries.count() > 0
    summaries.first.focus()
    assert page.evaluate("document.activeElement.tagName") == "SUMMARY"
    # A problem is open by default; Enter on its summary folds it.
    problem = page.locator('li.finding[data-status="fail"] details').first
    assert problem.get_attribute("open") is not None
    problem.locator("summary").focus()
    page.keyboard.press("Enter")
    assert problem.get_attribute("open") is None
    # Groups are landmarks named by their headings.
    names = accessible(page)
    for name in ("Sender", "Sending path", "Recipients"):
        assert ("region", name) in names
    assert any(role == "button" and name.startswith("Copy ") for role, name in names) or (
        page.locator("fluent-button.copy").count() == 0
    )


# -- screenshots for docs/ ---------------------------------------------------------------


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_screenshots_light_and_dark(pane: Any, theme: str) -> None:
    p = pane("backend", color_scheme=theme)
    needs_api(p, recipients=False)
    page = outlook(p, theme=theme, to=[f"bob@good.{Z}", "erin@gmial.com"])
    page.wait_for_selector(DONE)
    assert page.evaluate("document.documentElement.dataset.theme") == theme
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]]
    assert (sum(channels) / 3 < 100) == (theme == "dark"), background
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"taskpane-{theme}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def test_real_office_js_outside_outlook_leaves_the_pane_standalone(pane: Any) -> None:
    # TESTING.md §10.3: Microsoft's office.js (the npm copy, tests only) resolves onReady
    # with host null outside Outlook; the pane must fall back to its form.
    dist = ROOT / "node_modules" / "@microsoft" / "office-js" / "dist"
    if not (dist / "office.js").is_file():
        pytest.fail("node_modules/@microsoft/office-js is missing: run `npm ci`")
    p = pane()
    served: list[str] = []

    def office_js(route: Any) -> None:
        name = route.request.url.split("/test-site/", 1)[1].split("?")[0]
        # The pane asks for the configured office.js URL; its siblings load relative to it.
        name = "office.js" if name == "office-stub.js" else name
        path = (dist / name).resolve()
        if not path.is_relative_to(dist.resolve()) or not path.is_file():
            route.abort()
            return
        served.append(name)
        route.fulfill(path=str(path), content_type="text/javascript")

    p.page.route("**/test-site/**", office_js)
    page = p.open()
    page.wait_for_selector("#standalone:not([hidden])")
    assert "office.js" in served
    assert page.evaluate("typeof Office.onReady") == "function"
    assert page.evaluate("Office.context && Office.context.mailbox") is None


def test_without_nested_app_auth_the_office_dialog_signs_in(pane: Any) -> None:
    p = pane("backend")
    seen: list[str | None] = []

    def record(route: Any) -> bool:
        seen.append(route.request.headers.get("authorization"))
        return False

    p.api_fault = record
    page = outlook(
        p,
        to=[],
        sets={"Mailbox": "1.12"},  # no NestedAppAuth
        dialog={"message": json.dumps({"accessToken": "dialog-token"})},
    )
    page.wait_for_selector(DONE)
    calls = page.evaluate("window.__office.calls")
    (opened,) = [c for c in calls if c.startswith("displayDialogAsync ")]
    assert opened.startswith(f"displayDialogAsync {p.server.base}/auth-dialog.html?scope=")
    assert "dialog.close" in calls
    assert page.evaluate("window.__msal.calls") == []  # NAA was not tried
    assert seen == ["Bearer dialog-token"]


def test_closing_the_sign_in_dialog_is_a_declined_sign_in(pane: Any) -> None:
    p = pane("backend")
    page = outlook(p, to=[], sets={"Mailbox": "1.12"}, dialog={"closed": True})
    page.wait_for_selector(DONE)
    assert page.locator("#error").get_attribute("data-kind") == "declined"
    assert p.api_requests == []


def test_a_dialog_that_cannot_open_is_explained(pane: Any) -> None:
    p = pane("backend")
    page = outlook(p, to=[], sets={"Mailbox": "1.12"})
    page.wait_for_selector(DONE)
    error = page.locator("#error")
    assert error.get_attribute("data-kind") == "signin"
    assert "Sign-in failed" in error.inner_text() and "could not open" in error.inner_text()
    assert p.api_requests == []


def test_changing_recipients_in_outlook_checks_again(pane: Any) -> None:
    p = pane()
    page = outlook(p, to=[f"bob@good.{Z}"])
    page.wait_for_selector(DONE)
    first = len(p.api_requests)
    page.evaluate(f"window.__office.setRecipients(['dan@missing.{Z}'])")
    page.wait_for_selector(f'#context-to:has-text("dan@missing.{Z}")')
    page.wait_for_selector(DONE)
    assert [r["recipients"] for r in p.api_requests[first:]] == [[], [f"dan@missing.{Z}"]]


def test_the_pane_runs_under_its_csp_without_violations(pane: Any) -> None:
    p = pane()
    violations: list[str] = []
    p.page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    p.page.add_init_script("window.__SENDREADY_STUB__ = {host: null};")
    response = p.page.goto(p.server.base + "/taskpane.html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors" in csp
    p.page.wait_for_selector("#standalone:not([hidden])")
    p.page.fill("#from", SENDER)
    p.page.locator("#check").click()
    p.page.wait_for_selector(DONE)
    assert violations == []


def test_standalone_in_a_browser_signs_in_with_a_popup_and_checks(pane: Any) -> None:
    p = pane("backend")
    needs_api(p, recipients=False)
    seen: list[str | None] = []

    def record(route: Any) -> bool:
        seen.append(route.request.headers.get("authorization"))
        return False

    p.api_fault = record
    page = p.open(stub={"host": None, "msal": {"popup": "ok"}})
    page.wait_for_selector("#standalone:not([hidden])")
    page.fill("#from", SENDER)
    page.locator("#check").click()
    page.wait_for_selector(DONE)
    assert page.locator("body").get_attribute("data-state") == "done"
    assert seen == [f"Bearer {p.server.token}"]
    calls = [c["call"] for c in page.evaluate("window.__msal.calls")]
    assert calls == ["createStandardPublicClientApplication", "acquireTokenPopup"]
    assert finding(page, "mx.present").count() == 1
