"""The admin page and API: tenant-wide scans, their progress, regressions and exports.

Admins only. The app's before_request has already validated the bearer token (for every
``/api/`` path); here the validated token must also carry an admin claim: the app role
``SendReady.Admin`` in ``roles``, or the Global or Exchange Administrator directory role in
``wids``. In the loopback development mode (no client id, no sign-in) the admin API answers
only requests from loopback.

With SENDREADY_REDIS_URL a scan is enqueued as RQ jobs (jobs.py) for `sendready worker`
processes, and the web tier keeps no state; without it the scan runs in a background
thread of this process (one scan at a time), into the same store.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt
from flask import Blueprint, Flask, Response, current_app, g, request, send_file

from ..auth.msal_client import TokenBroker
from ..auth.tokens import Principal
from ..config import Settings
from ..dns import InvalidInput, normalize_domain
from ..scan import tenant_authority
from .api import _body, services
from .problems import Problem

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported on the first admin request only
    from ..store import ScanView, Store, StoredReport

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "admin_static"
EXTENSION = "sendready.admin"

ADMIN_ROLE = "SendReady.Admin"
#: Directory roles (``wids``) that may run scans: Global and Exchange Administrator.
ADMIN_DIRECTORY_ROLES = frozenset(
    {"62e90394-69f5-4237-9190-012177145e10", "29232cdf-9323-42fd-ade2-1d097af3e4de"}
)
#: Domains one POST may list (a tenant scan takes what Graph lists, bounded by scan.py).
MAX_SCAN_DOMAINS = 2_000
MAX_LISTED_SCANS = 200
MAX_ACTIVE_SCANS = 3
FINISHED = ("done", "partial")
SCAN_ID = re.compile(r"^[0-9a-f]{32}$")


def page_csp(authority: str) -> str:
    """The page's policy: its own scripts only; MSAL.js may talk to (and frame) Entra ID."""
    parts = urlsplit(authority)
    entra = f"{parts.scheme}://{parts.netloc}"
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src 'self' {entra}",
            f"frame-src {entra}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


ASSETS = {"admin.js": "text/javascript", "admin.css": "text/css"}


