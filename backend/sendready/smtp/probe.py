"""SMTP probes: an MX host on 25 or a submission endpoint on 587 (STARTTLS) / 465 (implicit TLS).

A probe connects by IP to an address the DNS layer resolved, names the host for SNI and the
certificate check, and records what it saw: connect and banner times, the banner, EHLO
capabilities before and after TLS, the TLS version and cipher, the certificate (trust, name,
expiry, key size) and the AUTH mechanisms. With XOAUTH2 credentials it authenticates and
quits; it never sends mail. Every way a conversation can end is a distinct
:class:`Outcome`, and every probe ends by its deadline: what did not finish is ``DEADLINE``
with the stage it was in, never a guess. Findings are made from these facts by
``checks/smtp.py``.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import ipaddress
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from ..dns.names import is_ip
from .client import (
    ConnectionClosed,
    ProtocolError,
    Reply,
    SmtpClient,
    auth_mechanisms,
    parse_ehlo,
)
from .guard import ConnectionLimiter, IPNetwork, why_not_public


class Outcome(enum.StrEnum):
    """How a probe ended. ``OK`` means the conversation completed (problems may remain)."""

    OK = "ok"
    TARGET_REFUSED = "target_refused"  # the guard does not allow this address
    REFUSED = "refused"  # TCP RST: nothing listens
    UNREACHABLE = "unreachable"  # no route, network down
    CONNECT_TIMEOUT = "connect_timeout"  # no answer to SYN: a port blocked on the path
    GREETING_REJECTED = "greeting_rejected"  # 4xx / 5xx banner
    PROTOCOL_ERROR = "protocol_error"  # garbage, an endless line, a broken reply
    CLOSED = "closed"  # the server hung up mid-conversation (not during TLS)
    TLS_RESET = "tls_reset"  # reset or closed during the TLS handshake
    TLS_OUTDATED = "tls_outdated"  # no TLS 1.2 or newer on offer
    TLS_FAILED = "tls_failed"  # STARTTLS refused (454/5xx) or another handshake failure
    DEADLINE = "deadline"  # the probe ran out of time in ``stage``


class Mode(enum.StrEnum):
    STARTTLS = "starttls"
    IMPLICIT = "implicit"


@dataclass(frozen=True, slots=True)
class Target:
    """One address of one host to probe."""

    host: str  # the name the certificate must carry (the MX or submission host name)
    address: str
    port: int
    mode: Mode = Mode.STARTTLS
    role: str = "mx"  # "mx" (port 25, opportunistic) or "submission"


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    timeout: float = 8.0  # one probe, from connect to QUIT
    #: The TCP connect alone. Shorter than the probe, so that probes queued behind the
    #: connection cap still get their turn when every host drops packets.
    connect_timeout: float = 5.0
    source_address: str = ""
    ca_file: str = ""  # empty: the system store
    allowed: tuple[IPNetwork, ...] = ()
    helo_name: str = "sendready.invalid"
    slow_banner: float = 5.0  # a banner later than this is reported as tarpitting


@dataclass(frozen=True, slots=True)
class XOAuth2:
    """What the authenticated submission test needs. The token never leaves this object."""

    address: str
    token: str = field(repr=False)

    def initial_response(self) -> str:
        raw = f"user={self.address}\x01auth=Bearer {self.token}\x01\x01"
        return base64.b64encode(raw.encode()).decode("ascii")


@dataclass(frozen=True, slots=True)
class CertFacts:
    subject: str
    issuer: str
    names: tuple[str, ...]  # DNS and IP subject alternative names (or the CN without SANs)
    not_before: str
    not_after: str
    days_left: int
    key_type: str
    key_bits: int
    self_signed: bool
    chain_length: int | None  # certificates the server presented, when known
    trusted: bool
    verify_error: str  # OpenSSL's reason when the chain did not verify
    name_matches: bool
    expired: bool
    not_yet_valid: bool


@dataclass(frozen=True, slots=True)
class TlsFacts:
    version: str
    cipher: str
    cipher_bits: int
    cert: CertFacts | None


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    mechanism: str
    success: bool
    code: int | None
    reply: str  # the server's final reply (servers do not echo tokens)
    offered: bool = True


@dataclass(frozen=True, slots=True)
class ProbeResult:
    target: Target
    outcome: Outcome
    stage: str = ""  # where the conversation ended: connect, banner, ehlo, starttls, tls, ...
    reason: str = ""
    connect_ms: float | None = None
    banner_ms: float | None = None
    banner: str = ""  # "220 mx.example.com ESMTP"
    banner_code: int | None = None
    banner_name: str = ""
    ehlo: tuple[str, ...] = ()  # capabilities before TLS (empty on implicit TLS)
    ehlo_tls: tuple[str, ...] = ()  # capabilities after TLS
    starttls_offered: bool | None = None
    starttls_reoffered: bool = False  # offered again after TLS (RFC 3207 §4.2 forbids it)
    starttls_reply: str = ""
    auth_before_tls: tuple[str, ...] = ()
    auth_after_tls: tuple[str, ...] = ()
    tls: TlsFacts | None = None
    auth: AuthOutcome | None = None
    duration_ms: float = 0.0
    transcript: tuple[str, ...] = ()

    @property
    def completed(self) -> bool:
        return self.outcome is Outcome.OK


# -- TLS contexts ------------------------------------------------------------------


def verifying_context(ca_file: str = "") -> ssl.SSLContext:
    """Chain and expiry checked by OpenSSL; the name is checked by :func:`name_matches`
    so a wrong name and an untrusted chain are told apart."""
    ctx = ssl.create_default_context(cafile=ca_file or None)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def inspecting_context() -> ssl.SSLContext:
    """For the second look at a server whose chain failed: gather facts, trust nothing."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


