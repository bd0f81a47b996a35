"""The `sendready` command: check a domain or address from the terminal (and more subcommands)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import IO

from .config import ConfigError, Settings
from .dns import InvalidInput, normalize_domain, parse_address, parse_nameservers
from .model import CheckRequest, Finding, Record, Report, Severity, Status

EXIT_OK, EXIT_CRITICAL, EXIT_USAGE = 0, 1, 2

AREA_TITLES = {
    "mx": "MX",
    "spf": "SPF",
    "dkim": "DKIM",
    "dmarc": "DMARC",
    "mta_sts": "MTA-STS",
    "tlsrpt": "TLS-RPT",
    "bimi": "BIMI",
    "dnssec": "DNSSEC",
    "dane": "DANE",
    "ptr": "Reverse DNS",
    "services": "Sending services",
    "smtp": "SMTP",
    "recipient": "Recipients",
    "alignment": "Alignment",
    "sendas": "Send As",
    "requirements": "Provider requirements",
    "engine": "SendReady",
}


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sendready", description="Will the mail you are writing be delivered?")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    check = sub.add_parser("check", help="check a sender domain or address")
    check.add_argument("target", help="a domain (example.com) or an address (alice@example.com)")
    check.add_argument("--json", action="store_true", help="print the Report JSON")
    check.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="ask this nameserver (repeatable); default: SENDREADY_DNS_SERVERS or the system's",
    )
    check.add_argument(
        "--selector", action="append", default=[], metavar="S", help="a DKIM selector to check"
    )
    check.add_argument(
        "--recipient", action="append", default=[], metavar="ADDR", help="a recipient to check"
    )
    check.add_argument("--service", help="the sending service, if known (e.g. microsoft365)")
    check.add_argument(
        "--tenant-domain",
        metavar="NAME",
        help="the Microsoft 365 tenant's initial domain (contoso.onmicrosoft.com): the DKIM "
        "CNAMEs to create point into it",
    )
    check.add_argument("--timeout", type=float, metavar="SECONDS", help="the whole check's budget")
    check.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    check.add_argument(
        "--no-smtp",
        dest="probe_smtp",
        action="store_const",
        const=False,
        default=None,
        help="skip the SMTP probes (MX on 25, submission on 587/465)",
    )
    check.add_argument(
        "--submission",
        type=_submission,
        metavar="HOST[:PORT]",
        help="probe this submission host or relay (default: the sending service's)",
    )
    check.set_defaults(func=cmd_check)
    explain = sub.add_parser("explain", help="explain a pasted SMTP reply or bounce")
    explain.add_argument("text", nargs="+", help='the reply, e.g. "535 5.7.139 ..."; - for stdin')
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.set_defaults(func=cmd_explain)
    manifest = sub.add_parser("manifest", help="print the Outlook add-in manifest (XML)")
    manifest.add_argument("--base-url", required=True, help="https origin serving the add-in")
    manifest.add_argument("--client-id", help="Entra ID application (client) id")
    manifest.set_defaults(func=cmd_manifest)
    serve = sub.add_parser("serve", help="run the web service (gunicorn, HTTPS)")
    serve.add_argument("--listen", metavar="HOST:PORT", help="default: SENDREADY_LISTEN")
    serve.add_argument("--workers", type=int, help="gunicorn workers; default: sized for the CPU")
    serve.set_defaults(func=cmd_serve)
    from .scan_cli import register as register_scan
    from .store.cli import register as register_db
    from .worker_cli import register as register_worker

    register_scan(sub)
    register_worker(sub)
    register_db(sub)
    return parser


def _submission(text: str) -> str:
    from .checks.smtp import parse_submission

    try:
        endpoint = parse_submission(text)[0]
        normalize_domain(endpoint.host)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def cmd_explain(args: argparse.Namespace, out: IO[str]) -> int:
    from .model import jsonable
    from .smtp.explain import explain

    text = sys.stdin.read() if args.text == ["-"] else " ".join(args.text)
    result = explain(text)
    if args.json:
        json.dump(jsonable(result), out, indent=2, ensure_ascii=False)
        out.write("\n")
        return EXIT_OK
    codes = " ".join(str(c) for c in (result.code, result.enhanced) if c) or "no code"
    lines = [f"{codes}: {'recognised' if result.recognised else 'not recognised'}"]
    lines.append(f"Cause: {result.cause}")
    if result.fix:
        lines.append(f"Fix: {result.fix}")
    meaning = "; ".join(m for m in (result.class_meaning, result.subject_meaning) if m)
    if meaning and result.recognised:
        lines.append(f"Class: {meaning}")
    lines.append(f"Source: {result.source}")
    for line in lines:
        out.write(textwrap.fill(line, 100, subsequent_indent="  ") + "\n")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, out: IO[str]) -> int:
    from .serve import serve

    settings = Settings.from_env()
    if args.listen:
        settings = replace(settings, listen=args.listen)
    if args.workers:
        settings = replace(settings, workers=args.workers)
    return serve(settings, out)


def cmd_manifest(args: argparse.Namespace, out: IO[str]) -> int:
    from .manifest import ManifestError, render_manifest

    try:
        out.write(render_manifest(args.base_url, args.client_id))
    except ManifestError as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def request_from_target(target: str, **options: object) -> CheckRequest:
    """A CheckRequest for a domain or an address; raises InvalidInput with a plain reason."""
    if "@" in target:
        local, domain = parse_address(target)
        return CheckRequest(domain=domain, address=f"{local}@{domain}", **options)  # type: ignore[arg-type]
    return CheckRequest(domain=normalize_domain(target), **options)  # type: ignore[arg-type]


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if args.nameserver:
        try:
            servers = tuple(ns for text in args.nameserver for ns in parse_nameservers(text))
        except ValueError as exc:
            raise UsageError(f"--nameserver: {exc}") from None
        settings = replace(settings, dns_servers=servers)
    return settings


def cmd_check(args: argparse.Namespace, out: IO[str]) -> int:
    from .engine import Engine

    if args.timeout is not None and not 0 < args.timeout <= 300:
        raise UsageError("--timeout must be between 0 and 300 seconds")
    try:
        recipients = tuple("@".join(parse_address(r)) for r in args.recipient)
        options: dict[str, object] = {
            "selectors": tuple(args.selector),
            "recipients": recipients,
            "service": args.service,
            "budget": args.timeout,
        }
        if args.tenant_domain is not None:
            options["tenant_domain"] = domain_option(args.tenant_domain, "--tenant-domain")
        for key in ("probe_smtp", "submission", "oauth_token"):
            if getattr(args, key, None) is not None:
                options[key] = getattr(args, key)
        request = request_from_target(args.target, **options)
        for selector in request.selectors:
            normalize_domain(f"{selector}._domainkey.example.com")
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    settings = _settings(args)
    with Engine(settings) as engine:
        report = engine.check(request)
    if args.json:
        json.dump(report.to_json(), out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(render(report, color=_use_color(args.color, out)))
    return EXIT_CRITICAL if report.has_critical else EXIT_OK


def domain_option(text: str, where: str) -> str:
    """A domain given on the command line, validated and lower-case; a UsageError naming
    ``where`` (the option, argument or file line) otherwise."""
    try:
        return normalize_domain(text)
    except InvalidInput as exc:
        raise UsageError(f"{where}: {exc}") from None


def _use_color(choice: str, out: IO[str]) -> bool:
    if choice != "auto":
        return choice == "always"
    return out.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


# -- the readable report -------------------------------------------------------------

_STYLE = {
    "bold": "\033[1m",
    "dim": "\033[2m",
    "red": "\033[31m",
    "yellow": "\033[33m",
    "green": "\033[32m",
    "blue": "\033[34m",
    "reset": "\033[0m",
}


def painter(color: bool) -> Callable[..., str]:
    """``paint(text, *styles)``: the text in the _STYLE styles, or as it is without colour."""

    def paint(text: str, *styles: str) -> str:
        if not color:
            return text
        return "".join(_STYLE[s] for s in styles) + text + _STYLE["reset"]

    return paint


def render(report: Report, *, color: bool = False, width: int = 100) -> str:
    """The report as text grouped by area: problems first, then unknowns, then passes."""

    paint = painter(color)
    lines = [
        paint(f"SendReady — {report.address or report.domain}", "bold")
        + paint(f"  (checked {report.checked_at}, {report.duration_ms:.0f} ms)", "dim"),
        "",
    ]
    order = {Status.FAIL: 0, Status.UNKNOWN: 1, Status.PASS: 2}
    # A record that fixes several findings is printed in full once, then named by the
    # finding it was printed under.
    shown: dict[Record, str] = {}
    for area, findings in report.by_area().items():
        lines.append(paint(AREA_TITLES.get(area, area.upper()), "bold"))
        ranked = sorted(findings, key=lambda f: (order[f.status], -f.severity.rank))
        for finding in ranked:
            lines.extend(_render_finding(finding, paint, width, shown))
        lines.append("")
    summary = report.summary
    counts = ", ".join(
        f"{summary.by_severity[s.value]} {s.value}"
        for s in Severity
        if summary.by_severity[s.value]
    )
    verdict = (
        paint("Something will stop delivery.", "red", "bold")
        if report.has_critical
        else paint("Nothing critical.", "green", "bold")
    )
    lines.append(
        f"{verdict} Problems: {counts or 'none'}; could not check: {summary.unknown}; "
        f"passed: {summary.passed}."
    )
    return "\n".join(lines) + "\n"


def _render_finding(
    finding: Finding, paint: Callable[..., str], width: int, shown: dict[Record, str]
) -> list[str]:
    indent = " " * 6
    if finding.status is Status.PASS:
        head = paint("  ✓ ", "green") + finding.title
        return [head]
    if finding.status is Status.UNKNOWN:
        head = paint("  ? ", "blue") + finding.title
        body = [finding.detail] if finding.detail else []
    else:
        tone = "red" if finding.severity is Severity.CRITICAL else "yellow"
        mark = "✗" if finding.severity is not Severity.INFO else "i"
        head = paint(f"  {mark} ", tone) + finding.title + paint(f"  [{finding.severity}]", tone)
        body = [finding.detail] if finding.detail else []
        if finding.fix:
            body.append("Fix: " + finding.fix)
    lines = [head]
    for text in body:
        lines.extend(
            textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent) or [indent]
        )
    for record in finding.records:
        if record in shown:
            lines.append(
                " " * 6
                + paint(f"{record.type:<5}", "bold", "blue")
                + f" {record.name}  "
                + paint(f"(the same record as under {shown[record]})", "dim")
            )
            continue
        shown[record] = finding.id
        lines.extend(_render_record(record, paint, width))
    if finding.spec and finding.status is Status.FAIL:
        lines.append(paint(indent + f"({finding.id}; {finding.spec})", "dim"))
    return lines


def _render_record(record: Record, paint: Callable[..., str], width: int) -> list[str]:
    """One ready-to-paste record: its type, name and TTL on one line, then the value on lines
    of its own, never wrapped, so that it can be copied exactly (a FILE body line by line)."""
    indent = " " * 8
    where = record.name if record.type == "FILE" else f"{record.name}  TTL {record.ttl}"
    lines = [" " * 6 + paint(f"{record.type:<5}", "bold", "blue") + " " + where]
    values = record.value.splitlines() if record.type == "FILE" else [record.value]
    lines.extend(paint(indent + value, "bold") for value in values)
    if record.note:
        lines.extend(
            paint(line, "dim")
            for line in textwrap.wrap(
                "Note: " + record.note, width, initial_indent=indent, subsequent_indent=indent
            )
        )
    return lines


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    stream = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        code: int = args.func(args, stream)
        return code
    except UsageError as exc:
        print(f"sendready: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"sendready: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run the imported module's main, so that UsageError raised by subcommand modules
    # (which import sendready.cli) is the class main catches, not a __main__ copy.
    from sendready.cli import main as imported_main

    sys.exit(imported_main())
