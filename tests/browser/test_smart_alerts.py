"""Smart Alerts: launchevent.js in Chromium (the browser event runtime, commands.html) with
the Office stub, against the service. Every decision of OnMessageSend, including the
service being down or slow, where it must always allow the message."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from tests.browser.conftest import Pane

from sendready.engine import default_checks
from sendready.manifest import render_manifest

Z = "recip-cases.test"
SENDER = "alice@good.mx.test"
LOADED = "window.__office && window.__office.handlers.onMessageSend"


def needs_api(p: Pane, recipients: bool = True) -> None:
    assert p.server.has_api, "the pane server has no API"
    assert not recipients or "recipients" in default_checks()


def runtime(p: Pane, **stub: Any) -> Any:
    stub.setdefault("from", SENDER)
    page = p.open("/commands.html", stub=stub)
    page.wait_for_load_state("load")
    assert page.evaluate("typeof window.__office.handlers.onMessageSend") == "function"
    return page


def fire(page: Any, name: str, ms: int = 10000) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(f"window.__office.fire({json.dumps(name)}, {ms})")
    assert not result.get("timedOut"), f"{name} never called event.completed()"
    return result


def test_every_manifest_function_is_associated_when_the_runtime_loads(pane: Any) -> None:
    page = runtime(pane())
    root = ET.fromstring(render_manifest("https://addin.example.com"))
    names = {e.get("FunctionName") for e in root.iter() if e.tag.endswith("}LaunchEvent")}
    associated = set(page.evaluate("Object.keys(window.__office.handlers)"))
    assert names == associated == {"onMessageSend", "onRecipientsChanged", "onFromChanged"}


# -- the service is unreachable, slow or failing: always send ---------------------------


def test_send_is_allowed_when_the_service_is_unreachable(pane: Any) -> None:
    p = pane()

    def offline(route: Any) -> bool:
        route.abort("connectionrefused")
        return True

    p.api_fault = offline
    page = runtime(p, to=["erin@gmial.com"])
    result = fire(page, "onMessageSend")
    assert result["options"] == {"allowEvent": True}
    assert len(p.api_requests) == 1  # it did ask, and failed open


def test_send_is_allowed_when_the_service_answers_an_error(pane: Any) -> None:
    p = pane()

    def broken(route: Any) -> bool:
        route.fulfill(status=502, body="bad gateway")
        return True

    p.api_fault = broken
    page = runtime(p, to=[f"dan@missing.{Z}"])
    assert fire(page, "onMessageSend")["options"] == {"allowEvent": True}


def test_send_is_allowed_when_the_service_is_too_slow(pane: Any) -> None:
    p = pane()

    def hang(route: Any) -> bool:
        p.held.append(route)  # never answered while the handler runs
        return True

    p.api_fault = hang
    page = runtime(p, to=[f"dan@missing.{Z}"])
    result = fire(page, "onMessageSend", ms=10000)
    assert result["options"] == {"allowEvent": True}
    assert len(p.held) == 1
    for route in p.held:
        route.abort()


def test_send_is_allowed_when_silent_sign_in_fails(pane: Any) -> None:
    p = pane("backend")
    page = runtime(
        p,
        to=[f"dan@missing.{Z}"],
        sets={"Mailbox": "1.14", "NestedAppAuth": "1.1"},
        msal={"silent": "error"},
    )
    assert fire(page, "onMessageSend")["options"] == {"allowEvent": True}
    assert p.api_requests == []  # no token, no call
    calls = [c["call"] for c in page.evaluate("window.__msal.calls")]
    assert "acquireTokenPopup" not in calls  # no interaction is allowed in event handlers


def test_without_nested_app_auth_the_handler_allows_and_asks_to_open_the_pane(pane: Any) -> None:
    p = pane("backend")
    page = runtime(p, to=[f"bob@good.{Z}"], sets={"Mailbox": "1.12"})
    fire(page, "onRecipientsChanged")
    note = page.evaluate("window.__office.notifications.sendready")
    assert note and "Open SendReady" in note["message"]
    assert fire(page, "onMessageSend")["options"] == {"allowEvent": True}


def test_a_stored_verdict_that_is_not_json_is_ignored(pane: Any) -> None:
    p = pane()

    def offline(route: Any) -> bool:
        route.abort("connectionrefused")
        return True

    p.api_fault = offline
    page = runtime(p, to=[f"dan@missing.{Z}"])
    page.evaluate(
        "Object.keys(window.__office.storage).length === 0 && "
        f"(window.__office.storage['sendready.verdict:{SENDER}>missing.{Z}'] = '{{not json')"
    )
    assert fire(page, "onMessageSend")["options"] == {"allowEvent": True}


# -- the service answers: block only for the critical problems --------------------------


def blocked(result: dict[str, Any]) -> str:
    options = result["options"]
    assert options["allowEvent"] is False, options
    message: str = options["errorMessage"]
    assert 0 < len(message) <= 500
    return message


def test_a_mistyped_provider_domain_blocks_with_the_suggestion(pane: Any) -> None:
    p = pane("backend")
    needs_api(p)
    page = runtime(p, to=["erin@gmial.com"])
    message = blocked(fire(page, "onMessageSend"))
    assert "Did you mean gmail.com instead of gmial.com?" in message
    assert "Send" in message  # the user is told they may still send


def test_a_recipient_domain_that_does_not_exist_blocks(pane: Any) -> None:
    p = pane("backend")
    needs_api(p)
    page = runtime(p, to=[f"dan@missing.{Z}"])
    message = blocked(fire(page, "onMessageSend"))
    assert f"missing.{Z} does not exist" in message


def test_a_recipient_domain_that_accepts_no_mail_blocks(pane: Any) -> None:
    p = pane("backend")
    needs_api(p)
    page = runtime(p, to=[f"nina@null.{Z}"])
    message = blocked(fire(page, "onMessageSend"))
    assert f"null.{Z} accepts no mail" in message


def test_a_sender_domain_whose_dmarc_will_fail_blocks(pane: Any) -> None:
    # Microsoft 365 without DKIM selectors and an SPF record that leaves Microsoft out:
    # the service's alignment prediction says DMARC fails, and p=reject makes it critical.
    p = pane("backend")
    needs_api(p)
    page = runtime(p, **{"from": "boss@align-m365-nospf.test"}, to=[f"bob@good.{Z}"])
    result = fire(page, "onMessageSend")
    message = blocked(result)
    assert "will fail DMARC" in message and "align-m365-nospf.test" in message


def test_a_dmarc_failure_under_p_none_is_delivered_so_it_does_not_block(pane: Any) -> None:
    p = pane("backend")
    needs_api(p)
    answers: list[dict[str, Any]] = []

    def keep(route: Any) -> bool:
        answer = route.fetch()
        answers.append(answer.json())
        route.fulfill(response=answer)
        return True

    p.api_fault = keep
    page = runtime(p, **{"from": "boss@align-m365-none.test"}, to=[f"bob@good.{Z}"])
    assert fire(page, "onMessageSend")["options"] == {"allowEvent": True}
    # The service did predict the failure, as a warning: the handler chose not to block.
    (report,) = [r for r in answers if r.get("domain") == "align-m365-none.test"]
    (predicted,) = [f for f in report["findings"] if f["id"] == "dmarc.will_fail"]
    assert predicted["status"] == "fail" and predicted["severity"] == "warning"


def test_good_recipients_and_sender_are_allowed(pane: Any) -> None:
    p = pane("backend")
    needs_api(p)
    page = runtime(p, to=[f"bob@good.{Z}"])
    assert fire(page, "onMessageSend")["options"] == {"allowEvent": True}


def test_take_action_options_only_where_mailbox_1_14_is_supported(pane: Any) -> None:
    p = pane("backend")
    needs_api(p)
    new = runtime(p, to=[f"dan@missing.{Z}"], sets={"Mailbox": "1.14", "NestedAppAuth": "1.1"})
    options = fire(new, "onMessageSend")["options"]
    assert options["cancelLabel"] and len(options["cancelLabel"]) <= 20
    assert options["commandId"] == "msgComposeOpenPaneButton"
    old_pane = pane("backend")
    old = runtime(
        old_pane, to=[f"dan@missing.{Z}"], sets={"Mailbox": "1.12", "NestedAppAuth": "1.1"}
    )
    options = fire(old, "onMessageSend")["options"]
    assert options["allowEvent"] is False
    assert "cancelLabel" not in options and "commandId" not in options


def test_recipients_changed_stores_a_verdict_that_send_then_uses(pane: Any) -> None:
    p = pane("backend")
    needs_api(p)
    page = runtime(p, to=["erin@gmial.com"])
    fire(page, "onRecipientsChanged")
    assert len(p.api_requests) == 1
    stored = page.evaluate("window.__office.storage")
    (key,) = stored
    assert key == f"sendready.verdict:{SENDER}>gmial.com"
    assert json.loads(stored[key])["decision"]["block"] is True
    note = page.evaluate("window.__office.notifications.sendready")
    assert "gmail.com" in note["message"]
    # Send reads the stored verdict: no second request.
    message = blocked(fire(page, "onMessageSend"))
    assert "gmail.com" in message
    assert len(p.api_requests) == 1


def test_from_changed_asks_again_for_the_new_sender(pane: Any) -> None:
    p = pane("backend")
    needs_api(p)
    page = runtime(p, to=[f"bob@good.{Z}"])
    page.evaluate("window.__office.setFrom('carol@other.mx.test')")
    fire(page, "onFromChanged")
    assert [r["from"] for r in p.api_requests] == ["carol@other.mx.test"]
    assert re.search(
        r"no delivery problems|SendReady:",
        page.evaluate("window.__office.notifications.sendready.message"),
    )