_OUTDATED_REASONS = {
    "UNSUPPORTED_PROTOCOL",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "WRONG_SSL_VERSION",
    "NO_PROTOCOLS_AVAILABLE",
    "VERSION_TOO_LOW",
    "WRONG_VERSION_NUMBER",
}


# -- certificates ------------------------------------------------------------------


def name_matches(names: Iterable[str], host: str) -> bool:
    """RFC 6125 §6.4: exact match, or a wildcard as the whole left-most label only."""
    host = host.lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for name in names:
        name = name.lower().rstrip(".")
        if ip is not None:
            try:
                if ipaddress.ip_address(name) == ip:
                    return True
            except ValueError:
                pass
            continue
        if name == host:
            return True
        if name.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == name[2:] and "." in rest:
                return True
    return False


def _key(cert: x509.Certificate) -> tuple[str, int]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, 0


def cert_facts(
    der: bytes,
    host: str,
    *,
    trusted: bool,
    verify_error: str = "",
    chain_length: int | None = None,
    now: datetime | None = None,
) -> CertFacts:
    cert = x509.load_der_x509_certificate(der)
    now = now or datetime.now(UTC)
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DNSName)
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        # No SANs: only then is the CN a name at all (RFC 6125 §6.4.4).
        names += [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    key_type, bits = _key(cert)
    after, before = cert.not_valid_after_utc, cert.not_valid_before_utc
    return CertFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        names=tuple(names),
        not_before=before.isoformat(),
        not_after=after.isoformat(),
        days_left=(after - now).days,
        key_type=key_type,
        key_bits=bits,
        self_signed=cert.issuer == cert.subject,
        chain_length=chain_length,
        trusted=trusted,
        verify_error=verify_error,
        name_matches=name_matches(names, host),
        expired=now > after,
        not_yet_valid=now < before,
    )


def _chain_length(obj: ssl.SSLObject) -> int | None:
    # Public from Python 3.13; the private method exists on 3.10-3.12.
    inner = getattr(obj, "_sslobj", None)
    getter = getattr(inner, "get_unverified_chain", None)
    if getter is None:
        return None
    try:
        chain = getter()
    except (ssl.SSLError, ValueError):
        return None
    return len(chain) if chain is not None else None


# -- the probe -------------------------------------------------------------------------


@dataclass
class _Run:
    """Mutable state of one conversation; frozen into a ProbeResult at the end."""

    target: Target
    stage: str = "connect"
    started: float = field(default_factory=time.monotonic)
    values: dict[str, object] = field(default_factory=dict)
    client: SmtpClient | None = None

    def result(self, outcome: Outcome, reason: str = "") -> ProbeResult:
        transcript = tuple(self.client.transcript) if self.client else ()
        return ProbeResult(
            target=self.target,
            outcome=outcome,
            stage=self.stage,
            reason=reason,
            duration_ms=round((time.monotonic() - self.started) * 1000, 1),
            transcript=transcript,
            **self.values,  # type: ignore[arg-type]
        )


async def probe(
    target: Target,
    config: ProbeConfig,
    *,
    deadline: float | None = None,
    limiter: ConnectionLimiter | None = None,
    credentials: XOAuth2 | None = None,
) -> ProbeResult:
    """Probe one address; never raises for anything the network or the server does.

    ``deadline`` is a monotonic time; the probe also stops after ``config.timeout``.
    """
    run = _Run(target)
    refusal = why_not_public(target.address, config.allowed)
    if refusal is not None:
        return run.result(Outcome.TARGET_REFUSED, refusal)
    end = time.monotonic() + config.timeout
    if deadline is not None:
        end = min(end, deadline)
    if end - time.monotonic() <= 0:
        run.stage = "queue"
        return run.result(Outcome.DEADLINE, "no time left in the request's budget")
    try:
        async with asyncio.timeout_at(_loop_time(end)):
            if limiter is not None:
                run.stage = "queue"
                async with limiter:
                    return await _probe_twice(run, config, credentials, end)
            return await _probe_twice(run, config, credentials, end)
    except TimeoutError:
        if run.client is not None:
            run.client.close()
        budget = config.timeout if deadline is None else max(0.0, end - run.started)
        if run.stage == "connect":
            waited = min(budget, config.connect_timeout)
            return run.result(
                Outcome.CONNECT_TIMEOUT,
                f"no answer to the TCP connection within {waited:.1f} s",
            )
        return run.result(
            Outcome.DEADLINE, f"stopped after {budget:.1f} s while waiting for the {run.stage}"
        )


