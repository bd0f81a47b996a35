"""Tenant-wide scans: the tenant's verified domains from Graph, every domain checked with
bounded concurrency and stored in the history, regressions found and sent to a webhook,
and the results exported as CSV or JSON.

The queue (jobs.py) and the admin page call these functions; the CLI (scan_cli.py) runs a
whole scan in one process with ``run_scan``.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import hashlib
import hmac
import io
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import requests

from .auth.graph import graph_error, graph_get
from .auth.http import make_session
from .auth.msal_client import ServiceAuthError, TokenBroker
from .config import ConfigError, Settings
from .dns.names import InvalidInput, normalize_domain
from .engine import Engine
from .model import CheckRequest, Report
from .smtp.guard import why_not_public

if TYPE_CHECKING:
    from .store import Regression, ScanView, Store, StoredReport

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The Graph application permission that lists a tenant's domains.
PERMISSION = "Domain.Read.All"
#: Pages of ``/domains`` followed at most (Graph returns every domain on one page today).
MAX_PAGES = 50
#: Domains one scan may hold: far above any tenant, low enough to bound a bad answer.
MAX_DOMAINS = 10_000
#: Times a throttled (429) Graph request is repeated, and the longest Retry-After obeyed.
GRAPH_RETRIES = 3
MAX_RETRY_AFTER = 30.0
#: Attempts to deliver the webhook, and the pause before each repeat (5xx, timeouts).
WEBHOOK_ATTEMPTS = 3
WEBHOOK_BACKOFF = 1.0
#: Seconds a domain's check may run beyond its budget before the scan gives up on it.
CHECK_GRACE = 5.0
SIGNATURE_HEADER = "X-SendReady-Signature"
TIMESTAMP_HEADER = "X-SendReady-Timestamp"


# -- the tenant's domains -----------------------------------------------------------


def _denied(status: int) -> ServiceAuthError:
    return ServiceAuthError(
        403,
        "graph_denied",
        "Microsoft Graph refused to list the tenant's domains",
        f"Microsoft Graph answered {status}. SendReady's app registration needs the Microsoft "
        f"Graph application permission {PERMISSION} (not a delegated one) with admin consent: "
        "Entra ID > App registrations > SendReady > API permissions > Add a permission > "
        f"Microsoft Graph > Application permissions > {PERMISSION}, then Grant admin consent.",
    )


@dataclass(frozen=True, slots=True)
class TenantListing:
    """The tenant's verified domains (lower-case, each once, in Graph's order) and the one
    Graph marks ``isInitial`` (``<tenant>.onmicrosoft.com``): every check of a tenant scan
    gets it, so Microsoft 365's DKIM CNAMEs and signing domain can be named."""

    domains: tuple[str, ...]
    initial: str | None


def authority_tenant(authority: str) -> str:
    """The tenant an Entra ID authority names: its last path segment (a tenant id or domain,
    or organizations/common for a multi-tenant app)."""
    return urlsplit(authority).path.rstrip("/").rpartition("/")[2]


def tenant_authority(authority: str, tenant: str) -> str:
    """``authority`` with its last path segment (organizations, common, an id) = ``tenant``:
    client credentials for a tenant's domain list need the tenant's own authority."""
    parts = urlsplit(authority)
    base = parts.path.rstrip("/").rpartition("/")[0]
    return parts._replace(path=f"{base}/{tenant}").geturl()


