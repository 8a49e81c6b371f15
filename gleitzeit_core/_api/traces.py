"""A stored run's trace, sent from a script: what `gleitzeit trace export RUN` does."""

from __future__ import annotations

from gleitzeit_core._api.boundary import guarded
from gleitzeit_core._api.runs import get_run
from gleitzeit_core.errors import ConfigError
from gleitzeit_core.store.base import Store


@guarded
async def export_trace(store: Store, run_id: str) -> int:
    """Rebuild a stored run's trace (a span per run, task and attempt) and send it to the OTLP/HTTP
    endpoint the standard ``OTEL_EXPORTER_OTLP_*`` variables name, for runs that were not traced
    live; returns the number of spans sent. Needs the ``otel`` extra.

    >>> async with gz.SQLiteBackend("runs.db") as store:
    ...     sent = await gz.export_trace(store, run_id)

    ``RunNotFound`` for an unknown run, ``TraceExportFailed`` when the endpoint did not take it.
    """
    await get_run(store, run_id)
    try:
        from gleitzeit_core.tracing.export import export_run
    except ImportError as exc:  # the OpenTelemetry SDK is an extra: say how to get it
        raise ConfigError(f"exporting a trace needs the OpenTelemetry SDK: pip install 'gleitzeit[otel]' ({exc})") from exc
    return await export_run(store, run_id)
