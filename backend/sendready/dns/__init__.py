"""The DNS layer: an asynchronous resolver whose failures are values, never exceptions."""

from .cache import DnsCache
from .names import BadAddress, BadName, InvalidInput, normalize_domain, parse_address
from .resolver import (
    Deadline,
    DnsSession,
    Lookup,
    Nameserver,
    Outcome,
    QueryStats,
    Resolver,
    parse_nameservers,
    system_nameservers,
)

__all__ = [
    "BadAddress",
    "BadName",
    "Deadline",
    "DnsCache",
    "DnsSession",
    "InvalidInput",
    "Lookup",
    "Nameserver",
    "Outcome",
    "QueryStats",
    "Resolver",
    "normalize_domain",
    "parse_address",
    "parse_nameservers",
    "system_nameservers",
]