def tenant_listing(
    settings: Settings,
    broker: TokenBroker,
    *,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> TenantListing:
    """The tenant's verified domains and its initial domain.

    An app-only token for ``<graph_url>/.default`` (client credentials) reads
    ``/v1.0/domains``; ``@odata.nextLink`` is followed only to the origin of graph_url, so
    a forged link cannot send the token elsewhere. Failures raise ServiceAuthError saying
    what the admin must do.
    """
    token = broker.for_client([f"{settings.graph_url}/.default"])
    http = session or make_session(settings)
    url: str | None = f"{settings.graph_url}/v1.0/domains"
    domains: dict[str, None] = {}
    initial: str | None = None
    pages = 0
    while url is not None:
        pages += 1
        if pages > MAX_PAGES:
            raise graph_error(f"more than {MAX_PAGES} pages of domains")
        page = _graph_page(http, url, token, sleep)
        for name, is_initial in _verified(page.get("value")):
            domains[name] = None
            if is_initial and initial is None:
                initial = name
        if len(domains) > MAX_DOMAINS:
            raise graph_error(f"more than {MAX_DOMAINS} domains")
        url = _next_link(page.get("@odata.nextLink"), settings.graph_url)
    log.info("Graph listed %d verified domains", len(domains))
    return TenantListing(tuple(domains), initial)


def _graph_page(
    http: requests.Session, url: str, token: str, sleep: Callable[[float], None]
) -> dict[str, Any]:
    """One page of ``/domains``, repeating a throttled request after its Retry-After."""
    for attempt in range(GRAPH_RETRIES + 1):
        try:
            response = graph_get(http, url, token)
        except requests.Timeout:
            raise graph_error("Microsoft Graph did not answer in time", 504) from None
        except requests.RequestException as exc:
            raise graph_error(
                f"Microsoft Graph could not be reached: {type(exc).__name__}"
            ) from None
        if response.status_code == 429 and attempt < GRAPH_RETRIES:
            wait = _retry_after(response.headers.get("Retry-After"))
            log.warning("Graph throttled the domain list; retrying in %.1f s", wait)
            sleep(wait)
            continue
        if response.status_code in (401, 403):
            raise _denied(response.status_code)
        if response.status_code == 429:
            raise graph_error(
                f"Microsoft Graph is still throttling after {GRAPH_RETRIES} retries; "
                "try again later",
                503,
            )
        if response.status_code != 200:
            raise graph_error(f"HTTP {response.status_code} from {urlsplit(url).path}")
        try:
            body = response.json()
        except ValueError:
            raise graph_error("the domain list is not JSON") from None
        if not isinstance(body, dict):
            raise graph_error("the domain list is not a JSON object")
        return body
    raise AssertionError("unreachable: the loop returns or raises")


def _retry_after(value: str | None) -> float:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), bounded."""
    if not value:
        return 1.0
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _verified(value: object) -> list[tuple[str, bool]]:
    """The verified domain names of one page, each with whether it is the initial domain;
    malformed entries are skipped, not fatal."""
    if not isinstance(value, list):
        raise graph_error("the domain list has no value array")
    names: list[tuple[str, bool]] = []
    for entry in value:
        if not isinstance(entry, dict) or entry.get("isVerified") is not True:
            continue
        try:
            name = normalize_domain(str(entry.get("id", "")))
        except InvalidInput as exc:
            log.warning("Graph listed a domain that is not a valid name: %s", exc)
            continue
        names.append((name, entry.get("isInitial") is True))
    return names


def _next_link(link: object, graph_url: str) -> str | None:
    """The next page, only if it stays on Graph's own origin (the token goes with it)."""
    if link is None:
        return None
    if not isinstance(link, str):
        raise graph_error("@odata.nextLink is not a string")
    if _origin(link) != _origin(graph_url):
        raise graph_error(
            f"refused to follow @odata.nextLink to another origin ({_origin(link)}); "
            f"only {_origin(graph_url)} gets the token"
        )
    return link


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme, 0)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


# -- checking domains ---------------------------------------------------------------


def scan_domain(
    engine: Engine,
    domain: str,
    settings: Settings,
    *,
    probe_smtp: bool = True,
    tenant_domain: str | None = None,
) -> Report:
    """One sender-domain check as ``sendready check DOMAIN [--tenant-domain NAME]`` runs it.

    The engine bounds each check by the budget; the extra bound here is the backstop that
    keeps one stuck domain from holding a scan's thread for ever (it raises TimeoutError).
    """
    request = CheckRequest(
        domain=normalize_domain(domain),
        probe_smtp=probe_smtp,
        tenant_domain=normalize_domain(tenant_domain) if tenant_domain else None,
    )
    limit = settings.check_budget + CHECK_GRACE
    return engine.call(_bounded(engine.run(request), limit))


