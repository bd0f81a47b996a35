"""`sendready scan`: check every domain of the tenant (or a list) and store it in the history.

Progress goes to stderr; the summary table and the regressions (or the CSV or JSON export)
to stdout or ``--output``. Exit status as for ``check``: 0 clean, 1 when a domain has a
critical problem, a regression or could not be checked, 2 for bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .cli import EXIT_CRITICAL, EXIT_OK, UsageError, _settings, _use_color, domain_option, painter
from .config import Settings

if TYPE_CHECKING:
    from .scan import Progress, ScanResult, TenantListing
    from .store import Regression, ScanView, StoredReport

#: Lines of a --file read at most (a scan holds at most scan.MAX_DOMAINS domains anyway).
MAX_FILE_LINES = 100_000


def register(subparsers: Any) -> None:
    """Add ``scan`` to the ``sendready`` command's subparsers."""
    scan = subparsers.add_parser("scan", help="check every domain of the tenant, or a list")
    scan.add_argument("domains", nargs="*", metavar="DOMAIN", help="domains to check")
    scan.add_argument(
        "--tenant",
        nargs="?",
        const="",
        metavar="TENANT_ID",
        help="check the tenant's verified domains (Graph, app-only); TENANT_ID replaces the "
        "authority's tenant",
    )
    scan.add_argument("--file", metavar="FILE", help="domains to check, one a line (- for stdin)")
    scan.add_argument(
        "--tenant-domain",
        metavar="NAME",
        help="the Microsoft 365 tenant's initial domain (contoso.onmicrosoft.com), for the DKIM "
        "CNAMEs; --tenant learns it from Graph",
    )
    scan.add_argument("--concurrency", type=int, default=8, help="domains checked at once")
    scan.add_argument(
        "--no-smtp", dest="probe_smtp", action="store_false", help="skip the SMTP probes"
    )
    scan.add_argument("--format", choices=("text", "csv", "json"), default="text")
    scan.add_argument("--output", metavar="FILE", help="write the result here, not to stdout")
    scan.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    scan.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="ask this nameserver (repeatable); default: SENDREADY_DNS_SERVERS or the system's",
    )
    scan.set_defaults(func=cmd_scan)


def cmd_scan(args: argparse.Namespace, out: IO[str]) -> int:
    from .scan import run_scan
    from .store import open_store

    if not 1 <= args.concurrency <= 256:
        raise UsageError("--concurrency must be between 1 and 256")
    settings, tenant, domains, initial = _what_to_scan(args)
    # Opened first, so a wrong --output path is a usage error before anything is checked.
    target = _open_output(args.output) if args.output else out
    try:
        store = open_store(settings)
        try:
            result = run_scan(
                domains,
                store=store,
                settings=settings,
                tenant=tenant,
                concurrency=args.concurrency,
                kind="tenant" if tenant is not None else "manual",
                on_progress=_progress_printer(sys.stderr),
                probe_smtp=args.probe_smtp,
                tenant_domain=initial,
            )
            reports = store.scan_reports(result.scan_id)
            view = store.scan(result.scan_id)
        finally:
            store.close()
        if view is None:
            raise RuntimeError(f"scan {result.scan_id} vanished from the store")
        color = not args.output and _use_color(args.color, out)
        target.write(_formatted(args.format, result, view, reports, color))
    finally:
        if target is not out:
            target.close()
    clean = not (result.critical or result.regressions or result.errors)
    return EXIT_OK if clean else EXIT_CRITICAL


def _what_to_scan(
    args: argparse.Namespace,
) -> tuple[Settings, str | None, list[str], str | None]:
    """The settings, the tenant (for --tenant), the validated domains to check and the
    tenant's initial domain (--tenant-domain, else what Graph marks initial for --tenant)."""
    sources = (bool(args.domains), args.file is not None, args.tenant is not None)
    if sum(sources) != 1:
        raise UsageError("name the domains: DOMAIN..., --file FILE or --tenant (exactly one)")
    settings = _settings(args)
    tenant: str | None = None
    initial = domain_option(args.tenant_domain, "--tenant-domain") if args.tenant_domain else None
    if args.tenant is not None:
        if not settings.client_id:
            raise UsageError("--tenant needs SENDREADY_CLIENT_ID (the app registration)")
        settings, tenant = _tenant_settings(settings, args.tenant)
        listing = _tenant_listing(settings)
        domains, initial = list(listing.domains), initial or listing.initial
    elif args.file:
        domains = _read_file(args.file)
    else:
        domains = [domain_option(d, "DOMAIN") for d in args.domains]
    if not domains:
        raise UsageError("no domains to check")
    return settings, tenant, domains, initial


def _open_output(path: str) -> IO[str]:
    try:
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"--output {path}: {exc.strerror or exc}") from None


def _formatted(
    kind: str,
    result: ScanResult,
    view: ScanView,
    reports: Sequence[StoredReport],
    color: bool,
) -> str:
    from .scan import export_csv, export_json

    if kind == "csv":
        return export_csv(reports)
    if kind == "json":
        return json.dumps(export_json(view, reports, result.regressions), indent=2) + "\n"
    return render_scan(result, reports, view.errors, color=color)


