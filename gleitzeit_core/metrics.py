"""Prometheus metrics of Gleitzeit's long-running processes (prometheus-client).

``gleitzeit ui`` holds no counters of its own (runs happen in other processes),
so its /metrics reads the store at each scrape (``render``). ``gleitzeit worker``
counts the attempts it runs itself (``WorkerMetrics``) and serves them on a port
of its own (``serve``); the queue depth and provider restarts are read when
scraped. No run or task ids as labels (unbounded cardinality).
"""

from __future__ import annotations

from collections import Counter as Tally
from contextlib import contextmanager
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import TaskStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Attempt durations, from a no-op's milliseconds to long model calls.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


class _Families(Collector):
    """Metric families computed when scraped."""

    def __init__(self, families: Callable[[], list[Metric]]):
        self.families = families

    def collect(self):  # type: ignore[override]
        return iter(self.families())


async def render(store: Store) -> bytes:
    """The dashboard's exposition text of one scrape."""
    stats = await store.stats()
    runs = GaugeMetricFamily("gleitzeit_runs", "Runs in the store by status.", labels=["status"])
    for status, n in sorted(stats["runs"].items()):
        runs.add_metric([status], n)
    tasks = GaugeMetricFamily("gleitzeit_tasks", "Tasks in the store by status.", labels=["status"])
    for status, n in sorted(stats["tasks"].items()):
        tasks.add_metric([status], n)
    depth = GaugeMetricFamily("gleitzeit_queue_depth", "Tasks ready and waiting for a slot, per protocol.",
                              labels=["protocol"])
    for protocol, n in sorted(Tally(t.protocol for t in await store.list_tasks(status=TaskStatus.QUEUED)).items()):
        depth.add_metric([protocol], n)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(lambda: [runs, tasks, depth]))
    return generate_latest(registry)


class WorkerMetrics:
    """One worker's registry. ``queue`` (protocol → attempts waiting, attempts claimed and
    not yet reported) and ``restarts`` (provider → restarts) are called at scrape time,
    from the server's thread."""

    def __init__(self, queue: Callable[[], dict[str, tuple[int, int]]], restarts: Callable[[], dict[str, int]]):
        self.registry = CollectorRegistry(auto_describe=False)
        self._running = Gauge("gleitzeit_worker_attempts_running", "Attempts running on this worker, per protocol.",
                              ["protocol"], registry=self.registry)
        self._finished = Counter("gleitzeit_worker_attempts", "Attempts this worker finished, per protocol and "
                                 "outcome (completed, or the failure kind).", ["protocol", "outcome"],
                                 registry=self.registry)
        self._duration = Histogram("gleitzeit_worker_attempt_duration_seconds", "Attempt durations on this worker, "
                                   "from its start to its report.", ["protocol", "outcome"],
                                   buckets=DURATION_BUCKETS, registry=self.registry)
        self._queue, self._restarts = queue, restarts
        self.registry.register(_Families(self._scraped))

    def started(self, protocol: str) -> None:
        self._running.labels(protocol).inc()

    def finished(self, protocol: str, outcome: str, seconds: float) -> None:
        self._running.labels(protocol).dec()
        self._finished.labels(protocol, outcome).inc()
        self._duration.labels(protocol, outcome).observe(seconds)

    def _scraped(self) -> list[Metric]:
        depth = GaugeMetricFamily("gleitzeit_queue_depth", "Attempts waiting in the pool's queue for a worker, "
                                  "per protocol this worker serves.", labels=["protocol"])
        claimed = GaugeMetricFamily("gleitzeit_queue_claimed", "Attempts claimed by some worker and not yet "
                                    "reported, per protocol this worker serves.", labels=["protocol"])
        for protocol, (waiting, taken) in sorted(self._queue().items()):
            depth.add_metric([protocol], waiting)
            claimed.add_metric([protocol], taken)
        restarts = CounterMetricFamily("gleitzeit_provider_restarts", "Times a provider process of this worker "
                                       "was started again after it ended.", labels=["provider"])
        for provider, n in sorted(self._restarts().items()):
            restarts.add_metric([provider], n)
        return [depth, claimed, restarts]


@contextmanager
def serve(registry: CollectorRegistry, host: str, port: int) -> Iterator[int]:
    """``/metrics`` on ``host:port`` (0: any free port) from a thread, stopped on exit; yields the port."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