async def _bounded(work: Coroutine[Any, Any, T], seconds: float) -> T:
    return await asyncio.wait_for(work, seconds)


@dataclass(frozen=True, slots=True)
class Progress:
    """One domain of a scan is done: its report, or why it could not be checked."""

    done: int
    total: int
    domain: str
    report: Report | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What a finished scan came to."""

    scan_id: str
    total: int
    checked: int
    errors: int
    critical: int
    duration_s: float
    regressions: tuple[Regression, ...]
    #: True: the webhook took the regressions; False: it failed; None: nothing was sent.
    webhook_delivered: bool | None = None


def run_scan(
    domains: Sequence[str],
    *,
    store: Store,
    settings: Settings,
    tenant: str | None = None,
    concurrency: int = 8,
    kind: str = "manual",
    on_progress: Callable[[Progress], None] | None = None,
    probe_smtp: bool = True,
    engine: Engine | None = None,
    tenant_domain: str | None = None,
) -> ScanResult:
    """Create a scan of ``domains``, check and store every one, and report regressions.

    Domains are validated first (InvalidInput names the bad one); the webhook settings too
    (ConfigError), so a scan never runs only to find it cannot deliver its result.
    ``tenant_domain`` is the Microsoft 365 tenant's initial domain (TenantListing.initial),
    given to every domain's check.
    """
    names = list(dict.fromkeys(normalize_domain(d) for d in domains))
    if not names:
        raise InvalidInput("a scan needs at least one domain")
    if len(names) > MAX_DOMAINS:
        raise InvalidInput(f"{len(names)} domains; a scan holds at most {MAX_DOMAINS}")
    _check_concurrency(concurrency)
    initial = normalize_domain(tenant_domain) if tenant_domain else None
    if settings.webhook_url:
        webhook_target(settings)
    scan_id = store.create_scan(tenant, names, kind)
    return execute_scan(
        scan_id,
        store=store,
        settings=settings,
        concurrency=concurrency,
        on_progress=on_progress,
        probe_smtp=probe_smtp,
        engine=engine,
        tenant_domain=initial,
    )


def execute_scan(
    scan_id: str,
    *,
    store: Store,
    settings: Settings,
    concurrency: int = 8,
    on_progress: Callable[[Progress], None] | None = None,
    probe_smtp: bool = True,
    engine: Engine | None = None,
    tenant_domain: str | None = None,
) -> ScanResult:
    """Run a scan the store already holds; domains it already has a result for are skipped,
    so running it again after a crash finishes it without checking anything twice.
    ``tenant_domain`` is given to every domain's check (see run_scan)."""
    _check_concurrency(concurrency)
    started = time.monotonic()
    view = store.scan(scan_id)
    if view is None:
        raise KeyError(f"no scan {scan_id}")
    finished = {r.domain for r in store.scan_reports(scan_id)} | set(view.errors)
    pending = [d for d in view.domains if d not in finished]
    store.start_scan(scan_id)
    own_engine = engine is None
    runner = engine or Engine(settings)
    checks = _Checks(runner, settings, probe_smtp, tenant_domain)
    try:
        _check_all(scan_id, pending, store, checks, concurrency, on_progress, view)
    finally:
        if own_engine:
            runner.close()
    store.finish_scan(scan_id)
    regressions = tuple(store.regressions(scan_id))
    delivered = _notify(settings, scan_id, view.tenant, regressions)
    final = store.scan(scan_id)
    reports = store.scan_reports(scan_id)
    return ScanResult(
        scan_id=scan_id,
        total=len(view.domains),
        checked=len(reports),
        errors=len(final.errors) if final else 0,
        critical=sum(1 for r in reports if r.worst == "critical"),
        duration_s=time.monotonic() - started,
        regressions=regressions,
        webhook_delivered=delivered,
    )


