"""What one app instance owns: the engine, caches, auth clients and metrics (no globals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from ..auth.msal_client import TokenBroker
from ..auth.tokens import TokenValidator
from ..config import Settings
from ..engine import Engine
from ..model import CheckRequest, Report
from .cache import ReportCache
from .metrics import Metrics


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    cache: ReportCache
    metrics: Metrics
    session: requests.Session
    validator: TokenValidator | None  # None: development mode without sign-in
    broker: TokenBroker | None  # None: no client secret or certificate configured
    redis: Any | None

    def run(self, check: CheckRequest) -> Report:
        report = self.engine.check(check)
        self.metrics.observe_report(report)
        return report
