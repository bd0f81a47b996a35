"""Task pane benchmark: the size of the pane's own assets, and the time from opening the pane
to the first finding shown, against the local service (not a test: no pass/fail on time).

    .venv/bin/python bench/bench_pane.py [--runs 10] [--delay-ms 0]

Everything runs on loopback: the project's tiny_dns serves the sender and recipient domains
(optionally with a per-answer delay), the service's Flask app runs under werkzeug in a thread
with its DNS pointed there, and the system Chromium opens the pane with the Office stub in
Outlook mode. The size budget (60 KB) excludes office.js and the vendored Fluent UI, tokens
and MSAL.js bundles.
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import logging
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NET = "127.0.10"
HOST = f"{NET}.80"
PORT = 8083
DNS_PORT = 5355
BUDGET_BYTES = 60 * 1024
OWN = ("*.js", "*.css", "*.html")

ZONE = f"""
$ORIGIN bench-pane.test.
@        300 IN SOA ns1 h 1 3600 600 86400 300
sender   300 IN MX 10 mx.sender
mx.sender 300 IN A {NET}.25
sender   300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.sender 300 IN TXT "v=DMARC1; p=reject"
rcpt     300 IN MX 10 mx.sender
"""


def asset_sizes() -> dict[str, Any]:
    files = sorted(p for pattern in OWN for p in (ROOT / "taskpane").glob(pattern))
    sizes = {p.name: p.stat().st_size for p in files}
    raw = sum(sizes.values())
    zipped = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    return {"files": sizes, "bytes": raw, "gzip_bytes": zipped, "budget_bytes": BUDGET_BYTES}


def serve(delay_ms: float) -> tuple[Any, Any, str]:
    from tests.servers.tiny_dns import TinyDns

    from sendready.config import Settings
    from sendready.dns import parse_nameservers

    try:
        from sendready.web import create_app  # type: ignore[attr-defined]
    except ImportError:
        raise SystemExit("the web API (sendready.web.create_app) is not in the tree") from None
    from werkzeug.serving import make_server

    dns = TinyDns(f"{NET}.54", DNS_PORT, delay_ms=delay_ms)
    dns.load_zone(ZONE, origin="bench-pane.test.")
    dns.start()
    settings = Settings(
        dns_servers=parse_nameservers(dns.nameserver),
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
    )
    try:
        app = create_app(settings=settings)
    except TypeError:
        app = create_app(settings)
    if "addin" not in app.blueprints:
        from sendready.web import addin

        addin.register(app, settings)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(HOST, PORT, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, PORT), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.02)
    return dns, server, f"http://{HOST}:{PORT}"


FIRST_FINDING = """
new MutationObserver((_, observer) => {
  if (document.querySelector('li.finding') && !window.__firstFinding) {
    window.__firstFinding = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, childList: true});
"""


def time_to_first_finding(base: str, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright
    from tests.browser.conftest import CHROMIUM, FLAGS, SITE

    stub = {"from": "alice@sender.bench-pane.test", "to": ["bob@rcpt.bench-pane.test"]}
    timings: list[float] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        for _ in range(runs):
            context = browser.new_context()
            page = context.new_page()

            def route(r: Any) -> None:
                url = r.request.url
                if url.startswith("https://appsforoffice.microsoft.com/"):
                    r.fulfill(path=str(SITE / "office-stub.js"), content_type="text/javascript")
                elif url.startswith(base + "/"):
                    r.continue_()
                else:
                    r.abort()

            page.route("**/*", route)
            page.add_init_script(f"window.__SENDREADY_STUB__ = {json.dumps(stub)};")
            page.add_init_script(FIRST_FINDING)
            page.goto(base + "/taskpane.html")
            page.wait_for_selector("li.finding", timeout=20000)
            timings.append(float(page.evaluate("window.__firstFinding")))
            context.close()
        browser.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="DNS delay per answer")
    parser.add_argument("--sizes-only", action="store_true")
    args = parser.parse_args()
    sizes = asset_sizes()
    result: dict[str, Any] = {"assets": sizes}
    print(
        f"pane's own assets: {sizes['bytes'] / 1024:.1f} KB "
        f"({sizes['gzip_bytes'] / 1024:.1f} KB gzip), budget {BUDGET_BYTES // 1024} KB: "
        + ("within" if sizes["bytes"] <= BUDGET_BYTES else "OVER")
    )
    if not args.sizes_only:
        dns, server, base = serve(args.delay_ms)
        try:
            timings = time_to_first_finding(base, max(1, min(args.runs, 100)))
        finally:
            server.shutdown()
            dns.stop()
        result["first_finding_ms"] = {
            "runs": len(timings),
            "median": statistics.median(timings),
            "min": min(timings),
            "max": max(timings),
            "dns_delay_ms": args.delay_ms,
        }
        print(
            f"open → first finding: median {statistics.median(timings):.0f} ms "
            f"(min {min(timings):.0f}, max {max(timings):.0f}, {len(timings)} runs, "
            f"DNS delay {args.delay_ms:g} ms)"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "pane.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
