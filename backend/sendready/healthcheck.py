"""`python -m sendready.healthcheck`: exit 0 when this container's service answers /healthz.

The container's HEALTHCHECK runs it, so it needs nothing the image does not have (no curl)
and it asks the address the service listens on (SENDREADY_LISTEN; a wildcard address is
asked on loopback). Plain HTTP, or HTTPS without verification when SENDREADY_TLS_CERT is
set: it proves the process answers, not who it is.
"""

from __future__ import annotations

import http.client
import os
import ssl
import sys

WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def target(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    return WILDCARDS.get(host, host), int(port)


def healthy(listen: str, tls: bool, timeout: float = 2.0) -> bool:
    host, port = target(listen)
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/healthz", headers={"Accept": "application/json"})
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def main() -> int:
    listen = os.environ.get("SENDREADY_LISTEN", "127.0.0.1:8000")
    ok = healthy(listen, tls=bool(os.environ.get("SENDREADY_TLS_CERT")))
    if not ok:
        print(f"unhealthy: no 200 from /healthz at {listen}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
