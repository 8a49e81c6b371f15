"""A run's trace built from its store records, as OpenTelemetry SDK spans.

The spans are made after the fact from what the store recorded (start and end
times, status, errors), with the deterministic ids of ``context``: the same
code serves live export at the end of a run and ``gleitzeit trace export`` of
an old one. Span model: ``RUN <workflow>`` (SERVER) → one span per task →
one CLIENT span per attempt, with the CI/CD semantic-convention attributes
where they fit and ``gleitzeit.*`` for the rest.
"""

from __future__ import annotations

import os
import time
from typing import Mapping, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from gleitzeit_core._version import __version__
from gleitzeit_core.store.records import AttemptRecord, RunRecord, RunStatus, TaskRecord, TaskStatus
from gleitzeit_core.tracing.context import attempt_span_id, run_span_id, task_span_id, trace_id

SCOPE = InstrumentationScope("gleitzeit", __version__)


def resource() -> Resource:
    """``service.name`` is ``gleitzeit`` unless OTEL_SERVICE_NAME says otherwise."""
    return Resource.create({} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "gleitzeit"})


def _context(run_id: str, span: str) -> SpanContext:
    return SpanContext(int(trace_id(run_id), 16), int(span, 16), is_remote=False,
                       trace_flags=TraceFlags(TraceFlags.SAMPLED))


def _ns(ts: float) -> int:
    return int(ts * 1e9)


def _error_status(error: str | None) -> Status:
    return Status(StatusCode.ERROR, (error or "").splitlines()[0] if error else None)


def _error_type(error: str | None) -> str:
    """``ValueError`` of ``ValueError: row 3 is broken``; the whole first line's head otherwise."""
    head = (error or "").split(":", 1)[0].strip()
    return head if head and " " not in head else "error"


def run_spans(run: RunRecord, tasks: Sequence[TaskRecord], attempts: Mapping[str, list[AttemptRecord]],
              *, now: float | None = None) -> list[ReadableSpan]:
    """Every span of ``run``'s trace; ``attempts`` by task id (``Store.list_run_attempts``)."""
    now = time.time() if now is None else now
    res = resource()
    run_ctx = _context(run.run_id, run_span_id(run.run_id))
    run_end = run.finished_at or now
    spans = [ReadableSpan(
        f"RUN {run.workflow_name}", run_ctx, None, res,
        {"cicd.pipeline.name": run.workflow_name, "cicd.pipeline.run.id": run.run_id,
         "cicd.pipeline.result": run.status.value, "gleitzeit.workflow.path": run.workflow_path or ""},
        kind=SpanKind.SERVER, instrumentation_scope=SCOPE,
        status=_error_status(run.error) if run.status is RunStatus.FAILED else Status(StatusCode.UNSET),
        start_time=_ns(run.started_at or run.created_at), end_time=_ns(run_end))]
    for task in tasks:
        task_ctx = _context(run.run_id, task_span_id(task.id))
        start = task.started_at or task.finished_at or run_end  # a skipped task: a point in time
        spans.append(ReadableSpan(
            task.name, task_ctx, run_ctx, res,
            {"cicd.pipeline.task.name": task.name, "cicd.pipeline.task.run.id": task.id,
             "gleitzeit.task.status": task.status.value, "gleitzeit.attempts": task.attempts,
             "gleitzeit.protocol": task.protocol, "rpc.method": task.method},
            instrumentation_scope=SCOPE,
            status=_error_status(task.error) if task.status is TaskStatus.FAILED else Status(StatusCode.UNSET),
            start_time=_ns(start), end_time=_ns(task.finished_at or (now if task.started_at else start))))
        for a in attempts.get(task.id, []):
            failed = a.status is TaskStatus.FAILED
            attributes: dict[str, str | int] = {"gleitzeit.attempt": a.number, "gleitzeit.protocol": task.protocol,
                                                "gleitzeit.attempt.status": a.status.value,
                                                "rpc.system": "jsonrpc", "rpc.method": task.method}
            if failed:
                attributes["error.type"] = _error_type(a.error)
            spans.append(ReadableSpan(
                f"{task.method} #{a.number}", _context(run.run_id, attempt_span_id(task.id, a.number)), task_ctx,
                res, attributes, kind=SpanKind.CLIENT, instrumentation_scope=SCOPE,
                status=_error_status(a.error) if failed else Status(StatusCode.OK),
                start_time=_ns(a.started_at), end_time=_ns(a.finished_at or now)))
    return spans
