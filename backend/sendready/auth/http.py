"""The HTTPS session every outgoing auth call uses: no proxy or CA variables from the
environment, only the configured CA bundle (TESTING.md §7), and bounded timeouts."""

from __future__ import annotations

from typing import Any

import requests

from ..config import Settings

TIMEOUT = (3.05, 10.0)


class BoundedSession(requests.Session):
    """A session whose requests always carry a timeout, so no call can hang a worker."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(*args, **kwargs)


def make_session(settings: Settings) -> requests.Session:
    session = BoundedSession()
    # REQUESTS_CA_BUNDLE and friends would otherwise override `verify`.
    session.trust_env = False
    session.verify = settings.auth_ca_file or True
    return session
