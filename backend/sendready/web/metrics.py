"""Prometheus metrics of one app: request latency, check outcomes, cache hits, DNS and SMTP
failures. Each app owns its registry, so two apps in one process (tests) never mix counts.

Under gunicorn with several workers, `sendready serve` sets PROMETHEUS_MULTIPROC_DIR: then
every worker writes its values there and /metrics sums all workers (prometheus_client's
multiprocess mode), whichever worker answers the scrape.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..model import Report, Status

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class _HitRatio(Collector):
    """The cache hit ratio, computed at scrape time from the lookup counters it is given."""

    def __init__(self, source: Collector | CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        counts = {"hit": 0.0, "miss": 0.0}
        for metric in self._source.collect():
            if metric.name != "sendready_report_cache_lookups":
                continue
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels.get("result") in counts:
                    counts[sample.labels["result"]] += sample.value
        total = counts["hit"] + counts["miss"]
        ratio = GaugeMetricFamily(
            "sendready_report_cache_hit_ratio", "Share of domain reports served from cache."
        )
        ratio.add_metric([], counts["hit"] / total if total else 0.0)
        yield ratio


class Metrics:
    def __init__(self, dns_failures: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._dns_failures_source = dns_failures
        self._dns_failures_seen = 0
        self._lock = threading.Lock()
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
        self.dns_failures = Counter(
            "sendready_dns_failures",
            "DNS questions that timed out, were refused or failed.",
            registry=self.registry,
        )
        self.smtp_failures = Counter(
            "sendready_smtp_failures",
            "SMTP findings that failed or could not be completed, by finding id.",
            ["id"],
            registry=self.registry,
        )

    def cache_lookup(self, hit: bool) -> None:
        self.cache.labels("hit" if hit else "miss").inc()

    def _sync_dns_failures(self) -> None:
        # The resolver counts failures for the whole process; add what is new since last time.
        with self._lock:
            now = self._dns_failures_source()
            if now > self._dns_failures_seen:
                self.dns_failures.inc(now - self._dns_failures_seen)
            self._dns_failures_seen = now

    def observe_report(self, report: Report) -> None:
        for finding in report.findings:
            self.findings.labels(finding.id, finding.status.value).inc()
            if finding.area == "smtp" and finding.status is not Status.PASS:
                self.smtp_failures.labels(finding.id).inc()
        self._sync_dns_failures()

    def render(self) -> bytes:
        self._sync_dns_failures()
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            combined = multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            registry.register(_HitRatio(combined))
            return generate_latest(registry)
        output = generate_latest(self.registry)
        return output + generate_latest(_single(_HitRatio(self.registry)))


def _single(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    return registry
