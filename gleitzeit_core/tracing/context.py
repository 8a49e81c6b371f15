"""Trace and span ids derived from record ids, and whether tracing is on.

Deterministic ids are what make a trace reconstructable: the span id of attempt
*n* of a task is known before the attempt starts (it goes to the provider in
``_meta.traceparent``, so the provider's own spans become its children) and is
the same when ``gleitzeit trace export`` rebuilds the trace from the store
later. The trace id is the run id's bytes in hex, so a resumed run continues
its trace. No imports beyond the standard library: the engine calls this on
every attempt, traced or not.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:  # the scheduler imports this module; it needs no configuration
    from gleitzeit_core.config import Config

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def trace_id(run_id: str) -> str:
    """32 hex digits: the run id's bytes (``run-`` + 12 hex digits is exactly 16 bytes)."""
    return (run_id.encode().hex() + "0" * 32)[:32]


def span_id(*parts: object) -> str:
    """16 hex digits from a hash of ``parts``, e.g. ``span_id("attempt", task_id, 2)``."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()
    return digest[:16] if digest[:16] != "0" * 16 else "0" * 15 + "1"


def run_span_id(run_id: str) -> str:
    return span_id("run", run_id)


def task_span_id(task_id: str) -> str:
    return span_id("task", task_id)


def attempt_span_id(task_id: str, number: int) -> str:
    return span_id("attempt", task_id, number)


def traceparent(run_id: str, task_id: str, number: int) -> str:
    """W3C Trace Context for attempt ``number``: the provider's spans are children of the attempt's."""
    return f"00-{trace_id(run_id)}-{attempt_span_id(task_id, number)}-01"


def tracing_enabled(config: "Config", environ: Mapping[str, str] = os.environ) -> bool:
    """On when an OTLP endpoint variable is set or the configuration says ``tracing.enabled: true``."""
    return bool(config["tracing.enabled"]) or any(environ.get(v) for v in ENDPOINT_VARIABLES)
