"""One frozen Settings object from SENDREADY_* variables (and a .env file), validated at start."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .dns.resolver import Nameserver, parse_nameservers

PREFIX = "SENDREADY_"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


#: Variables with the prefix that belong to the test harness, not to the program.
NOT_SETTINGS = frozenset({"SENDREADY_TEST_NET"})


class ConfigError(ValueError):
    """One or more settings are wrong; the message names each one and why."""


def _float(lo: float, hi: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g}")
        return value

    return parse


def _int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return value

    return parse


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _networks(text: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in _list(text))


def _aliases(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in _list(text):
        real, sep, test = item.partition("=")
        if not sep or not real.strip() or not test.strip():
            raise ValueError(f"{item!r}: expected real-suffix=test-suffix")
        pairs[real.strip().lower()] = test.strip().lower()
    return pairs


def _nameservers(text: str) -> tuple[Nameserver, ...]:
    return parse_nameservers(text)


def _url(text: str) -> str:
    if not text.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return text.rstrip("/")


def _https_url(text: str) -> str:
    if not text.startswith("https://"):
        raise ValueError("must be an https URL")
    return text.rstrip("/")


def _str(text: str) -> str:
    return text


def _path(text: str) -> str:
    if not Path(text).exists():
        raise ValueError(f"{text} does not exist")
    return text


def setting(
    default: Any, parse: Callable[[str], Any] = _str, doc: str = "", secret: bool = False
) -> Any:
    metadata = {"parse": parse, "doc": doc, "secret": secret}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Every setting of the service and the CLI. Documented in docs/operations.md."""

    dns_servers: tuple[Nameserver, ...] = setting(
        (), _nameservers, "Nameservers to ask, `ip[:port],...`; empty: those of /etc/resolv.conf."
    )
    dns_timeout: float = setting(2.0, _float(0.05, 30), "Seconds to wait for one DNS answer.")
    check_budget: float = setting(
        6.0, _float(0.1, 120), "Seconds one check may take; what has not answered is `unknown`."
    )
    dns_cache_size: int = setting(20_000, _int(0, 10_000_000), "DNS answers kept in memory.")
    smtp_timeout: float = setting(8.0, _float(0.1, 120), "Seconds for one SMTP conversation.")
    smtp_source_address: str = setting("", _str, "Source IP for outgoing SMTP probes.")
    smtp_max_connections: int = setting(
        32, _int(1, 1024), "SMTP connections open at once in this process."
    )
    smtp_slow_banner: float = setting(
        5.0, _float(0.1, 120), "Seconds after which a late SMTP banner is reported as tarpitting."
    )
    smtp_per_request: int = setting(
        8, _int(1, 256), "SMTP connections one check may hold open at once."
    )
    ca_file: str = setting("", _path, "CA bundle for TLS checks; empty: the system store.")
    allow_private_targets: tuple[IPNetwork, ...] = setting(
        (), _networks, "Tests only: CIDR ranges the target guard treats as public."
    )
    provider_aliases: dict[str, str] = setting(  # noqa: RUF009 - a default_factory field
        {}, _aliases, "Tests only: `real=test,...` suffixes for sending-service names."
    )
    dnssec_trust_anchors: tuple[str, ...] = setting(
        (". DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",),
        _list,
        "DNSSEC trust anchors as DS records in zone-file text, `name DS tag alg type digest,...`;"
        " default: the root KSK-2017.",
    )
    redis_url: str = setting("", _str, "Redis for the shared cache and rate limits.")
    database_url: str = setting("", _str, "History database; empty: SQLite in the instance folder.")
    history_days: int = setting(
        90, _int(1, 3650), "Days a finished scan is kept in the history; older ones are pruned."
    )
    scan_chunk: int = setting(
        20, _int(1, 500), "Domains of a scan one queued job checks (`sendready worker`)."
    )
    scan_concurrency: int = setting(
        16,
        _int(1, 256),
        "Domains a scan job checks at once in a `sendready worker` (a check mostly waits on "
        "DNS); each job carries the value of the process that queued the scan.",
    )
    webhook_url: str = setting(
        "",
        _url,
        "Where a scan POSTs its regressions (https; plain http only to a loopback test range).",
    )
    webhook_secret: str = setting(
        "", _str, "HMAC-SHA256 key of the webhook's X-SendReady-Signature.", secret=True
    )
    client_id: str = setting("", _str, "Entra ID application (client) id of the API.")
    client_secret: str = setting("", _str, "Client secret for MSAL.", secret=True)
    client_cert: str = setting("", _str, "PEM file with the private key and certificate for MSAL.")
    authority: str = setting(
        "https://login.microsoftonline.com/organizations", _https_url, "Entra ID authority."
    )
    tenant_allowlist: tuple[str, ...] = setting((), _list, "Tenant ids allowed to call the API.")
    public_base_url: str = setting("", _url, "The https origin the add-in is served from.")
    log_level: str = setting("INFO", _str, "Python log level.")
    office_js_url: str = setting(
        "https://appsforoffice.microsoft.com/lib/1/hosted/office.js",
        _str,
        "Where the task pane loads office.js; Microsoft's CDN (tests: the Office stub).",
    )

    # -- web service -----------------------------------------------------------------
    listen: str = setting(
        "127.0.0.1:8443", _str, "Address and port `sendready serve` listens on (`host:port`)."
    )
    instance_path: str = setting(
        "",
        _str,
        "Folder for the SQLite history and the development certificate; empty: ./instance.",
    )
    tls_cert: str = setting("", _str, "PEM certificate chain for HTTPS; empty: a generated one.")
    tls_key: str = setting("", _str, "PEM private key of tls_cert.", secret=True)
    workers: int = setting(0, _int(0, 256), "gunicorn worker processes; 0: sized for the machine.")
    threads: int = setting(16, _int(1, 256), "Threads per gunicorn worker (gthread).")
    rate_limit_user: str = setting(
        "60 per minute", _str, "Checks one user may ask for (Flask-Limiter syntax)."
    )
    rate_limit_tenant: str = setting(
        "1200 per minute", _str, "Checks one tenant may ask for (Flask-Limiter syntax)."
    )
    max_body_bytes: int = setting(65_536, _int(1_024, 10_485_760), "Largest API request body.")
    max_recipients: int = setting(100, _int(0, 10_000), "Recipients one check may name.")
    report_cache_ttl: float = setting(
        300.0, _float(0, 86_400), "Seconds a domain's latest report is served from cache."
    )
    accept_v1_tokens: bool = setting(
        False, _bool, "Accept v1 access tokens (aud = App ID URI, iss = token_v1_issuer)."
    )
    token_v1_issuer: str = setting(
        "https://sts.windows.net/{tenantid}/", _str, "Issuer template of v1 access tokens."
    )
    app_id_uri: str = setting("", _str, "App ID URI of the API; empty: api://<client_id>.")
    token_leeway: float = setting(60.0, _float(0, 600), "Clock skew allowed on exp and nbf, s.")
    jwks_min_refresh: float = setting(
        60.0, _float(0, 86_400), "Least seconds between JWKS fetches caused by unknown kids."
    )
    auth_ca_file: str = setting(
        "", _path, "CA bundle for Entra ID, Graph and the JWKS; empty: the system store."
    )
    graph_url: str = setting("https://graph.microsoft.com", _https_url, "Microsoft Graph base.")
    smtp_send_scope: str = setting(
        "https://outlook.office.com/SMTP.Send", _str, "Scope of on-behalf-of tokens for SMTP AUTH."
    )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Read SENDREADY_* from ``environ`` (default: os.environ) over an optional .env file."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update(_read_env_file(Path(env_file)))
        source = os.environ if environ is None else environ
        values.update({k: v for k, v in source.items() if k.startswith(PREFIX)})
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Settings:
        known = {PREFIX + f.name.upper(): f for f in fields(cls)}
        errors: list[str] = []
        kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            if not key.startswith(PREFIX) or key in NOT_SETTINGS:
                continue
            spec = known.get(key)
            if spec is None:
                errors.append(f"{key}: not a SendReady setting")
                continue
            try:
                kwargs[spec.name] = spec.metadata["parse"](raw)
            except ValueError as exc:
                errors.append(f"{key}={'***' if spec.metadata['secret'] else raw!r}: {exc}")
        if errors:
            raise ConfigError("bad configuration:\n  " + "\n  ".join(errors))
        return cls(**kwargs)

    def nameservers(self) -> tuple[Nameserver, ...]:
        if self.dns_servers:
            return self.dns_servers
        from .dns.resolver import system_nameservers

        return system_nameservers()


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values