def _loop_time(monotonic_end: float) -> float:
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_end - time.monotonic())


class _VerifyFailed(Exception):
    def __init__(self, error: ssl.SSLCertVerificationError) -> None:
        super().__init__(str(error))
        self.error = error


async def _probe_twice(
    run: _Run, config: ProbeConfig, credentials: XOAuth2 | None, end: float
) -> ProbeResult:
    try:
        return await _converse(run, config, verifying_context(config.ca_file), credentials)
    except _VerifyFailed as failed:
        error = failed.error
    # The chain did not verify, and the handshake died with it. A failed verification is
    # not "no TLS" (DOMAIN.md §1.11): look again without trusting, to report the facts.
    first = dict(run.values)
    run.values.clear()
    # No credentials on this pass: a token is never sent over TLS that did not verify.
    again = await _converse(run, config, inspecting_context(), None, verify=error)
    if again.tls is None and again.outcome is Outcome.OK:
        return replace(again, reason=f"the certificate did not verify: {error.verify_message}")
    if again.tls is None:
        reason = f"the certificate did not verify ({error.verify_message}); then {again.reason}"
        return replace(again, reason=reason)
    return replace(
        again,
        connect_ms=first.get("connect_ms", again.connect_ms),  # type: ignore[arg-type]
        banner_ms=first.get("banner_ms", again.banner_ms),  # type: ignore[arg-type]
    )


async def _converse(
    run: _Run,
    config: ProbeConfig,
    context: ssl.SSLContext,
    credentials: XOAuth2 | None,
    verify: ssl.SSLCertVerificationError | None = None,
) -> ProbeResult:
    target, values = run.target, run.values
    run.stage = "connect"
    t0 = time.monotonic()
    try:
        async with asyncio.timeout(config.connect_timeout):
            client = await SmtpClient.connect(target.address, target.port, config.source_address)
    except TimeoutError:  # an OSError too, but it means the connect went unanswered
        raise
    except ConnectionRefusedError:
        return run.result(Outcome.REFUSED, f"connection refused on port {target.port}")
    except OSError as exc:
        return run.result(Outcome.UNREACHABLE, f"cannot connect: {exc.strerror or exc}")
    run.client = client
    values["connect_ms"] = round((time.monotonic() - t0) * 1000, 1)
    try:
        return await _talk(run, client, config, context, credentials, verify)
    except ProtocolError as exc:
        return run.result(Outcome.PROTOCOL_ERROR, str(exc))
    except ConnectionClosed as exc:
        outcome = Outcome.TLS_RESET if run.stage == "tls" else Outcome.CLOSED
        return run.result(outcome, str(exc))
    finally:
        client.close()


