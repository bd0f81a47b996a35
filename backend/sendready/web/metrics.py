"""Prometheus metrics of one app: request latency, check outcomes, cache hits, DNS and SMTP
failures. Each app owns its registry, so two apps in one process (tests) never mix counts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..model import Report, Status

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _Derived(Collector):
    """Values computed at scrape time: the cache hit ratio and the resolver's failure count."""

    def __init__(self, metrics: Metrics, dns_failures: Callable[[], int]) -> None:
        self._metrics = metrics
        self._dns_failures = dns_failures

    def collect(self) -> Iterable[Metric]:
        hits, misses = self._metrics.cache_counts()
        ratio = GaugeMetricFamily(
            "sendready_report_cache_hit_ratio", "Share of domain reports served from cache."
        )
        ratio.add_metric([], hits / (hits + misses) if hits + misses else 0.0)
        yield ratio
        failures = CounterMetricFamily(
            "sendready_dns_failures", "DNS questions that timed out, were refused or failed."
        )
        failures.add_metric([], float(self._dns_failures()))
        yield failures


class Metrics:
    def __init__(self, dns_failures: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "sendready_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "endpoint", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.findings = Counter(
            "sendready_findings",
            "Findings reported, by finding id and status.",
            ["id", "status"],
            registry=self.registry,
        )
        self.cache = Counter(
            "sendready_report_cache_lookups",
            "Domain report lookups, by result (hit or miss).",
            ["result"],
            registry=self.registry,
        )
        self.smtp_failures = Counter(
            "sendready_smtp_failures",
            "SMTP findings that failed or could not be completed, by finding id.",
            ["id"],
            registry=self.registry,
        )
        self._hits = self._misses = 0
        self._lock = threading.Lock()
        self.registry.register(_Derived(self, dns_failures))

    def cache_lookup(self, hit: bool) -> None:
        self.cache.labels("hit" if hit else "miss").inc()
        with self._lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1

    def cache_counts(self) -> tuple[int, int]:
        with self._lock:
            return self._hits, self._misses

    def observe_report(self, report: Report) -> None:
        for finding in report.findings:
            self.findings.labels(finding.id, finding.status.value).inc()
            if finding.area == "smtp" and finding.status is not Status.PASS:
                self.smtp_failures.labels(finding.id).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