@dataclass
class AdminServices:
    """The admin API's store and how it runs scans (RQ queue, or one local thread)."""

    store: Store
    queue: Any | None  # an rq.Queue when Redis is configured
    embedded: ThreadPoolExecutor | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: One MSAL client per tenant whose domains were listed (client credentials need the
    #: tenant's own authority; MSAL caches each one's app-only token).
    brokers: dict[str, TokenBroker] = field(default_factory=dict)


def register(app: Flask) -> None:
    """Add the admin page and API to ``app`` (the store opens on first use)."""
    app.register_blueprint(make_blueprint())


def admin_services() -> AdminServices:
    """This app's AdminServices, created on the first admin request."""
    found = current_app.extensions.get(EXTENSION)
    if isinstance(found, AdminServices):
        return found
    svc = services()
    with _create_lock:
        found = current_app.extensions.get(EXTENSION)
        if isinstance(found, AdminServices):
            return found
        from ..store import open_store

        queue = None
        if svc.settings.redis_url:
            from redis import Redis

            from ..jobs import scan_queue

            # Not the app's client: its half-second timeout suits cache lookups, not a
            # pipeline that enqueues a few thousand jobs at once.
            connection = Redis.from_url(
                svc.settings.redis_url, socket_timeout=10, socket_connect_timeout=1
            )
            queue = scan_queue(connection)
        created = AdminServices(store=open_store(svc.settings), queue=queue)
        current_app.extensions[EXTENSION] = created
        return created


_create_lock = threading.Lock()


# -- who may ------------------------------------------------------------------------


def is_admin(claims: dict[str, Any]) -> bool:
    """An admin claim: the app role, or one of the two administrator directory roles."""
    roles = claims.get("roles")
    wids = claims.get("wids")
    if isinstance(roles, list) and ADMIN_ROLE in roles:
        return True
    return isinstance(wids, list) and any(w in ADMIN_DIRECTORY_ROLES for w in wids)


def _claims(principal: Principal) -> dict[str, Any]:
    # The app's before_request validated this token (signature, issuer, audience, expiry)
    # moments ago; reading its claims again needs no second signature check.
    claims: dict[str, Any] = jwt.decode(principal.token, options={"verify_signature": False})
    return claims


def _require_admin() -> Principal | None:
    """The admin principal (None in development mode), or a 403 problem."""
    if services().validator is None:
        if not _is_loopback(request.remote_addr):
            raise Problem(
                403,
                "without sign-in the admin API answers only on loopback",
                reason="admin_loopback_only",
            )
        return None
    principal = g.get("principal")
    if not isinstance(principal, Principal) or not is_admin(_claims(principal)):
        raise Problem(
            403,
            f"admins only: the {ADMIN_ROLE} app role, or the Global or Exchange "
            "Administrator directory role",
            reason="not_admin",
        )
    return principal


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


# -- input --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """What a POST asks for: these domains, or (None) every domain of the tenant."""

    domains: list[str] | None
    probe_smtp: bool = True


def parse_scan_request(data: dict[str, Any]) -> ScanRequest:
    """The scan a POST body asks for, or a 400/413/422 Problem naming the field."""
    unknown = set(data) - {"tenant", "domains", "probe_smtp"}
    if unknown:
        name = sorted(unknown)[0]
        raise Problem(400, f"{name} is not a field of a scan request", field=name)
    tenant, domains = data.get("tenant", False), data.get("domains")
    if not isinstance(tenant, bool):
        raise Problem(400, "tenant must be true or false", field="tenant")
    if tenant == (domains is not None):
        raise Problem(400, 'send either {"tenant": true} or {"domains": [...]}', field="domains")
    probe_smtp = data.get("probe_smtp", True)
    if not isinstance(probe_smtp, bool):
        raise Problem(400, "probe_smtp must be true or false", field="probe_smtp")
    return ScanRequest(None if tenant else _domains(domains), probe_smtp)


def _domains(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise Problem(400, "domains must be a non-empty list of domain names", field="domains")
    if len(value) > MAX_SCAN_DOMAINS:
        raise Problem(
            413,
            f"at most {MAX_SCAN_DOMAINS} domains per scan ({len(value)} given)",
            field="domains",
            reason="too_many_domains",
        )
    names: list[str] = []
    for index, item in enumerate(value):
        where = f"domains[{index}]"
        if not isinstance(item, str):
            raise Problem(400, f"{where} must be a string", field=where)
        try:
            names.append(normalize_domain(item))
        except InvalidInput as exc:
            raise Problem(422, str(exc), field=where, reason="invalid_domain") from None
    return list(dict.fromkeys(names))


# -- output -------------------------------------------------------------------------


def scan_json(view: ScanView) -> dict[str, Any]:
    total = len(view.domains)
    return {
        "id": view.id,
        "tenant": view.tenant,
        "kind": view.kind,
        "state": view.state,
        "created_at": _iso(view.created_at),
        "started_at": _iso(view.started_at),
        "finished_at": _iso(view.finished_at),
        "domains": total,
        "done": view.done,
        "progress": round(view.done / total, 4) if total else 1.0,
        "errors": dict(view.errors),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def report_row(stored: StoredReport) -> dict[str, Any]:
    return {
        "domain": stored.domain,
        "checked_at": _iso(stored.checked_at),
        "worst": stored.worst,
        "failed": stored.failed,
    }


def summary_json(reports: Sequence[StoredReport]) -> dict[str, int]:
    """How many domains have each worst severity ("none": no problem found)."""
    counts: dict[str, int] = {}
    for stored in reports:
        key = stored.worst or "none"
        counts[key] = counts.get(key, 0) + 1
    return counts


# -- routes -------------------------------------------------------------------------


def make_blueprint() -> Blueprint:
    bp = Blueprint("admin", __name__)

    @bp.get("/admin/")
    def page() -> Response:
        settings = services().settings
        text = (STATIC / "index.html").read_text(encoding="utf-8")
        for placeholder, value in (
            ("__CLIENT_ID__", settings.client_id),
            ("__AUTHORITY__", settings.authority),
        ):
            text = text.replace(placeholder, escape(value, quote=True))
        response = Response(text, mimetype="text/html")
        response.headers["Content-Security-Policy"] = page_csp(settings.authority)
        response.headers["Cache-Control"] = "no-cache"
        return response

    @bp.get("/admin/<name>")
    def asset(name: str) -> Response:
        mimetype = ASSETS.get(name)
        if mimetype is None:
            raise Problem(404, "no such resource")
        response = send_file(STATIC / name, mimetype=mimetype, max_age=0)
        response.headers["Cache-Control"] = "no-cache"
        return response

    @bp.get("/api/v1/admin/scans")
    def list_scans() -> Response:
        principal = _require_admin()
        tenant = principal.tid if principal is not None else None
        views = admin_services().store.scans(tenant=tenant, limit=_limit())
        return _json({"scans": [scan_json(v) for v in views]})

    @bp.post("/api/v1/admin/scans")
    def create_scan() -> Response:
        principal = _require_admin()
        asked = parse_scan_request(_body())
        tenant = principal.tid if principal is not None else None
        _refuse_too_many(admin_services().store, tenant)
        names, initial = asked.domains, None
        if names is None:  # the tenant's domains, each checked with its initial domain
            names, initial = _tenant_listing(principal)
        kind = "tenant" if asked.domains is None else "manual"
        scan_id = start_scan(
            admin_services(),
            names,
            tenant,
            kind,
            probe_smtp=asked.probe_smtp,
            tenant_domain=initial,
        )
        view = admin_services().store.scan(scan_id)
        assert view is not None
        response = _json(scan_json(view), status=202)
        response.headers["Location"] = f"/api/v1/admin/scans/{scan_id}"
        return response

    @bp.get("/api/v1/admin/scans/<scan_id>")
    def get_scan(scan_id: str) -> Response:
        view = _scan(scan_id)
        body = scan_json(view)
        if view.state not in FINISHED:
            # Polled every second or two while it runs: progress only. The reports (each a
            # whole Report document) and the regressions are read once it has finished.
            body.update(complete=False, summary={}, regressions=[], reports=[])
            return _json(body)
        store = admin_services().store
        reports = store.scan_reports(view.id)
        regressions = [
            {
                "domain": r.domain,
                "finding": r.finding_id,
                "subject": r.subject,
                "title": r.title,
                "severity": str(r.severity),
                "before": _iso(r.before_checked_at),
                "now": _iso(r.now_checked_at),
            }
            for r in store.regressions(view.id)
        ]
        body.update(
            complete=True,
            summary=summary_json(reports),
            regressions=regressions,
            reports=[report_row(r) for r in reports],
        )
        return _json(body)

    @bp.get("/api/v1/admin/scans/<scan_id>/export.csv")
    def export_csv(scan_id: str) -> Response:
        from ..scan import export_csv as render_csv

        view = _scan(scan_id)
        text = render_csv(admin_services().store.scan_reports(view.id))
        return _download(text, "text/csv", f"sendready-scan-{view.id}.csv")

    @bp.get("/api/v1/admin/scans/<scan_id>/export.json")
    def export_json(scan_id: str) -> Response:
        from ..scan import export_json as render_json

        view = _scan(scan_id)
        store = admin_services().store
        document = render_json(view, store.scan_reports(view.id), store.regressions(view.id))
        text = json.dumps(document, ensure_ascii=False)
        return _download(text, "application/json", f"sendready-scan-{view.id}.json")

    return bp


def _refuse_too_many(store: Store, tenant: str | None) -> None:
    """At most MAX_ACTIVE_SCANS queued or running scans per tenant: a bound on what one
    admin (or a stuck script) can put on the queue."""
    active = [v for v in store.scans(tenant=tenant, limit=50) if v.state not in FINISHED]
    if len(active) >= MAX_ACTIVE_SCANS:
        raise Problem(
            429,
            f"{len(active)} scans of this tenant are queued or running; start another when "
            "one has finished",
            reason="too_many_scans",
            headers={"Retry-After": "60"},
        )


def _limit() -> int:
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LISTED_SCANS:
        raise Problem(400, f"limit must be between 1 and {MAX_LISTED_SCANS}", field="limit")
    return int(raw)


def _scan(scan_id: str) -> ScanView:
    """The scan, if it exists and belongs to the caller's tenant; else 404 (not 403: an
    admin of another tenant learns nothing about which ids exist)."""
    principal = _require_admin()
    if not SCAN_ID.match(scan_id):
        raise Problem(404, "no such scan", reason="no_such_scan")
    view = admin_services().store.scan(scan_id)
    if view is None or (principal is not None and view.tenant != principal.tid):
        raise Problem(404, "no such scan", reason="no_such_scan")
    return view


def _tenant_listing(principal: Principal | None) -> tuple[list[str], str | None]:
    """The verified domains of the caller's tenant (development mode: the configured one),
    and its initial domain (``<tenant>.onmicrosoft.com``) when Graph marks one."""
    svc = services()
    if svc.broker is None:
        raise Problem(
            501,
            "a tenant scan lists the tenant's domains through Graph, which needs a client "
            "secret or certificate on the server",
            reason="tenant_scan_unavailable",
            field="tenant",
        )
    from ..scan import tenant_listing

    settings, broker = svc.settings, svc.broker
    if principal is not None:
        settings, broker = _tenant_broker(admin_services(), principal.tid)
    listing = tenant_listing(settings, broker)
    if not listing.domains:
        raise Problem(422, "the tenant has no verified domains", reason="no_domains")
    return list(listing.domains), listing.initial


MAX_BROKERS = 256


def _tenant_broker(admin: AdminServices, tenant: str) -> tuple[Settings, TokenBroker]:
    svc = services()
    settings = replace(svc.settings, authority=tenant_authority(svc.settings.authority, tenant))
    with admin.lock:
        broker = admin.brokers.get(tenant)
        if broker is None:
            if len(admin.brokers) >= MAX_BROKERS:
                admin.brokers.clear()
            broker = admin.brokers[tenant] = TokenBroker(settings, svc.session)
    return settings, broker


def start_scan(
    admin: AdminServices,
    domains: Sequence[str],
    tenant: str | None,
    kind: str,
    *,
    probe_smtp: bool = True,
    tenant_domain: str | None = None,
) -> str:
    """Enqueue the scan for the workers, or run it in this process's scan thread;
    ``tenant_domain`` (the tenant's initial domain) goes to every domain's check."""
    settings = services().settings
    if admin.queue is not None:
        from redis import RedisError

        from ..jobs import enqueue_scan

        try:
            return enqueue_scan(
                admin.store,
                admin.queue,
                domains,
                tenant,
                kind,
                settings=settings,
                probe_smtp=probe_smtp,
                tenant_domain=tenant_domain,
            )
        except RedisError as exc:
            log.error("the scan queue is unreachable: %s", type(exc).__name__)
            raise Problem(
                503, "the scan queue (Redis) is unreachable; try again later", reason="queue_down"
            ) from None
    from ..scan import execute_scan

    scan_id = admin.store.create_scan(tenant, domains, kind)
    with admin.lock:
        if admin.embedded is None:
            admin.embedded = ThreadPoolExecutor(1, thread_name_prefix="sendready-scan")
        admin.embedded.submit(
            _run_embedded,
            execute_scan,
            scan_id,
            store=admin.store,
            settings=settings,
            engine=services().engine,
            probe_smtp=probe_smtp,
            tenant_domain=tenant_domain,
        )
    return scan_id


def _run_embedded(execute: Callable[..., Any], scan_id: str, **options: Any) -> None:
    # A thread pool keeps an exception in its future, where nobody would look: log it.
    try:
        execute(scan_id, **options)
    except Exception:
        log.exception("scan %s failed in the web process", scan_id)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _download(text: str, mimetype: str, filename: str) -> Response:
    response = Response(text, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