async def _talk(
    run: _Run,
    client: SmtpClient,
    config: ProbeConfig,
    context: ssl.SSLContext,
    credentials: XOAuth2 | None,
    verify: ssl.SSLCertVerificationError | None,
) -> ProbeResult:
    target, values = run.target, run.values
    if target.mode is Mode.IMPLICIT:
        failed = await _handshake(run, client, context, verify)
        if failed is not None:
            return failed
    run.stage = "banner"
    t0 = time.monotonic()
    banner = await client.read_reply("banner")
    values["banner_ms"] = round((time.monotonic() - t0) * 1000, 1)
    values["banner"] = str(banner)
    values["banner_code"] = banner.code
    values["banner_name"] = banner.lines[0].split(" ", 1)[0].lower() if banner.lines else ""
    if banner.code != 220:
        return run.result(Outcome.GREETING_REJECTED, f"the server greeted with {banner}")
    run.stage = "ehlo"
    ehlo = await client.command(f"EHLO {config.helo_name}", "ehlo")
    if ehlo.code != 250:
        return run.result(Outcome.PROTOCOL_ERROR, f"EHLO was refused: {ehlo}")
    caps = parse_ehlo(ehlo)
    if target.mode is Mode.STARTTLS:
        values["ehlo"] = tuple(f"{k} {v}".strip() for k, v in caps.items())
        values["auth_before_tls"] = auth_mechanisms(caps)
        values["starttls_offered"] = "STARTTLS" in caps
        if "STARTTLS" not in caps:
            await client.quit()
            return run.result(Outcome.OK)
        run.stage = "starttls"
        reply = await client.command("STARTTLS", "starttls")
        values["starttls_reply"] = str(reply)
        if reply.code != 220:
            return run.result(Outcome.TLS_FAILED, f"STARTTLS was answered with {reply}")
        failed = await _handshake(run, client, context, verify)
        if failed is not None:
            return failed
        # RFC 3207 §4.2: forget what was learned before TLS, and ask again.
        run.stage = "ehlo after TLS"
        ehlo = await client.command(f"EHLO {config.helo_name}", "ehlo after TLS")
        if ehlo.code != 250:
            return run.result(Outcome.PROTOCOL_ERROR, f"EHLO after TLS was refused: {ehlo}")
        caps = parse_ehlo(ehlo)
        values["starttls_reoffered"] = "STARTTLS" in caps
    values["ehlo_tls"] = tuple(f"{k} {v}".strip() for k, v in caps.items())
    values["auth_after_tls"] = auth_mechanisms(caps)
    tls = values.get("tls")
    cert = tls.cert if isinstance(tls, TlsFacts) else None
    # The name is checked here, not by OpenSSL: a token goes only to a verified server.
    verified = cert is not None and cert.trusted and cert.name_matches and not cert.expired
    if credentials is not None and target.role == "submission" and verified:
        run.stage = "auth"
        values["auth"] = await _xoauth2(client, credentials, auth_mechanisms(caps))
    run.stage = "quit"
    await client.quit()
    return run.result(Outcome.OK)


async def _handshake(
    run: _Run,
    client: SmtpClient,
    context: ssl.SSLContext,
    verify: ssl.SSLCertVerificationError | None,
) -> ProbeResult | None:
    """Start TLS and record what was negotiated; a ProbeResult if the handshake failed."""
    target, values = run.target, run.values
    run.stage = "tls"
    sni = None if is_ip(target.host) else target.host
    try:
        await client.start_tls(context, sni)
    except ssl.SSLCertVerificationError as exc:
        raise _VerifyFailed(exc) from None
    except ssl.SSLError as exc:
        if exc.reason in _OUTDATED_REASONS:
            return run.result(Outcome.TLS_OUTDATED, f"no TLS 1.2 or newer on offer ({exc.reason})")
        if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return run.result(Outcome.TLS_RESET, "the server closed the connection during TLS")
        return run.result(Outcome.TLS_FAILED, f"the TLS handshake failed: {exc.reason or exc}")
    except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
        what = "reset" if isinstance(exc, ConnectionResetError) else "closed"
        return run.result(Outcome.TLS_RESET, f"the server {what} the connection during TLS")
    obj = client.ssl_object
    if obj is None:
        return run.result(Outcome.TLS_FAILED, "TLS started but no session is visible")
    cipher = obj.cipher() or ("", "", 0)
    der = obj.getpeercert(binary_form=True)
    cert = None
    if der:
        error = verify.verify_message if verify is not None else ""
        if verify is not None and verify.verify_code:
            error = f"{error} (OpenSSL error {verify.verify_code})"
        cert = cert_facts(
            der,
            target.host,
            trusted=verify is None or verify.verify_code == 10,  # 10: only expired
            verify_error=error,
            chain_length=_chain_length(obj),
        )
    values["tls"] = TlsFacts(obj.version() or "", cipher[0], cipher[2] or 0, cert)
    return None


async def _xoauth2(
    client: SmtpClient, credentials: XOAuth2, offered: tuple[str, ...]
) -> AuthOutcome:
    if "XOAUTH2" not in offered:
        return AuthOutcome("XOAUTH2", False, None, "", offered=False)
    # Initial response on its own line, as Microsoft documents it: tokens are often longer
    # than a command line may be.
    reply = await client.command("AUTH XOAUTH2", "auth")
    if reply.code == 334:
        reply = await client.command(credentials.initial_response(), "auth", redact=True)
        if reply.code == 334:
            # Failure details come as a base64 JSON challenge; an empty line ends it.
            reply = await client.command("", "auth")
    return AuthOutcome("XOAUTH2", reply.code == 235, reply.code, _redact(str(reply), credentials))


def _redact(text: str, credentials: XOAuth2) -> str:
    for secret in (credentials.token, credentials.initial_response()):
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def reply_of(text: str) -> Reply | None:
    """The code of a recorded reply string such as ``"421 4.3.2 busy"``."""
    head = text.split(" ", 1)
    if not head or not head[0].isdigit():
        return None
    return Reply(int(head[0]), (head[1] if len(head) > 1 else "",))
