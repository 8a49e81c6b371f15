"""Sending a run's trace to an OTLP/HTTP endpoint with the official exporter.

The exporter reads the standard variables itself (OTEL_EXPORTER_OTLP_ENDPOINT,
..._TRACES_ENDPOINT, ..._HEADERS, ..._TIMEOUT, ...). Export runs in a worker
thread under a deadline and never fails a run: a collector that is down costs
one warning line.
"""

from __future__ import annotations

import logging
import os

import anyio
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from gleitzeit_core.errors import RunNotFound, TraceExportFailed
from gleitzeit_core.store.base import Store
from gleitzeit_core.tracing.spans import run_spans

log = logging.getLogger("gleitzeit.tracing")
# the exporter logs every retry with its exception; TraceExportFailed says it once (--debug shows them)
_exporter_log = logging.getLogger("opentelemetry.exporter.otlp.proto.http")

#: hang guard on top of the exporter's own timeout (OTEL_EXPORTER_OTLP_TIMEOUT, default 10 s)
EXPORT_GUARD_S = 60.0
DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"


def endpoint() -> str:
    """Where spans go, as the exporter decides it (for messages)."""
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    return DEFAULT_ENDPOINT


async def export_run(store: Store, run_id: str) -> int:
    """Send the trace of ``run_id`` as it is in the store; the number of spans sent.
    Raises TraceExportFailed (with the endpoint) when the collector did not take them."""
    run = await store.get_run(run_id)
    if run is None:
        raise RunNotFound(f"no run with id {run_id!r} in the {store.kind} store at {store.address}")
    spans = run_spans(run, await store.list_tasks(run_id=run_id), await store.list_run_attempts(run_id))

    if not log.isEnabledFor(logging.DEBUG):
        _exporter_log.setLevel(logging.CRITICAL)

    def send() -> SpanExportResult:
        exporter = OTLPSpanExporter()
        try:
            return exporter.export(spans)
        finally:
            exporter.shutdown()

    with anyio.move_on_after(EXPORT_GUARD_S):
        if await anyio.to_thread.run_sync(send, abandon_on_cancel=True) is SpanExportResult.SUCCESS:
            return len(spans)
    raise TraceExportFailed(f"the OTLP endpoint {endpoint()} did not accept the trace of run {run_id}")


async def export_quietly(store: Store, run_id: str) -> None:
    """Live export at the end of a run: a failure is a warning, never the run's failure."""
    try:
        await export_run(store, run_id)
    except TraceExportFailed as exc:
        log.warning("%s", exc)
