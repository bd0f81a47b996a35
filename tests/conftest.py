"""Shared test setup: the loopback guard, the address plan and the test PKI.

Servers are started by session fixtures in ``tests/fixtures/`` (one module per server);
every address comes from ``SENDREADY_TEST_NET`` (default ``127.0.10``).
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from sendready.config import Settings
from sendready.dns import parse_nameservers

if TYPE_CHECKING:
    from tests.fixtures.knot import KnotServer

pytest_plugins = [
    "tests.fixtures.knot",
    "tests.fixtures.policy_host",
    "tests.fixtures.tiny_dns",
    "tests.fixtures.hostile_smtp",
    "tests.fixtures.issuer",
    "tests.fixtures.redis",
    "tests.fixtures.backend",
    "tests.fixtures.postfix",
    "tests.fixtures.submission",
    "tests.fixtures.postgres",
]

ROOT = Path(__file__).resolve().parent.parent
NET = os.environ.get("SENDREADY_TEST_NET", "127.0.10")


def addr(last: int) -> str:
    """The address of one role of the address plan (TESTING.md §2)."""
    return f"{NET}.{last}"


def stop_process(
    proc: subprocess.Popen[Any], timeout: float = 10.0, signal_number: int = signal.SIGTERM
) -> None:
    """End a server this test started: ``signal_number`` (SIGTERM, most servers' graceful
    shutdown), then SIGKILL after ``timeout`` seconds."""
    proc.send_signal(signal_number)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def clean_environment(**settings: str) -> dict[str, str]:
    """The environment for a process a test starts: this one's without any SENDREADY_
    variable (the developer's own must not leak in), plus ``settings`` by their Settings
    field names (``instance_path="..."`` is SENDREADY_INSTANCE_PATH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDREADY_")}
    env.update({f"SENDREADY_{name.upper()}": value for name, value in settings.items()})
    return env


def run_sendready(
    *args: str, env: dict[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``sendready ARGS`` as a real process of this checkout, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "sendready.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until(check: Callable[[], Any], timeout: float = 15.0, what: str = "server") -> None:
    """Poll ``check`` until it returns a true value, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except ProcessLookupError:  # the server died: no point in waiting
            raise
        except Exception as exc:  # not ready yet
            last = exc
        time.sleep(0.01)
    raise RuntimeError(f"{what} not ready after {timeout}s (last error: {last!r})")


def knot_settings(server: KnotServer, **values: Any) -> Settings:
    """Settings that resolve with the test Knot server and may reach the test network (the
    fixture zones point there); ``values`` add to or override them."""
    base: dict[str, Any] = {
        "dns_servers": parse_nameservers(server.nameserver),
        "allow_private_targets": (ipaddress.ip_network(f"{NET}.0/24"),),
    }
    return Settings(**{**base, **values})


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A requests session for a test's HTTP calls to the servers it started; it ignores
    the developer's proxy variables (``trust_env`` off), which must not see loopback."""
    with requests.Session() as session:
        session.trust_env = False
        yield session


# -- loopback guard ----------------------------------------------------------------


def _is_loopback(host: object) -> bool:
    if host in ("localhost", "localhost.", None, ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _guard_address(address: object) -> None:
    if isinstance(address, tuple) and address and not _is_loopback(address[0]):
        raise OSError(f"loopback guard: tests may not contact {address[0]!r}")


@pytest.fixture(scope="session", autouse=True)
def loopback_guard() -> Iterator[None]:
    """Make any attempt to reach a non-loopback address from the test process fail."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise socket.gaierror(f"loopback guard: tests may not resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _guard_address(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _guard_address(address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6) and args:
            _guard_address(args[-1])
        return real_sendto(self, data, *args)  # type: ignore[call-overload, no-any-return]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        mp.setattr(socket.socket, "sendto", sendto)
        yield


# -- test PKI ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A root CA, an intermediate, and a leaf for every test host (TESTING.md §6)."""

    dir: Path
    ca: str  # the root CA file clients trust
    key: str  # the leaf's private key
    chain: str  # leaf + intermediate, what servers present
    authority: Any  # the trustme root, to issue more certificates in tests
    intermediate: Any


LEAF_NAMES = (
    "m365-good-test.mail.protection.outlook.test",
    "smtp.outlook.test",
    "mta-sts.m365-good.test",
    "mx.m365-good.test",
    "localhost",
)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    import trustme

    d = tmp_path_factory.mktemp("pki")
    root = trustme.CA()
    inter = root.create_child_ca()
    hosts = [*LEAF_NAMES, *(addr(n) for n in (25, 87, 44, 43, 80))]
    leaf = inter.issue_cert(*hosts)
    root.cert_pem.write_to_path(str(d / "ca.pem"))
    leaf.private_key_pem.write_to_path(str(d / "server.key"))
    (d / "chain.pem").write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return Pki(d, str(d / "ca.pem"), str(d / "server.key"), str(d / "chain.pem"), root, inter)


# -- fixture zones changed by a test -----------------------------------------------

ZONE_FILES = ROOT / "tests" / "zones"
#: A new serial for every publish of the session (Knot reloads a zone file whose serial is
#: not the one it serves); away from the zone files' own 2026120301 and from the literal
#: serials some tests still publish with.
_serials = itertools.count(2026120400)


class Zones:
    """Publishes fixture zones with lines dropped and added; restores them afterwards."""

    def __init__(self, server: KnotServer) -> None:
        self.server = server
        self.touched: set[str] = set()

    def publish(self, zone: str, *, drop: Iterable[str] = (), add: Iterable[str] = ()) -> None:
        text = (ZONE_FILES / f"{zone}.zone").read_text()
        prefixes = tuple(drop)
        lines = [line for line in text.splitlines() if not (prefixes and line.startswith(prefixes))]
        lines += list(add)
        serial = f" {next(_serials)} "
        self.server.publish(zone, "\n".join(lines).replace(" 2026120301 ", serial) + "\n")
        self.touched.add(zone)

    def restore(self) -> None:
        for zone in sorted(self.touched):
            self.publish(zone)


@pytest.fixture
def zones(dns_server: KnotServer) -> Iterator[Zones]:
    """Fixture zones a test changes, each restored as its file has it after the test."""
    published = Zones(dns_server)
    yield published
    published.restore()
