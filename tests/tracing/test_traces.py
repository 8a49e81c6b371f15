"""OpenTelemetry traces of real runs, received by a local OTLP/HTTP receiver."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.cli.conftest import Cli, home, work, write  # noqa: F401  (fixtures)
from tests.tracing.otlp_receiver import Receiver

DEMO = Path(__file__).resolve().parents[1] / "sdk" / "demo_provider.py"
SERVER, CLIENT = 2, 3  # OTLP span kinds
UNSET, OK, ERROR = 0, 1, 2


def traced_workflow(work: Path) -> Path:
    manifest = write(work, "demo.yaml", f"""
        name: demo
        version: "1.2.3"
        command: "{sys.executable}"
        args: ["{DEMO}"]
        inherit_env: [PATH]
        protocols: [demo/v1]
    """)
    return write(work, "traced.yaml", f"""
        name: traced
        providers: ["{manifest}"]
        tasks:
          - name: Echo
            method: demo/echo
            params: {{text: hi}}
          - name: Flaky
            method: python/execute
            dependencies: [Echo]
            retry: {{max_attempts: 2, base_delay: 0.05}}
            params: {{code: "raise ValueError('row 3 is broken')"}}
          - name: Never
            method: python/execute
            dependencies: [Flaky]
            params: {{code: "result = 1"}}
    """)


def test_a_run_is_one_trace_with_a_span_per_task_and_attempt(home: Path, work: Path) -> None:
    wf = traced_workflow(work)
    with Receiver() as otlp:
        cli = Cli(home, {"GLEITZEIT_PERSISTENCE_BACKEND": "sqlite", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
                         "OTEL_SERVICE_NAME": "nightly-etl"})
        r = cli("run", str(wf), "--allow-providers", "--json")
        assert r.code == 1, r.err
        outcome = r.json()
        run_id = outcome["run_id"]
        assert otlp.paths == ["/v1/traces"]
        spans = {s.name: s for s in otlp.spans}

    assert len(otlp.spans) == 1 + 3 + 1 + 2  # run, tasks, attempts (Echo once, Flaky twice)
    assert {s.trace_id for s in otlp.spans} == {run_id.encode().hex()}
    assert {s.service for s in otlp.spans} == {"nightly-etl"}
    root = spans["RUN traced"]
    assert root.parent_id == "" and root.kind == SERVER and root.status == ERROR
    assert root.attributes["cicd.pipeline.run.id"] == run_id and root.attributes["cicd.pipeline.result"] == "failed"
    for task in ("Echo", "Flaky", "Never"):
        assert spans[task].parent_id == root.span_id
        assert root.start_ns <= spans[task].start_ns <= spans[task].end_ns <= root.end_ns
    assert spans["Never"].attributes["gleitzeit.task.status"] == "skipped"
    assert spans["Flaky"].status == ERROR and spans["Echo"].status == UNSET

    first, second = spans["python/execute #1"], spans["python/execute #2"]
    assert first.parent_id == second.parent_id == spans["Flaky"].span_id
    assert (first.attributes["gleitzeit.attempt"], second.attributes["gleitzeit.attempt"]) == (1, 2)
    assert first.kind == CLIENT and first.status == ERROR and first.attributes["error.type"] == "ValueError"
    assert first.end_ns <= second.start_ns  # the retry delay is the gap between them

    # the provider got the attempt span as its parent: its own spans join this trace
    echo = spans["demo/echo #1"]
    assert echo.parent_id == spans["Echo"].span_id and echo.status == OK
    assert echo.attributes["rpc.method"] == "demo/echo" and echo.attributes["gleitzeit.protocol"] == "demo/v1"
    sent = outcome["tasks"]["Echo"]["result"]["meta"]["traceparent"]
    assert sent == f"00-{echo.trace_id}-{echo.span_id}-01"


def test_trace_export_rebuilds_a_finished_run_from_the_store(home: Path, work: Path) -> None:
    wf = traced_workflow(work)
    cli = Cli(home, {"GLEITZEIT_PERSISTENCE_BACKEND": "sqlite"})
    outcome = cli("run", str(wf), "--allow-providers", "--json").json()  # not traced: no endpoint set
    with Receiver() as otlp:
        r = cli("trace", "export", outcome["run_id"], "--json", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=otlp.endpoint
                + "/custom/path")
        assert r.code == 0, r.err
        assert r.json() == {"run_id": outcome["run_id"], "spans": 7, "endpoint": otlp.endpoint + "/custom/path"}
        assert otlp.paths == ["/custom/path"]
    spans = {s.name: s for s in otlp.spans}
    sent = outcome["tasks"]["Echo"]["result"]["meta"]["traceparent"]
    assert sent == f"00-{spans['demo/echo #1'].trace_id}-{spans['demo/echo #1'].span_id}-01"
    assert {s.service for s in otlp.spans} == {"gleitzeit"}


def test_collector_down_costs_a_warning_not_the_run(home: Path, work: Path) -> None:
    wf = write(work, "one.yaml", """
        name: one
        tasks:
          - {name: A, method: python/execute, params: {code: "result = 1"}}
    """)
    with Receiver() as otlp:
        endpoint = otlp.endpoint  # closed again: nothing listens there now
    cli = Cli(home, {"GLEITZEIT_PERSISTENCE_BACKEND": "sqlite", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                     "OTEL_EXPORTER_OTLP_TIMEOUT": "1"})
    r = cli("run", str(wf), "--allow-providers", "--json")
    assert r.code == 0 and r.json()["status"] == "completed"
    assert "did not accept the trace" in r.err
    missing = cli("trace", "export", r.json()["run_id"])
    assert missing.code == 1 and missing.err.startswith("error: the OTLP endpoint")


def test_without_tracing_the_sdk_is_not_imported(home: Path, work: Path) -> None:
    cli = Cli(home, {"GLEITZEIT_PERSISTENCE_BACKEND": "sqlite"})
    wf = write(work, "one.yaml", """
        name: one
        tasks:
          - {name: A, method: python/execute, params: {code: "result = 1"}}
    """)
    r = cli("--debug", "run", str(wf), "--allow-providers", "--json", PYTHONVERBOSE="1")
    assert r.code == 0
    assert "opentelemetry" not in r.err
