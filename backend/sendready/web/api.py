"""The /api/v1 blueprint: input validation, then the engine; nothing here does DNS or SMTP."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from ..auth.tokens import Principal
from ..checks.requirements import HEADER_NAMES
from ..dns import InvalidInput, normalize_domain, parse_address
from ..model import CheckRequest, Report
from .openapi import document
from .problems import Problem
from .services import Services

MAX_SELECTORS = 20
MAX_HEADER_LENGTH = 2048
OPTION_KEYS = {"service", "selectors", "probe_smtp", "submission"}


def services() -> Services:
    found = current_app.extensions["sendready"]
    assert isinstance(found, Services)
    return found


def _body() -> dict[str, Any]:
    if not request.is_json:
        raise Problem(415, "send the request as Content-Type: application/json", field="body")
    try:
        data = request.get_json()
    except (BadRequest, UnsupportedMediaType):
        raise Problem(400, "the body is not valid JSON", field="body") from None
    if not isinstance(data, dict):
        raise Problem(400, "the body must be a JSON object", field="body")
    return data


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise Problem(400, f"{name} must be a string", field=name)
    return value


def parse_check(data: dict[str, Any], max_recipients: int) -> tuple[CheckRequest, bool]:
    """The CheckRequest a body asks for, and whether it wants the authenticated submission test.

    Wrong shapes and types are 400; well-formed values that cannot be checked (an invalid
    IDN, a 300-character name) are 422. Both name the field.
    """
    unknown = set(data) - {"from", "recipients", "options", "headers"}
    if unknown:
        name = sorted(unknown)[0]
        raise Problem(400, f"{name} is not a field of a check request", field=name)
    if "from" not in data:
        raise Problem(400, "from is required: the sender address or domain", field="from")
    sender = _string(data["from"], "from").strip()
    try:
        if "@" in sender:
            _, domain = parse_address(sender)
            address: str | None = sender
        else:
            domain, address = normalize_domain(sender), None
    except InvalidInput as exc:
        raise Problem(422, str(exc), field="from", reason="invalid_sender") from None

    raw_recipients = data.get("recipients", [])
    if not isinstance(raw_recipients, list):
        raise Problem(400, "recipients must be a list of addresses", field="recipients")
    if len(raw_recipients) > max_recipients:
        raise Problem(
            413,
            f"at most {max_recipients} recipients per check ({len(raw_recipients)} given)",
            field="recipients",
            reason="too_many_recipients",
        )
    recipients: list[str] = []
    for index, item in enumerate(raw_recipients):
        name = f"recipients[{index}]"
        text = _string(item, name).strip()
        try:
            parse_address(text)
        except InvalidInput as exc:
            raise Problem(422, str(exc), field=name, reason="invalid_recipient") from None
        recipients.append(text)

    options = data.get("options", {})
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise Problem(400, "options must be an object", field="options")
    for key in options:
        if key not in OPTION_KEYS:
            raise Problem(400, f"options.{key} is not a known option", field=f"options.{key}")
    service = options.get("service")
    if service is not None:
        service = _string(service, "options.service").strip().lower()[:64] or None
    selectors_raw = options.get("selectors", [])
    if not isinstance(selectors_raw, list):
        raise Problem(400, "options.selectors must be a list", field="options.selectors")
    if len(selectors_raw) > MAX_SELECTORS:
        raise Problem(413, f"at most {MAX_SELECTORS} selectors", field="options.selectors")
    selectors: list[str] = []
    for index, item in enumerate(selectors_raw):
        name = f"options.selectors[{index}]"
        try:
            selectors.append(normalize_domain(_string(item, name)))
        except InvalidInput as exc:
            raise Problem(422, str(exc), field=name) from None
    flags: dict[str, bool] = {}
    for key in ("probe_smtp", "submission"):
        value = options.get(key, key == "probe_smtp")
        if not isinstance(value, bool):
            raise Problem(400, f"options.{key} must be true or false", field=f"options.{key}")
        flags[key] = value
    request_ = CheckRequest(
        domain=domain,
        address=address,
        recipients=tuple(recipients),
        selectors=tuple(selectors),
        service=service,
        probe_smtp=flags["probe_smtp"],
        headers=_headers(data["headers"]) if "headers" in data else None,
    )
    return request_, flags["submission"]


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    """The draft's unsubscribe headers: only those two names, one line each, bounded."""
    if not isinstance(value, dict):
        raise Problem(400, "headers must be an object of header names to values", field="headers")
    canonical = {name.lower(): name for name in HEADER_NAMES}
    out: list[tuple[str, str]] = []
    for name, text in value.items():
        where = f"headers.{name}"[:80]
        known = canonical.get(str(name).lower())
        if known is None:
            raise Problem(400, f"only {' and '.join(HEADER_NAMES)} may be sent", field=where)
        text = _string(text, where)
        if len(text) > MAX_HEADER_LENGTH or any(c in text for c in "\r\n\0"):
            raise Problem(
                400,
                f"{where} must be one line of at most {MAX_HEADER_LENGTH} characters",
                field=where,
            )
        out.append((known, text))
    return tuple(out)