def _read_file(path: str) -> list[str]:
    """One domain a line; blank lines and ``#`` comments are skipped."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--file {path}: {exc}") from None
    lines = text.splitlines()
    if len(lines) > MAX_FILE_LINES:
        raise UsageError(f"--file {path}: more than {MAX_FILE_LINES} lines")
    domains = []
    for number, line in enumerate(lines, 1):
        name = line.split("#", 1)[0].strip()
        if name:
            domains.append(domain_option(name, f"{path}:{number}"))
    return domains


def _tenant_settings(settings: Settings, tenant_id: str) -> tuple[Settings, str]:
    """Settings whose authority names one tenant (client credentials need one), and its id."""
    from .scan import authority_tenant, tenant_authority

    tenant = tenant_id.strip() or authority_tenant(settings.authority)
    if tenant.lower() in ("organizations", "common", "consumers", ""):
        raise UsageError(
            "--tenant needs a tenant: give its id (--tenant TENANT_ID) or set "
            "SENDREADY_AUTHORITY to https://login.microsoftonline.com/<tenant id>"
        )
    if not all(c.isalnum() or c in "-." for c in tenant) or len(tenant) > 100:
        raise UsageError(f"--tenant {tenant!r}: not a tenant id or domain")
    return replace(settings, authority=tenant_authority(settings.authority, tenant)), tenant


def _tenant_listing(settings: Settings) -> TenantListing:
    from .auth.http import make_session
    from .auth.msal_client import ServiceAuthError, TokenBroker
    from .scan import tenant_listing

    session = make_session(settings)
    try:
        broker = TokenBroker(settings, session)
    except ValueError as exc:
        raise UsageError(f"--tenant: {exc}") from None
    try:
        return tenant_listing(settings, broker, session=session)
    except ServiceAuthError as exc:
        raise UsageError(f"--tenant: {exc.title}: {exc.detail}") from None


def _progress_printer(err: IO[str]) -> Callable[[Progress], None]:
    def show(progress: Progress) -> None:
        if progress.report is not None:
            worst = progress.report.summary.worst
            verdict = worst.value if worst else "clean"
        else:
            verdict = f"not checked ({progress.error})"
        err.write(f"[{progress.done}/{progress.total}] {progress.domain}: {verdict}\n")
        err.flush()

    return show


# -- the readable summary -------------------------------------------------------------


def render_scan(
    result: ScanResult,
    reports: Sequence[StoredReport],
    errors: dict[str, str],
    *,
    color: bool = False,
) -> str:
    """A table of the domains (worst first), the regressions, and the verdict."""

    paint = painter(color)
    rank = {"critical": 0, "warning": 1, "info": 2, None: 3}
    rows = sorted(reports, key=lambda r: (rank.get(r.worst, 3), r.domain))
    width = max([len("domain"), *(len(r.domain) for r in reports), *(len(d) for d in errors)])
    lines = [
        paint(f"SendReady scan {result.scan_id}", "bold")
        + paint(f"  ({result.total} domains, {result.duration_s:.1f} s)", "dim"),
        "",
        paint(f"{'domain':<{width}}  {'worst':<8}  failed  unknown  passed", "bold"),
    ]
    tone = {"critical": "red", "warning": "yellow"}
    for stored in rows:
        summary = stored.report.get("summary", {})
        worst = stored.worst or "clean"
        cell = f"{worst:<8}"
        if stored.worst in tone:
            cell = paint(cell, tone[stored.worst])
        lines.append(
            f"{stored.domain:<{width}}  {cell}  {stored.failed:>6}  "
            f"{summary.get('unknown', 0):>7}  {summary.get('passed', 0):>6}"
        )
    for domain, reason in sorted(errors.items()):
        lines.append(f"{domain:<{width}}  " + paint(f"not checked: {reason}", "blue"))
    lines.append("")
    lines.extend(_render_regressions(result.regressions, paint))
    verdict = (
        paint("Regressions or critical problems found.", "red", "bold")
        if result.regressions or result.critical
        else paint("No regressions, nothing critical.", "green", "bold")
    )
    lines.append(
        f"{verdict} Checked: {result.checked}; critical: {result.critical}; "
        f"not checked: {result.errors}; regressions: {len(result.regressions)}."
    )
    if result.webhook_delivered is not None:
        lines.append(
            "Webhook: " + ("delivered." if result.webhook_delivered else "delivery failed.")
        )
    return "\n".join(lines) + "\n"


def _render_regressions(regressions: Sequence[Regression], paint: Callable[..., str]) -> list[str]:
    if not regressions:
        return []
    lines = [paint(f"Regressions since the previous scan ({len(regressions)})", "bold")]
    for reg in regressions:
        severity_tone = "red" if reg.severity == "critical" else "yellow"
        lines.append(
            paint("  ✗ ", severity_tone)
            + f"{reg.domain}: {reg.title}"
            + paint(f"  [{reg.severity}]", severity_tone)
        )
        when = f"passed {reg.before_checked_at:%Y-%m-%d %H:%M}, "
        when += f"failed {reg.now_checked_at:%Y-%m-%d %H:%M} UTC"
        lines.append(paint(f"      ({reg.finding_id} on {reg.subject}; {when})", "dim"))
    lines.append("")
    return lines
