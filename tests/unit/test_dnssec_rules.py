"""DNSSEC and DANE pure parts (checks/dnssec.py): anchors, DS matching, RRSIG checks on rrsets
signed here with dns.dnssec.sign (good, expired, wrong key), and the TLSA rules."""

from __future__ import annotations

import datetime as dt

import dns.dnssec
import dns.name
import dns.rdata
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from dns.dnssectypes import Algorithm

from sendready.checks import dnssec
from sendready.dns import Lookup, Outcome
from sendready.model import Status

ZONE = "signed.test"
ORIGIN = dns.name.from_text(ZONE + ".")


def keypair() -> tuple[ec.EllipticCurvePrivateKey, dns.rdata.Rdata]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, dns.dnssec.make_dnskey(key.public_key(), Algorithm.ECDSAP256SHA256, flags=257)


def signed_mx(key: ec.EllipticCurvePrivateKey, dnskey: dns.rdata.Rdata, days: int):  # type: ignore[no-untyped-def]
    rrset = dns.rrset.from_text(ORIGIN, 300, "IN", "MX", "10 mx.signed.test.")
    now = dt.datetime.now(dt.UTC)
    sig = dns.dnssec.sign(
        rrset,
        key,
        ORIGIN,
        dnskey,
        inception=now - dt.timedelta(days=30),
        expiration=now + dt.timedelta(days=days),
    )
    return tuple(rrset), (sig,)


def test_anchors_parse_with_and_without_class() -> None:
    text = "example.test. 3600 IN DS 12345 13 2 " + "AB" * 32
    anchors = dnssec.parse_anchors((text, ". DS 20326 8 2 " + "CD" * 32))
    assert set(anchors) == {"example.test", ""}
    assert anchors["example.test"][0].key_tag == 12345
    with pytest.raises(ValueError):
        dnssec.parse_anchors(("example.test. DNSKEY 257 3 13 AAAA",))


def test_ds_matches_only_its_key() -> None:
    _, dnskey = keypair()
    _, other = keypair()
    ds = dns.dnssec.make_ds(ORIGIN, dnskey, "SHA256")
    assert dnssec.ds_matches(ZONE, dnskey, ds)
    assert not dnssec.ds_matches(ZONE, other, ds)
    assert not dnssec.ds_matches("other.test", dnskey, ds)


def test_rrsig_good_expired_and_wrong_key() -> None:
    key, dnskey = keypair()
    records, sigs = signed_mx(key, dnskey, 30)
    dnssec.check_rrsig(ZONE, records, 300, sigs, ZONE, (dnskey,))
    records, old = signed_mx(key, dnskey, -1)
    with pytest.raises(dnssec._Bogus, match="expired"):
        dnssec.check_rrsig(ZONE, records, 300, old, ZONE, (dnskey,))
    _, stranger = keypair()
    with pytest.raises(dnssec._Bogus, match="no RRSIG verifies"):
        dnssec.check_rrsig(ZONE, records, 300, sigs, ZONE, (stranger,))
    with pytest.raises(dnssec._Bogus, match="no RRSIG"):
        dnssec.check_rrsig(ZONE, records, 300, (), ZONE, (dnskey,))


def tlsa(*texts: str, outcome: Outcome = Outcome.ANSWER) -> Lookup:
    records = tuple(dns.rdata.from_text("IN", "TLSA", t) for t in texts)
    return Lookup("_25._tcp.mx.d.test", "TLSA", outcome, records)


DIGEST = "0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6"


def ids(findings: list) -> set[tuple[str, Status]]:  # type: ignore[type-arg]
    return {(f.id, f.status) for f in findings}


def test_tlsa_rules() -> None:
    secure = dnssec.State.SECURE
    pair = tlsa(f"3 1 1 {DIGEST}", f"2 1 1 {DIGEST}")
    assert ids(dnssec.tlsa_findings("mx.d.test", pair, secure, "")) == {("dane.tlsa", Status.PASS)}
    single = dnssec.tlsa_findings("mx.d.test", tlsa(f"3 1 1 {DIGEST}"), secure, "")
    assert ("dane.single_record", Status.FAIL) in ids(single)
    pkix = dnssec.tlsa_findings("mx.d.test", tlsa(f"1 1 1 {DIGEST}"), secure, "")
    assert ids(pkix) == {("dane.unusable_usage", Status.FAIL)}
    bad = dnssec.tlsa_findings("mx.d.test", tlsa(f"3 2 1 {DIGEST}", f"3 1 1 {DIGEST}"), secure, "")
    assert ("dane.syntax_error", Status.FAIL) in ids(bad)
    insecure = dnssec.tlsa_findings("mx.d.test", pair, dnssec.State.INSECURE, "")
    assert ids(insecure) == {("dane.insecure", Status.FAIL)}
    failed = tlsa(outcome=Outcome.SERVFAIL)
    assert ids(dnssec.tlsa_findings("mx.d.test", failed, secure, "")) == {
        ("dane.lookup_failed", Status.FAIL)
    }
    assert ids(dnssec.tlsa_findings("mx.d.test", failed, dnssec.State.INSECURE, "")) == {
        ("dane.tlsa", Status.UNKNOWN)
    }


def test_zone_states_map_to_findings() -> None:
    def one(state: dnssec.State) -> tuple[str, Status]:
        (f,) = dnssec.zone_findings(dnssec.ZoneResult(ZONE, state, "why"), "sender domain")
        return f.id, f.status

    assert one(dnssec.State.SECURE) == ("dnssec.secure", Status.PASS)
    assert one(dnssec.State.INSECURE) == ("dnssec.unsigned", Status.FAIL)
    assert one(dnssec.State.BOGUS) == ("dnssec.bogus", Status.FAIL)
    assert one(dnssec.State.UNKNOWN) == ("dnssec.secure", Status.UNKNOWN)


def test_servfail_is_bogus_only_with_a_dnssec_ede() -> None:
    plain = Lookup("d.test", "DNSKEY", Outcome.SERVFAIL)
    with pytest.raises(dnssec._Unknown):
        dnssec._outcome(plain, "DNSKEY d.test")
    bogus = Lookup("d.test", "DNSKEY", Outcome.SERVFAIL, ede=(6,))
    with pytest.raises(dnssec._Bogus, match="Extended DNS Error 6"):
        dnssec._outcome(bogus, "DNSKEY d.test")
    dnssec._outcome(Lookup("d.test", "DNSKEY", Outcome.NODATA), "DNSKEY d.test")  # not a failure
