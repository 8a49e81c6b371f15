"""Prometheus metrics of the store the dashboard shows, computed at scrape time.

The dashboard holds no counters of its own (runs happen in other processes),
so each scrape reads the store: runs and tasks by status, and how many tasks
wait for a slot per protocol. No run ids as labels (unbounded cardinality).
"""

from __future__ import annotations

from collections import Counter

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import TaskStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Snapshot(Collector):
    def __init__(self, families: list[GaugeMetricFamily]):
        self.families = families

    def collect(self):  # type: ignore[override]
        return iter(self.families)


async def render(store: Store) -> bytes:
    """The exposition text of one scrape."""
    stats = await store.stats()
    runs = GaugeMetricFamily("gleitzeit_runs", "Runs in the store by status.", labels=["status"])
    for status, n in sorted(stats["runs"].items()):
        runs.add_metric([status], n)
    tasks = GaugeMetricFamily("gleitzeit_tasks", "Tasks in the store by status.", labels=["status"])
    for status, n in sorted(stats["tasks"].items()):
        tasks.add_metric([status], n)
    depth = GaugeMetricFamily("gleitzeit_queue_depth", "Tasks ready and waiting for a slot, per protocol.",
                              labels=["protocol"])
    for protocol, n in sorted(Counter(t.protocol for t in await store.list_tasks(status=TaskStatus.QUEUED)).items()):
        depth.add_metric([protocol], n)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot([runs, tasks, depth]))
    return generate_latest(registry)
