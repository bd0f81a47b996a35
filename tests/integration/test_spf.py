"""SPF check against Knot serving tests/zones/spf-limits.test.zone and spf-rules.test.zone,
through ``check()`` with a real DnsSession; DNS failures through the ``fault_dns`` server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from sendready.checks import spf
from sendready.checks.spf_eval import SpfResultCode, check_mail_from
from sendready.config import Settings
from sendready.dns import DnsCache, Resolver, parse_nameservers
from sendready.engine import Engine
from sendready.model import CheckRequest, Finding, Report, Severity, Status
from tests.servers.tiny_dns import TinyDns

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(dns_server):  # type: ignore[no-untyped-def]
    settings = Settings(dns_servers=parse_nameservers(dns_server.nameserver))
    with Engine(settings, checks={"spf": spf.check}) as e:
        yield e


@pytest.fixture
def knot_resolver(dns_server) -> Resolver:  # type: ignore[no-untyped-def]
    return Resolver(parse_nameservers(dns_server.nameserver), timeout=1.0, cache=DnsCache())


def run(engine: Engine, domain: str) -> Report:
    return engine.check(CheckRequest(domain=domain, probe_smtp=False))


def failed(report: Report) -> dict[str, Finding]:
    return {f.id: f for f in report.findings if f.status is Status.FAIL}


def passed(report: Report) -> set[str]:
    return {f.id for f in report.findings if f.status is Status.PASS}


# -- limits ------------------------------------------------------------------------


def test_a_tree_of_exactly_ten_lookups_passes_with_per_node_counts(engine: Engine) -> None:
    report = run(engine, "at10.spf-limits.test")
    facts: spf.SpfFacts = report.facts["spf"]
    assert facts.lookups == 10
    assert facts.used == "10 of 10 used"
    assert failed(report) == {}
    assert passed(report) == {"spf.valid", "spf.missing"}
    tree = facts.tree
    assert tree is not None and tree.lookups == 4
    assert [(c.domain, c.lookups, c.subtree_lookups) for c in tree.children] == [
        (f"mid{i}.spf-limits.test", 2, 2) for i in (1, 2, 3)
    ]
    assert tree.children[0].children[0].domain == "leaf.spf-limits.test"


def test_a_tree_of_eleven_lookups_is_too_many_and_names_the_costliest_includes(
    engine: Engine,
) -> None:
    report = run(engine, "at11.spf-limits.test")
    finding = failed(report)["spf.too_many_lookups"]
    assert finding.data["lookups"] == 11
    assert finding.severity is Severity.CRITICAL
    assert "include:mid1.spf-limits.test" in finding.fix
    assert finding.data["costliest"][0].startswith("include:mid")
    assert "spf.valid" not in passed(report)


def test_the_tree_is_expanded_in_parallel_so_the_critical_path_is_its_depth(
    dns_server,  # type: ignore[no-untyped-def]
) -> None:
    # A fresh engine: an empty cache, so every question goes to the server.
    settings = Settings(dns_servers=parse_nameservers(dns_server.nameserver))
    with Engine(settings, checks={"spf": spf.check}) as fresh:
        report = run(fresh, "at10.spf-limits.test")
    # apex TXT -> mid TXT -> leaf TXT: three dependent round trips, whatever the breadth.
    assert report.facts["dns"]["critical_path"] == 3
    assert report.facts["dns"]["queries"] >= 8


def test_an_include_loop_is_reported_not_followed(engine: Engine) -> None:
    report = run(engine, "loop-a.spf-limits.test")
    finding = failed(report)["spf.include_loop"]
    assert finding.data["chain"] == [
        "loop-a.spf-limits.test",
        "loop-b.spf-limits.test",
        "loop-a.spf-limits.test",
    ]
    assert "include:loop-a.spf-limits.test" in finding.fix


def test_a_redirect_to_itself_is_a_loop(engine: Engine) -> None:
    assert "spf.include_loop" in failed(run(engine, "rloop.spf-limits.test"))


def test_two_void_lookups_are_allowed_and_three_are_not(engine: Engine) -> None:
    ok = run(engine, "void2.spf-limits.test")
    assert "spf.too_many_void_lookups" not in failed(ok)
    assert ok.facts["spf"].void_lookups == 2
    bad = failed(run(engine, "void3.spf-limits.test"))["spf.too_many_void_lookups"]
    assert bad.data["void_lookups"] == 3
    assert (bad.severity, bad.data["family"]) == (Severity.CRITICAL, "ipv4")
    assert "mx:gone3.spf-limits.test" in bad.fix


def test_hosts_without_ipv6_addresses_are_void_for_ipv6_mail_only(engine: Engine) -> None:
    report = run(engine, "v4only.spf-limits.test")
    facts = report.facts["spf"]
    assert (facts.void_ipv4, facts.void_ipv6) == (0, 3)
    finding = failed(report)["spf.too_many_void_lookups"]
    assert finding.severity is Severity.WARNING
    assert finding.data["family"] == "ipv6"
    assert "spf.valid" in passed(report)


def test_mx_with_more_than_ten_hosts_is_a_permerror_but_not_ten_lookups(engine: Engine) -> None:
    report = run(engine, "mx11.spf-limits.test")
    assert failed(report)["spf.mx_too_many_hosts"].data["mx_hosts"] == 11
    assert report.facts["spf"].lookups == 1


def test_a_600_octet_record_in_three_strings_is_joined_and_flagged_as_too_long(
    engine: Engine,
) -> None:
    report = run(engine, "long.spf-limits.test")
    facts = report.facts["spf"]
    assert facts.strings == (250, 250, 115)
    assert facts.record is not None and len(facts.record) == 615
    assert "ip4:198.51.100.33" in facts.record  # the term split across strings is whole
    finding = failed(report)["spf.record_too_long"]
    assert finding.data["octets"] > 450
    assert "spf.syntax_error" not in failed(report)


def test_a_tree_wider_than_the_walk_bound_is_counted_exactly_and_cut_short(
    engine: Engine,
) -> None:
    report = run(engine, "wide.spf-limits.test")
    facts = report.facts["spf"]
    assert facts.truncated
    assert facts.lookups == 30
    tree = facts.tree
    assert tree is not None and len(tree.children) == 30
    followed = [c for c in tree.children if c.status is spf.NodeStatus.OK]
    assert 0 < len(followed) < 30
    assert failed(report)["spf.too_many_lookups"].data["lookups"] == 30


# -- record rules --------------------------------------------------------------------


def test_a_good_record_passes(engine: Engine) -> None:
    report = run(engine, "good.spf-rules.test")
    assert failed(report) == {}
    assert passed(report) == {"spf.valid", "spf.missing"}
    assert report.facts["spf"].lookups == 2


def test_no_spf_record_is_missing(engine: Engine) -> None:
    finding = failed(run(engine, "none.spf-rules.test"))["spf.missing"]
    assert "v=spf1" in finding.fix
    assert not finding.data["nxdomain"]


def test_a_domain_that_does_not_exist_is_missing_and_says_so(engine: Engine) -> None:
    finding = failed(run(engine, "no-such-name.spf-rules.test"))["spf.missing"]
    assert finding.data["nxdomain"]
    assert "does not exist" in finding.title


def test_two_records_are_reported_with_a_merged_record(engine: Engine) -> None:
    finding = failed(run(engine, "multi.spf-rules.test"))["spf.multiple_records"]
    assert finding.fix.endswith("`v=spf1 ip4:192.0.2.1 include:leaf.spf-limits.test -all`.")


def test_a_syntax_error_names_the_term(engine: Engine) -> None:
    finding = failed(run(engine, "syntax.spf-rules.test"))["spf.syntax_error"]
    assert finding.data["term"] == "ip4:192.0.2.300"
    assert "`v=spf1 -all`" in finding.fix


def test_plus_all_is_critical_and_the_fix_is_the_record_with_softfail(engine: Engine) -> None:
    finding = failed(run(engine, "plusall.spf-rules.test"))["spf.permissive_all"]
    assert finding.severity is Severity.CRITICAL
    assert "`v=spf1 ip4:192.0.2.1 ~all`" in finding.fix


@pytest.mark.parametrize("name", ["qall", "noall", "redirweak"])
def test_neutral_or_missing_all_is_a_warning(engine: Engine, name: str) -> None:
    finding = failed(run(engine, f"{name}.spf-rules.test"))["spf.permissive_all"]
    assert finding.severity is Severity.WARNING


def test_a_redirect_to_a_strict_record_is_not_permissive(engine: Engine) -> None:
    report = run(engine, "redirgood.spf-rules.test")
    assert failed(report) == {}
    assert report.facts["spf"].lookups == 3


def test_ptr_is_a_warning(engine: Engine) -> None:
    assert "spf.ptr_used" in failed(run(engine, "ptr.spf-rules.test"))


def test_terms_after_all_are_reported(engine: Engine) -> None:
    finding = failed(run(engine, "afterall.spf-rules.test"))["spf.terms_after_all"]
    assert finding.data["terms"] == ["ip4:192.0.2.1"]
    assert "`v=spf1 ip4:192.0.2.1 -all`" in finding.fix


def test_an_include_of_a_name_without_spf_is_reported(engine: Engine) -> None:
    finding = failed(run(engine, "incnone.spf-rules.test"))["spf.include_target_missing"]
    assert finding.subject == "nothing.spf-rules.test"


def test_an_include_of_a_name_that_does_not_exist_is_reported(engine: Engine) -> None:
    report = run(engine, "incnx.spf-rules.test")
    assert "spf.include_target_missing" in failed(report)
    assert report.facts["spf"].void_lookups == 1


def test_a_redirect_to_a_name_without_spf_is_reported(engine: Engine) -> None:
    assert "spf.redirect_target_missing" in failed(run(engine, "redirnone.spf-rules.test"))


def test_errors_inside_an_include_are_reported_on_the_included_domain(engine: Engine) -> None:
    syntax = failed(run(engine, "incsyntax.spf-rules.test"))["spf.syntax_error"]
    assert syntax.subject == "syntax.spf-rules.test"
    multi = failed(run(engine, "incmulti.spf-rules.test"))["spf.multiple_records"]
    assert multi.subject == "multi.spf-rules.test"


def test_an_obsolete_type99_record_is_info(engine: Engine) -> None:
    finding = failed(run(engine, "type99.spf-rules.test"))["spf.type99_record"]
    assert finding.severity is Severity.INFO


def test_macro_terms_are_counted_and_evaluated_per_message(engine: Engine) -> None:
    report = run(engine, "macro.spf-rules.test")
    facts = report.facts["spf"]
    assert facts.lookups == 2
    assert len(facts.per_message_terms) == 2
    assert failed(report) == {}
    assert passed(report) == {"spf.valid", "spf.missing"}


# -- DNS failures (fault_dns) ----------------------------------------------------------


def _fault_engine(server: TinyDns) -> Engine:
    settings = Settings(dns_servers=parse_nameservers(server.nameserver), dns_timeout=0.3)
    return Engine(settings, checks={"spf": spf.check})


@pytest.fixture
def faulty(fault_dns: TinyDns) -> Iterator[TinyDns]:
    fault_dns.faults.clear()
    fault_dns.load_zone(
        "$ORIGIN fault.test.\n"
        "@ 60 SOA ns hostmaster 1 3600 600 86400 60\n"
        'apex 60 TXT "v=spf1 -all"\n'
        'inc 60 TXT "v=spf1 include:broken.fault.test -all"\n'
        'broken 60 TXT "v=spf1 -all"\n'
    )
    yield fault_dns
    fault_dns.faults.clear()
    fault_dns.set_records([])


@pytest.mark.parametrize("kind", ["servfail", "timeout", "refused"])
def test_a_failed_txt_lookup_is_unknown_never_missing(faulty: TinyDns, kind: str) -> None:
    faulty.fault("apex.fault.test", "TXT", kind)
    with _fault_engine(faulty) as engine:
        report = run(engine, "apex.fault.test")
    (finding,) = report.findings
    assert (finding.id, finding.status) == ("spf.lookup_failed", Status.UNKNOWN)
    assert finding.detail


def test_a_failed_include_is_unknown_and_the_rest_is_still_checked(faulty: TinyDns) -> None:
    faulty.fault("broken.fault.test", "TXT", "servfail")
    with _fault_engine(faulty) as engine:
        report = run(engine, "inc.fault.test")
    unknown = [f for f in report.findings if f.status is Status.UNKNOWN]
    assert [f.subject for f in unknown] == ["broken.fault.test"]
    assert "spf.missing" not in failed(report)
    assert "spf.valid" not in passed(report)


def test_hostile_answers_give_clear_findings_not_crashes(fault_dns: TinyDns) -> None:
    from dnslib import CNAME, QTYPE, RR, TXT

    many = "v=spf1 " + " ".join(f"ip4:198.51.100.{i % 250}" for i in range(300)) + " -all"
    long_label = "x" * 70
    fault_dns.faults.clear()
    fault_dns.set_records(
        [
            RR("garbage.hostile.test", QTYPE.TXT, rdata=TXT([b"v=spf1 a:\xff\xfe\x01 -all"])),
            RR(
                "huge.hostile.test",
                QTYPE.TXT,
                rdata=TXT([many[i : i + 255].encode() for i in range(0, len(many), 255)]),
            ),
            RR(
                "badname.hostile.test",
                QTYPE.TXT,
                rdata=TXT([f"v=spf1 include:{long_label}.hostile.test -all".encode()]),
            ),
            RR("cname.hostile.test", QTYPE.TXT, rdata=TXT([b"v=spf1 include:a.hostile.test -all"])),
            RR("a.hostile.test", QTYPE.CNAME, rdata=CNAME("b.hostile.test")),
            RR("b.hostile.test", QTYPE.CNAME, rdata=CNAME("a.hostile.test")),
        ]
    )
    try:
        with _fault_engine(fault_dns) as engine:
            garbage = failed(run(engine, "garbage.hostile.test"))
            huge = run(engine, "huge.hostile.test")
            badname = failed(run(engine, "badname.hostile.test"))
            cname = run(engine, "cname.hostile.test")
    finally:
        fault_dns.set_records([])
    assert "visible ASCII" in garbage["spf.syntax_error"].detail
    assert huge.facts["spf"].lookups == 0
    assert "spf.record_too_long" in failed(huge)
    assert "not a valid domain name" in badname["spf.include_target_missing"].detail
    unknown = [f for f in cname.findings if f.status is Status.UNKNOWN]
    assert [f.id for f in unknown] == ["spf.lookup_failed"]
    assert "CNAME loop" in unknown[0].detail


# -- check_host against Knot ---------------------------------------------------------------


def test_sender_not_authorized_from_a_real_evaluation(knot_resolver: Resolver) -> None:
    async def both() -> tuple[Finding, Finding]:
        session = knot_resolver.session()
        _, inside = await spf.check_sender(
            "192.0.2.5", "bounce@good.spf-rules.test", "mta.test", session
        )
        result, outside = await spf.check_sender(
            "203.0.113.9", "bounce@good.spf-rules.test", "mta.test", session
        )
        assert result.result is SpfResultCode.FAIL
        return inside, outside

    inside, outside = asyncio.run(both())
    assert (inside.id, inside.status) == ("spf.sender_not_authorized", Status.PASS)
    assert (outside.id, outside.status) == ("spf.sender_not_authorized", Status.FAIL)
    assert outside.severity is Severity.CRITICAL
    assert "ip4:203.0.113.9 -all" in outside.fix


def test_check_host_counts_lookups_across_the_tree(knot_resolver: Resolver) -> None:
    async def go() -> tuple[str, int, str, int]:
        at10 = await check_mail_from(
            "198.51.100.7", "x@at10.spf-limits.test", "h.test", knot_resolver.session()
        )
        at11 = await check_mail_from(
            "198.51.100.7", "x@at11.spf-limits.test", "h.test", knot_resolver.session()
        )
        return at10.result.value, at10.lookups, at11.result.value, at11.lookups

    assert asyncio.run(go()) == ("fail", 10, "permerror", 11)
