"""The service's numbers in Prometheus form. Counted in the domain (not at
a surface), so gRPC and HTTP callers count alike; live values (slots, queue,
accounts, the store) are read at scrape time."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily

_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)


class _Live:
    """Gauges computed when scraped."""

    def __init__(self, read: Callable[[], list[GaugeMetricFamily]]):
        self._read = read

    def collect(self):
        yield from self._read()


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "codex_image_requests",
            "Generate requests by surface, outcome and reason",
            ["surface", "outcome", "reason"],
            registry=self.registry,
        )
        self.images = Counter(
            "codex_image_images_generated", "Images generated", registry=self.registry
        )
        self.queue_wait = Histogram(
            "codex_image_queue_wait_seconds",
            "Time a request waited for slots",
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.codex_run = Histogram(
            "codex_image_codex_run_seconds",
            "Wall time of one candidate's codex run",
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.total = Histogram(
            "codex_image_request_seconds",
            "Wall time of a Generate request, arrival to end",
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.retention_deleted = Counter(
            "codex_image_retention_deleted_images",
            "Images the retention sweeper deleted",
            ["rule"],
            registry=self.registry,
        )
        self.retention_bytes = Counter(
            "codex_image_retention_deleted_bytes",
            "Bytes the retention sweeper freed",
            ["rule"],
            registry=self.registry,
        )
        self._live: list[Callable[[], list[GaugeMetricFamily]]] = []
        self.registry.register(_Live(self._read_live))

    def add_live(self, read: Callable[[], list[GaugeMetricFamily]]) -> None:
        self._live.append(read)

    def _read_live(self) -> list[GaugeMetricFamily]:
        out = []
        for read in self._live:
            out.extend(read())
        return out


def gauge(
    name: str, doc: str, value: float, labels: dict[str, str] | None = None
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), value)
    return family
