"""A small authoritative DNS server on dnslib for latency and fault injection.

It answers from records held in memory (zone text or dnslib RRs), sets AA, tells NXDOMAIN
from NODATA, follows CNAMEs it holds, and can delay every answer or, per name, answer
SERVFAIL, REFUSED, drop the query (timeout), set TC on UDP (forcing TCP) or omit AA.

In-process:  ``TinyDns("127.0.10.54", 53).start()``; change ``records``/``faults`` freely.
Standalone:  ``python -m tests.servers.tiny_dns --address 127.0.10.54 --zone a.zone
--delay-ms 20`` (bench/ uses this).
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RCODE, RR, SOA, DNSLabel, DNSRecord
from dnslib.server import BaseResolver, DNSError, DNSServer

FAULTS = ("servfail", "refused", "timeout", "truncate", "noaa")


class _Quiet:
    def __getattr__(self, _name: str) -> Any:
        return lambda *args, **kwargs: None


class TinyDns(BaseResolver):  # type: ignore[misc]
    def __init__(self, address: str, port: int = 53, delay_ms: float = 0.0) -> None:
        self.address = address
        self.port = port
        self.delay_ms = delay_ms
        self.records: list[RR] = []
        #: (name, qtype or "*") -> fault, name without trailing dot, lower case
        self.faults: dict[tuple[str, str], str] = {}
        self.queries = 0
        self._lock = threading.Lock()
        self._servers: list[DNSServer] = []

    # -- data ------------------------------------------------------------------------

    def load_zone(self, text: str, origin: str = ".") -> None:
        """Replace the records with those of a zone file text."""
        self.records = list(RR.fromZone(text, origin=origin))

    def set_records(self, records: Iterable[RR]) -> None:
        self.records = list(records)

    def fault(self, name: str, qtype: str, kind: str) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULTS}")
        self.faults[(name.rstrip(".").lower(), qtype.upper())] = kind

    # -- serving ---------------------------------------------------------------------

    @property
    def nameserver(self) -> str:
        return f"{self.address}:{self.port}"

    def start(self) -> None:
        for tcp in (False, True):
            server = DNSServer(self, address=self.address, port=self.port, tcp=tcp, logger=_Quiet())
            server.start_thread()
            self._servers.append(server)

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers.clear()

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        with self._lock:
            self.queries += 1
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        q = request.q
        qname = str(q.qname).rstrip(".").lower()
        qtype = QTYPE[q.qtype]
        fault = self.faults.get((qname, qtype)) or self.faults.get((qname, "*"))
        reply = request.reply()
        reply.header.aa = 1
        if fault == "timeout":
            raise DNSError("dropped on purpose")
        if fault == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if fault == "refused":
            reply.header.rcode = RCODE.REFUSED
            reply.header.aa = 0
            return reply
        if fault == "truncate" and handler.protocol == "udp":
            reply.header.tc = 1
            return reply
        if fault == "noaa":
            reply.header.aa = 0
        self._answer(reply, qname, q.qtype)
        return reply

    def _answer(self, reply: DNSRecord, qname: str, qtype: int) -> None:
        name = qname
        for _hop in range(16):
            here = [rr for rr in self.records if _name(rr.rname) == name]
            matches = [rr for rr in here if rr.rtype == qtype or qtype == QTYPE.ANY]
            if matches:
                for rr in matches:
                    reply.add_answer(rr)
                return
            aliases = [rr for rr in here if rr.rtype == QTYPE.CNAME]
            if aliases and qtype != QTYPE.CNAME:
                reply.add_answer(aliases[0])
                name = _name(aliases[0].rdata.label)
                continue
            break
        if not self._exists(name):
            reply.header.rcode = RCODE.NXDOMAIN
        reply.add_auth(self._soa(name))

    def _exists(self, name: str) -> bool:
        suffix = "." + name
        return any(
            _name(rr.rname) == name or _name(rr.rname).endswith(suffix) for rr in self.records
        )

    def _soa(self, name: str) -> RR:
        soas = [rr for rr in self.records if rr.rtype == QTYPE.SOA]
        for rr in sorted(soas, key=lambda r: -len(_name(r.rname))):
            apex = _name(rr.rname)
            if name == apex or name.endswith("." + apex):
                return rr
        if not name:  # the root: this server holds no root zone, but must still answer
            return RR(
                ".",
                QTYPE.SOA,
                ttl=60,
                rdata=SOA("ns.invalid.", "hostmaster.invalid.", (1, 3600, 600, 86400, 60)),
            )
        zone = ".".join(name.split(".")[-2:])
        return RR(
            zone,
            QTYPE.SOA,
            ttl=60,
            rdata=SOA(f"ns.{zone}", f"hostmaster.{zone}", (1, 3600, 600, 86400, 60)),
        )


def _name(label: DNSLabel | str) -> str:
    return str(label).rstrip(".").lower()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.10.54")
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--zone", action="append", default=[], help="zone file (repeatable)")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    server = TinyDns(args.address, args.port, args.delay_ms)
    records: list[RR] = []
    for path in args.zone:
        records += RR.fromZone(Path(path).read_text())
    server.set_records(records)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"tiny_dns ready on {server.nameserver}", flush=True)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