def _check_concurrency(concurrency: int) -> None:
    if not 1 <= concurrency <= 256:
        raise InvalidInput("concurrency must be between 1 and 256")


@dataclass(frozen=True, slots=True)
class _Checks:
    """How each domain of one scan is checked: the engine and the request options."""

    engine: Engine
    settings: Settings
    probe_smtp: bool
    tenant_domain: str | None

    def run(self, domain: str) -> Report:
        return scan_domain(
            self.engine,
            domain,
            self.settings,
            probe_smtp=self.probe_smtp,
            tenant_domain=self.tenant_domain,
        )


def _check_all(
    scan_id: str,
    pending: Sequence[str],
    store: Store,
    checks: _Checks,
    concurrency: int,
    on_progress: Callable[[Progress], None] | None,
    view: ScanView,
) -> None:
    """Check ``pending`` on a pool of ``concurrency`` threads; results are stored here, in
    the calling thread, as they arrive. One domain's failure is recorded, never raised."""
    done = len(view.domains) - len(pending)
    with ThreadPoolExecutor(max(1, min(concurrency, len(pending) or 1))) as pool:
        futures: dict[Future[Report], str] = {pool.submit(checks.run, d): d for d in pending}
        for future in as_completed(futures):
            domain = futures[future]
            report: Report | None = None
            error: str | None = None
            try:
                report = future.result()
                store.save_report(scan_id, report)
            except Exception as exc:
                log.exception("scan %s: checking %s failed", scan_id, domain)
                error = f"the check failed: {type(exc).__name__}"
                store.record_error(scan_id, domain, error)
            done += 1
            if on_progress is not None:
                on_progress(Progress(done, len(view.domains), domain, report, error))


# -- the regressions webhook --------------------------------------------------------


def webhook_target(settings: Settings) -> str:
    """The webhook URL if the target guard lets the service post to it; else ConfigError.

    https only, to public addresses; plain http only when every address of the host lies
    in an allow_private_targets range (tests on loopback). The name is resolved here and
    again by the HTTP client, so a name that rebinds in between is not caught.
    """
    url = settings.webhook_url
    parts = urlsplit(url)
    problem = ""
    if parts.scheme not in ("https", "http") or not parts.hostname:
        problem = "not an http(s) URL with a host"
    elif parts.username or parts.password:
        problem = "credentials belong in SENDREADY_WEBHOOK_SECRET, not in the URL"
    elif not settings.webhook_secret:
        problem = "SENDREADY_WEBHOOK_SECRET is needed to sign the webhook"
    else:
        problem = _address_problem(parts.hostname, parts.port, parts.scheme, settings)
    if problem:
        raise ConfigError(f"SENDREADY_WEBHOOK_URL={url!r}: {problem}")
    return url


def _address_problem(host: str, port: int | None, scheme: str, settings: Settings) -> str:
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            return f"{host} does not resolve ({exc})"
        addresses = sorted({str(info[4][0]) for info in infos})
    refusals = [
        why for a in addresses if (why := why_not_public(a, settings.allow_private_targets))
    ]
    if refusals:
        return "; ".join(refusals)
    allowed = settings.allow_private_targets
    in_test_range = all(any(ipaddress.ip_address(a) in n for n in allowed) for a in addresses)
    if scheme == "http" and not in_test_range:
        return "must be https (plain http only to an allow_private_targets range)"
    return ""


def _webhook_session(settings: Settings) -> requests.Session:
    """auth/http.py's session (no proxy or CA variables, bounded timeouts), but trusting the
    CA file of the TLS checks (ca_file): the webhook is an ordinary HTTPS site, not Entra ID
    or Graph."""
    session = make_session(settings)
    session.verify = settings.ca_file or True
    return session


