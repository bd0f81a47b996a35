"""A Microsoft-365-like submission server (aiosmtpd), run as a subprocess by the `submission`
fixture (TESTING.md §6.2): 25 and 587 with STARTTLS, 465 with implicit TLS, AUTH LOGIN,
PLAIN and XOAUTH2 after TLS. XOAUTH2 accepts one known token and answers every other one as
Exchange Online does when SMTP AUTH is off: a base64 JSON challenge, then 535 5.7.139.

Usage: python -m tests.servers.fake_smtp --host IP --chain chain.pem --key server.key
       --token-file token.txt [--name smtp.outlook.test]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import json
import signal
import ssl
import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

USER, PASSWORD = "alice@m365-good.test", "correct horse"
REJECT = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."
)


def check_plain_login(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
        USER,
        PASSWORD,
    )
    return AuthResult(success=ok, handled=False, auth_data=data)


class Handler:
    def __init__(self, token: str) -> None:
        self.token = token

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK discarded"

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        if len(args) > 1:
            blob: Any = args[1].encode()
            try:
                blob = base64.b64decode(blob, validate=True)
            except ValueError:
                return AuthResult(success=False, handled=False, message="501 5.5.2 bad base64")
        else:
            blob = await server.challenge_auth("", encode_to_b64=False)
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        raw = bytes(blob).decode("utf-8", errors="replace")
        parts = dict(p.split("=", 1) for p in raw.split("\x01") if "=" in p)
        token = parts.get("auth", "").removeprefix("Bearer ")
        if token and hmac.compare_digest(token, self.token):
            return AuthResult(success=True, handled=False, auth_data=parts.get("user"))
        detail = json.dumps(
            {"status": "401", "schemes": "bearer", "scope": "https://outlook.office.com/SMTP.Send"}
        )
        await server.challenge_auth(base64.b64encode(detail.encode()), encode_to_b64=False)
        return AuthResult(success=False, handled=False, message=REJECT)


class LongLineSMTP(SMTP):
    # Exchange Online takes a whole OAuth token (2-3 KB of base64) on one line.
    line_length_limit = 16384


class M365Controller(Controller):
    def factory(self) -> SMTP:
        return LongLineSMTP(self.handler, **self.SMTP_kwargs)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--chain", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--name", default="smtp.outlook.test")
    a = p.parse_args()
    with open(a.token_file, encoding="utf-8") as f:
        handler = Handler(f.read().strip())
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.chain, a.key)
    common: dict[str, Any] = dict(
        authenticator=check_plain_login,
        auth_require_tls=True,
        hostname=a.host,
        server_hostname=a.name,
    )
    controllers = [
        M365Controller(handler, port=25, tls_context=ctx, require_starttls=False, **common),
        M365Controller(handler, port=587, tls_context=ctx, require_starttls=True, **common),
        # aiosmtpd does not notice that an implicit-TLS socket is already TLS (aiosmtpd#281).
        M365Controller(handler, port=465, ssl_context=ctx, **{**common, "auth_require_tls": False}),
    ]
    for c in controllers:
        c.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    for c in controllers:
        c.stop()
    sys.exit(0)


if __name__ == "__main__":
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    main()
