"""`sendready check` end to end: a real process against Knot, exit codes, output forms."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def sendready(*args: str, nameserver: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDREADY_")}
    env.pop("NO_COLOR", None)
    argv = [sys.executable, "-m", "sendready.cli", *args]
    if nameserver:
        argv += ["--nameserver", nameserver]
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def ns(dns_server) -> str:  # type: ignore[no-untyped-def]
    return str(dns_server.nameserver)


def test_a_domain_with_nothing_critical_exits_0_with_a_readable_report(ns: str) -> None:
    result = sendready("check", "null.mx.test", "--timeout", "5", nameserver=ns)
    assert result.returncode == 0, result.stderr
    assert "SendReady — null.mx.test" in result.stdout
    assert "\nMX\n" in result.stdout
    assert "✓ null.mx.test declares that it accepts no mail" in result.stdout
    assert "\033[" not in result.stdout  # not a terminal: no colour


def test_a_critical_finding_exits_1_and_says_what_to_fix(ns: str) -> None:
    result = sendready("check", "nomail.mx.test", nameserver=ns)
    assert result.returncode == 1
    assert "cannot receive mail" in result.stdout
    assert "Fix: Publish the MX record" in result.stdout


def test_json_output_is_the_report(ns: str) -> None:
    result = sendready("check", "alice@null.mx.test", "--json", nameserver=ns)
    data = json.loads(result.stdout)
    assert data["schema"] == "1.1"
    assert data["address"] == "alice@null.mx.test"
    assert {f["id"] for f in data["findings"]} >= {"mx.null_mx"}


def test_colour_can_be_forced(ns: str) -> None:
    result = sendready("check", "nomail.mx.test", "--color", "always", nameserver=ns)
    assert "\033[31m" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "exa mple.com"], "letters, digits and hyphens"),
        (["check", "a" * 300], "limit is"),
        (["check", ("a" * 60 + ".") * 5 + "com"], "limit is 253"),
        (["check", "alice@@example.com"], "not valid"),
        (["check", "example.com", "--nameserver", "ns.example.com"], "IP address"),
        (["check", "example.com", "--timeout", "-1"], "--timeout"),
        (["check"], "target"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_problem(args: list[str], message: str) -> None:
    result = sendready(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sendready: ") and message in lines[0]
    assert result.stdout == ""


def test_an_idn_is_checked_as_its_a_label(ns: str) -> None:
    result = sendready("check", "bücher.mx.test", "--json", nameserver=ns)
    data = json.loads(result.stdout)
    assert data["domain"] == "xn--bcher-kva.mx.test"
    # Knot has no such name: the query went out as the A-label and came back NXDOMAIN.
    assert "mx.domain_not_found" in {f["id"] for f in data["findings"]}
    assert result.returncode == 1


def test_a_bad_setting_in_the_environment_exits_2_naming_it() -> None:
    env = {**os.environ, "SENDREADY_DNS_TIMEOUT": "soon"}
    result = subprocess.run(
        [sys.executable, "-m", "sendready.cli", "check", "example.com"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "SENDREADY_DNS_TIMEOUT='soon'" in result.stderr


def test_ready_to_paste_records_are_printed_under_their_finding(ns: str) -> None:
    result = sendready("check", "fix-dmarc.test", "--color", "never", nameserver=ns)
    out = result.stdout
    head = out.index("No DMARC policy applies to fix-dmarc.test")
    stages = [
        out.index(f"        v=DMARC1; p={policy}; rua=mailto:dmarc-reports@fix-dmarc.test\n")
        for policy in ("none", "quarantine", "reject")
    ]
    assert head < stages[0] < stages[1] < stages[2]
    assert "      TXT   _dmarc.fix-dmarc.test  TTL 3600\n" in out
    assert "Note: Stage 1 of 3" in out


def test_json_output_carries_the_records(ns: str) -> None:
    result = sendready("check", "fix-dmarc.test", "--json", nameserver=ns)
    data = json.loads(result.stdout)
    (missing,) = [f for f in data["findings"] if f["id"] == "dmarc.missing"]
    assert [r["value"].split("; ")[1] for r in missing["records"]] == [
        "p=none",
        "p=quarantine",
        "p=reject",
    ]
    assert set(missing["records"][0]) == {"type", "name", "value", "ttl", "note"}


def test_with_colour_the_record_value_stays_whole_on_its_line(ns: str) -> None:
    result = sendready("check", "fix-dmarc.test", "--color", "always", nameserver=ns)
    value = "v=DMARC1; p=reject; rua=mailto:dmarc-reports@fix-dmarc.test"
    assert f"\033[1m        {value}\033[0m\n" in result.stdout
    assert "\033[1m\033[34mTXT  \033[0m _dmarc.fix-dmarc.test  TTL 3600" in result.stdout