def signature(secret: str, body: bytes) -> str:
    """The X-SendReady-Signature value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_body(
    scan_id: str, tenant: str | None, regressions: Sequence[Regression], sent_at: float
) -> bytes:
    """The JSON the webhook receives. ``sent_at`` is inside the signed body, so a receiver
    can reject replays without trusting the unsigned timestamp header."""
    payload = {
        "scan": scan_id,
        "tenant": tenant,
        "sent_at": datetime.fromtimestamp(int(sent_at), UTC).isoformat(),
        "regressions": [plain(r) for r in regressions],
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def send_webhook(
    settings: Settings,
    scan_id: str,
    tenant: str | None,
    regressions: Sequence[Regression],
    *,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> bool:
    """POST the regressions, signed; repeat on 5xx, timeouts and resets. True if accepted."""
    url = webhook_target(settings)
    http = session or _webhook_session(settings)
    now = clock()
    body = webhook_body(scan_id, tenant, regressions, now)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "SendReady",
        SIGNATURE_HEADER: signature(settings.webhook_secret, body),
        TIMESTAMP_HEADER: str(int(now)),
    }
    for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
        try:
            response = http.post(url, data=body, headers=headers, allow_redirects=False)
        except requests.RequestException as exc:
            outcome = type(exc).__name__
        else:
            if 200 <= response.status_code < 300:
                log.info("scan %s: %d regressions sent to the webhook", scan_id, len(regressions))
                return True
            outcome = f"HTTP {response.status_code}"
            if response.status_code < 500:
                log.warning("scan %s: the webhook refused the regressions (%s)", scan_id, outcome)
                return False
        log.warning("scan %s: webhook attempt %d failed (%s)", scan_id, attempt, outcome)
        if attempt < WEBHOOK_ATTEMPTS:
            sleep(WEBHOOK_BACKOFF * attempt)
    return False


def _notify(
    settings: Settings, scan_id: str, tenant: str | None, regressions: Sequence[Regression]
) -> bool | None:
    if not settings.webhook_url or not regressions:
        return None
    try:
        return send_webhook(settings, scan_id, tenant, regressions)
    except ConfigError as exc:
        log.error("scan %s: the webhook is misconfigured: %s", scan_id, exc)
        return False


def notify_regressions(settings: Settings, store: Store, scan_id: str) -> bool | None:
    """Send a finished scan's regressions to the webhook, if one is set and there are any
    (for the queue, whose last job finishes the scan)."""
    view = store.scan(scan_id)
    if view is None:
        raise KeyError(f"no scan {scan_id}")
    return _notify(settings, scan_id, view.tenant, store.regressions(scan_id))


# -- export -------------------------------------------------------------------------

CSV_COLUMNS = ("domain", "checked_at", "finding", "status", "severity", "subject", "title")
#: A spreadsheet reads a cell starting with one of these as a formula (OWASP: CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A cell a spreadsheet shows as text: a leading formula character gets a ``'`` first."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def export_csv(reports: Iterable[StoredReport]) -> str:
    """One row per finding, RFC 4180 (CRLF, quoted where needed), safe to open in Excel."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    for stored in reports:
        checked_at = stored.checked_at.isoformat()
        for finding in stored.report.get("findings", []):
            row = (
                stored.domain,
                checked_at,
                finding.get("id", ""),
                finding.get("status", ""),
                finding.get("severity", ""),
                finding.get("subject", ""),
                finding.get("title", ""),
            )
            writer.writerow([neutralise(str(cell)) for cell in row])
    return out.getvalue()


def export_json(
    scan: ScanView, reports: Sequence[StoredReport], regressions: Sequence[Regression]
) -> dict[str, Any]:
    """The scan, every stored report (the Report JSON) and its regressions, as JSON values."""
    return {
        "scan": plain(scan),
        "reports": [plain(r) for r in reports],
        "regressions": [plain(r) for r in regressions],
    }


def plain(value: Any) -> Any:
    """Dataclasses, datetimes (ISO-8601), mappings and sequences as plain JSON values."""
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
