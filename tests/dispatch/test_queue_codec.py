"""The worker pool's wire values: one codec for reports, priorities from the Priority enum."""

from __future__ import annotations

import json

import pytest

from gleitzeit_core.dispatch.queue import (ANNOUNCE_FIELD, JOB_FIELD, PRIORITIES, REPORT_FIELD, WORKER_FIELD, Job,
                                           Report, ReportKind, queue_key, queue_protocol)
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.workflow.model import Priority
from gleitzeit_sdk.codes import FailureKind

JOB = Job("run-1", "task-1", 2, "python/v1", "python/execute", {"code": "result = 1"}, {"attempt": 2}, 1.5)


def wire(report: Report) -> Report:
    """Through Redis: a flat hash of strings, read back as bytes."""
    return Report.from_fields({k.encode(): v.encode() for k, v in report.fields().items()})


def test_every_report_kind_round_trips():
    error = ProviderError("boom", kind=FailureKind.CRASHED, retryable=True, details={"exit": 3})
    for report in (Report.claimed(JOB, "w1"), Report.output(JOB, "w1", "stderr", "warn\n"),
                   Report.done(JOB, "w1", {"result": 1}), Report.failed(JOB, "w1", error)):
        back = wire(report)
        assert back == report and isinstance(back.kind, ReportKind)
        assert (back.task_id, back.attempt, back.worker) == ("task-1", 2, "w1")
    assert wire(Report.output(JOB, "w1", "stderr", "warn\n")).printed() == ("stderr", "warn\n")
    assert sorted(Report.done(JOB, "w1", 1).fields()) == sorted([REPORT_FIELD, WORKER_FIELD])  # two, not five
    failed = wire(Report.failed(JOB, "w1", error)).error()
    assert (failed.message, failed.kind, failed.retryable, failed.details) == ("boom", FailureKind.CRASHED, True, {"exit": 3})


def test_a_queue_entry_is_the_attempt_in_one_field_and_its_announcement_and_round_trips():
    for job in (JOB, Job("run-2", "task-2", 1, "text/v1", "text/upper", {}, {}, None)):
        fields = job.fields()
        assert sorted(fields) == sorted([JOB_FIELD, ANNOUNCE_FIELD])
        assert Job.from_fields({k.encode(): v.encode() for k, v in fields.items()}) == job


@pytest.mark.parametrize("entry", [{}, {JOB_FIELD: "not json"}, {JOB_FIELD: "[1, 2]"},
                                   {JOB_FIELD: json.dumps({"run_id": "r"})}])
def test_an_entry_that_is_no_attempt_raises_what_the_worker_catches(entry):
    with pytest.raises((KeyError, ValueError, TypeError)):
        Job.from_fields(entry)


def test_a_failure_kind_this_version_does_not_know_reads_as_a_provider_error():
    raw = Report.failed(JOB, "w1", ProviderError("x", kind=FailureKind.TIMEOUT, retryable=False)).fields()
    kind, task_id, attempt, data = json.loads(raw[REPORT_FIELD])
    raw[REPORT_FIELD] = json.dumps([kind, task_id, attempt, {**data, "kind": "from_a_newer_worker"}])
    error = Report.from_fields(raw).error()
    assert error.kind is FailureKind.PROVIDER_ERROR and error.retryable is False


def test_queue_priorities_are_the_priority_enum_highest_first():
    assert PRIORITIES == tuple(sorted((p.value for p in Priority), reverse=True))
    assert PRIORITIES[0] == Priority.URGENT and PRIORITIES[-1] == Priority.LOW
    assert queue_protocol(queue_key("text/v1", Priority.HIGH)) == "text/v1"
    assert queue_protocol(queue_key("ns:odd/v1", Priority.LOW)) == "ns:odd/v1"
