"""gz.export_trace: a stored run's trace sent from a script, to a real OTLP/HTTP receiver."""

from __future__ import annotations

from pathlib import Path

import pytest

import gleitzeit_core as gz
from tests.api.test_runs import run_some
from tests.tracing.otlp_receiver import Receiver

pytestmark = pytest.mark.anyio


async def test_a_stored_runs_trace_is_sent_with_a_span_per_run_task_and_attempt(tmp_path: Path, monkeypatch):
    db = str(tmp_path / "runs.db")
    flaky = (await run_some(db))["a"]  # flaky (2 attempts) and plain (1), never traced live
    with Receiver() as otlp:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlp.endpoint + "/v1/traces")
        async with gz.SQLiteBackend(db) as store:
            sent = await gz.export_trace(store, flaky.run_id)
            with pytest.raises(gz.RunNotFound):
                await gz.export_trace(store, "run-nope")
    assert sent == len(otlp.spans) == 1 + 2 + 3
    names = sorted(s.name for s in otlp.spans)
    assert names.count("fake/do #1") == 2 and names.count("fake/do #2") == 1
    assert {"flaky", "plain"} <= set(names)
    assert len({s.trace_id for s in otlp.spans}) == 1


async def test_an_endpoint_that_does_not_take_it_is_trace_export_failed(tmp_path: Path, monkeypatch):
    db = str(tmp_path / "runs.db")
    run = (await run_some(db))["c"]
    with Receiver() as otlp:
        closed = otlp.endpoint  # nothing listens there once the receiver is closed
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", closed + "/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    async with gz.SQLiteBackend(db) as store:
        with pytest.raises(gz.TraceExportFailed, match="did not accept the trace of run"):
            await gz.export_trace(store, run.run_id)
