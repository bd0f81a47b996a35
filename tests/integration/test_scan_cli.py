"""`sendready scan` end to end: a real process against Knot (and the Entra-like issuer for
--tenant), the history in SQLite, exit codes, progress on stderr, CSV and JSON output, and a
regression highlighted after a DMARC record is removed."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import NET, Pki, Zones, clean_environment, run_sendready
from tests.fixtures.issuer import API_CLIENT_ID, API_SECRET, TENANT
from tests.fixtures.knot import KnotServer
from tests.servers.fake_issuer import FakeIssuer


def sendready(
    *args: str, dns_server: KnotServer, instance: Path, **env_extra: str
) -> subprocess.CompletedProcess[str]:
    env = clean_environment(
        dns_servers=dns_server.nameserver,
        allow_private_targets=f"{NET}.0/24",
        instance_path=str(instance),
    )
    env.pop("NO_COLOR", None)
    env.update(env_extra)
    return run_sendready("scan", *args, env=env, timeout=120)


def test_a_scan_with_a_critical_domain_exits_1_with_a_table_and_progress(
    dns_server: KnotServer, tmp_path: Path
) -> None:
    result = sendready(
        "scan-good.test", "scan-nospf.test", "--no-smtp", dns_server=dns_server, instance=tmp_path
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("SendReady scan ")
    nospf = next(line for line in lines if line.startswith("scan-nospf.test"))
    assert nospf.split()[1] == "critical"
    assert any(line.startswith("scan-good.test") for line in lines)
    assert "critical: 1" in result.stdout and "regressions: 0" in result.stdout
    assert "[1/2] " in result.stderr and "[2/2] " in result.stderr
    assert "\033[" not in result.stdout  # not a terminal: no colour
    assert (tmp_path / "sendready.db").exists()  # the history


def test_a_file_of_domains_exports_csv_to_the_output_file(
    dns_server: KnotServer, tmp_path: Path
) -> None:
    listing = tmp_path / "domains.txt"
    listing.write_text("# our domains\nscan-good.test\n\nSCAN-NOSPF.test  # no SPF yet\n")
    out = tmp_path / "scan.csv"
    result = sendready(
        "--file",
        str(listing),
        "--no-smtp",
        "--format",
        "csv",
        "--output",
        str(out),
        dns_server=dns_server,
        instance=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert {r["domain"] for r in rows} == {"scan-good.test", "scan-nospf.test"}
    missing = [r for r in rows if r["finding"] == "spf.missing"]
    assert {(r["domain"], r["status"]) for r in missing} == {
        ("scan-good.test", "pass"),
        ("scan-nospf.test", "fail"),
    }


def test_json_output_holds_the_scan_and_its_reports(dns_server: KnotServer, tmp_path: Path) -> None:
    result = sendready(
        "scan-good.test", "--no-smtp", "--format", "json", dns_server=dns_server, instance=tmp_path
    )
    data = json.loads(result.stdout)
    assert data["scan"]["state"] == "done" and data["scan"]["domains"] == ["scan-good.test"]
    assert data["reports"][0]["report"]["schema"] == "1.1"
    assert data["regressions"] == []
    assert result.returncode == (1 if data["reports"][0]["worst"] == "critical" else 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name the domains"),
        (("scan-good.test", "--file", "x.txt"), "exactly one"),
        (("bad..name",), "empty label"),
        (("scan-good.test", "--concurrency", "0"), "--concurrency"),
        (("--tenant",), "SENDREADY_CLIENT_ID"),
        (("scan-good.test", "--format", "xml"), "invalid choice"),
        (("scan-good.test", "--output", "/nonexistent-dir/scan.csv"), "--output"),
        (("--file", "/nonexistent-dir/domains.txt"), "--file"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    dns_server: KnotServer, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = sendready(*args, dns_server=dns_server, instance=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "sendready.db").exists()  # nothing was scanned


def test_a_removed_dmarc_record_is_highlighted_as_a_regression(
    dns_server: KnotServer, tmp_path: Path, zones: Zones
) -> None:
    first = sendready("scan-drift.test", "--no-smtp", dns_server=dns_server, instance=tmp_path)
    assert "Regressions since" not in first.stdout, first.stderr
    zones.publish("scan-drift.test", drop=["_dmarc"])
    second = sendready(
        "scan-drift.test",
        "--no-smtp",
        "--color",
        "always",
        dns_server=dns_server,
        instance=tmp_path,
    )
    assert second.returncode == 1, second.stderr
    assert "Regressions since the previous scan" in second.stdout
    assert "(dmarc.missing on scan-drift.test; passed " in second.stdout
    assert "\033[" in second.stdout  # highlighted


def test_the_tenant_scan_checks_the_verified_domains_from_graph(
    dns_server: KnotServer, tmp_path: Path, issuer: FakeIssuer, pki: Pki
) -> None:
    issuer.domains = [("scan-good.test", True), ("scan-nospf.test", False)]
    try:
        result = sendready(
            "--tenant",
            "--no-smtp",
            "--format",
            "json",
            dns_server=dns_server,
            instance=tmp_path,
            SENDREADY_CLIENT_ID=API_CLIENT_ID,
            SENDREADY_CLIENT_SECRET=API_SECRET,
            SENDREADY_AUTHORITY=f"{issuer.base}/{TENANT}",
            SENDREADY_AUTH_CA_FILE=pki.ca,
            SENDREADY_GRAPH_URL=f"{issuer.base}/graph",
        )
    finally:
        issuer.domains = []
    assert result.returncode in (0, 1), result.stderr
    data = json.loads(result.stdout)
    assert data["scan"]["domains"] == ["scan-good.test"]  # the unverified one is left out
    assert (data["scan"]["tenant"], data["scan"]["kind"]) == (TENANT, "tenant")