def _principal() -> Principal | None:
    value = g.get("principal")
    return value if isinstance(value, Principal) else None


def report_key(check: CheckRequest) -> str:
    """The report cache's key: the domain, and the tenant domain when the report was built
    with one, because its records point into that tenant and no other tenant may see them
    ("|" never occurs in a domain name)."""
    return f"{check.domain}|{check.tenant_domain}" if check.tenant_domain else check.domain


def _send_as(check: CheckRequest) -> bool:
    return bool(check.mailbox and check.address and check.address.lower() != check.mailbox)


def make_blueprint(
    limit: Callable[[Callable[..., Any]], Callable[..., Any]],
    limited: Callable[[], AbstractContextManager[None]],
) -> Blueprint:
    """The blueprint, with ``limit`` (the per-user and per-tenant rate limits) on its routes.

    A domain's cached report is served without counting against the limits: they protect
    the checks (DNS and SMTP traffic), and ``limited()`` counts a cache miss like a check.
    """
    bp = Blueprint("api", __name__, url_prefix="/api/v1")

    @bp.post("/checks")
    @limit
    def create_check() -> Response:
        svc = services()
        check, submission = parse_check(_body(), svc.settings.max_recipients)
        if submission:
            principal = _principal()
            if principal is None or svc.broker is None:
                raise Problem(
                    501,
                    "the authenticated submission test needs sign-in and a client secret or "
                    "certificate on the server",
                    reason="submission_unavailable",
                    field="options.submission",
                )
            token = svc.broker.on_behalf_of(principal.token, [svc.settings.smtp_send_scope])
            check = dataclasses.replace(check, oauth_token=token)
        check = svc.with_mailbox(check, _principal())
        check = svc.with_tenant_domain(check, _principal())
        report = svc.run(check)
        body = _encode(report)
        # Only a plain check of the domain stands for "the domain's latest report"; a Send
        # As verdict is about one user, never shown to another.
        plain = check.headers is None and check.oauth_token is None and not _send_as(check)
        if plain and not check.recipients and not check.selectors:
            svc.cache.put(report_key(check), body)
        return Response(body, mimetype="application/json")

    @bp.get("/domains/<path:name>")
    def get_domain(name: str) -> Response:
        svc = services()
        try:
            domain = normalize_domain(name)
        except InvalidInput as exc:
            raise Problem(422, str(exc), field="domain", reason="invalid_domain") from None
        check = svc.with_tenant_domain(CheckRequest(domain=domain), _principal())
        body = svc.cache.get(report_key(check))
        svc.metrics.cache_lookup(body is not None)
        state = "hit"
        if body is None:
            state = "miss"
            with limited():
                body = _encode(svc.run(check))
            svc.cache.put(report_key(check), body)
        response = Response(body, mimetype="application/json")
        response.headers["X-Cache"] = state
        return response

    @bp.get("/me/addresses")
    @limit
    def my_addresses() -> Response:
        svc = services()
        principal = _principal()
        if principal is None or svc.broker is None:
            raise Problem(
                501,
                "the user's addresses need sign-in and a client secret or certificate",
                reason="graph_unavailable",
            )
        addresses = svc.own_addresses(principal)
        return Response(json.dumps({"addresses": addresses}), mimetype="application/json")

    @bp.get("/openapi.json")
    def openapi() -> Response:
        return Response(json.dumps(document()), mimetype="application/json")

    return bp


def _encode(report: Report) -> bytes:
    return json.dumps(report.to_json(), separators=(",", ":")).encode()
