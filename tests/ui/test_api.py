"""The dashboard's JSON API and event stream, served by a real `gleitzeit ui` over the
store real `gleitzeit run` processes write (SQLite and Redis)."""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from pathlib import Path

import redis

from tests.ui.conftest import WAIT_S, Cli, Dashboard, first_run_id, gated, running, wait_for, write

SECRET = "sk-live-0123456789"

REPORT = f"""
    name: report
    tasks:
      - name: Fetch
        method: python/execute
        params: {{code: "result = [1, 2, 3]"}}
      - name: Sum
        method: python/execute
        dependencies: [Fetch]
        params: {{code: "result = sum(${{Fetch.result.result}})"}}
      - name: Upload
        method: python/execute
        dependencies: [Sum]
        retry: {{max_attempts: 2, base_delay: 0.05}}
        params:
          code: "print('uploading', context['bucket']); raise RuntimeError('bucket is read-only')"
          context: {{bucket: reports, api_key: "{SECRET}"}}
      - name: Notify
        method: python/execute
        dependencies: [Upload]
        params: {{code: "result = 'sent'"}}
"""


def test_api_describes_a_finished_run(cli: Cli, work: Path, dashboard_factory) -> None:
    wf = write(work, "report.yaml", REPORT)
    assert cli("run", str(wf), "--json").code == 1
    ui = dashboard_factory(cli.env)

    runs = ui.get_json("/api/runs")
    assert [(r["name"], r["status"]) for r in runs] == [("report", "failed")]
    assert runs[0]["duration_s"] > 0
    assert ui.get_json("/api/runs?status=completed") == []
    assert ui.get_json("/api/runs?workflow=report")[0]["run_id"] == runs[0]["run_id"]
    run_id = runs[0]["run_id"]

    doc = ui.get_json(f"/api/runs/{run_id}")
    assert sorted(map(tuple, doc["edges"])) == [("Fetch", "Sum"), ("Sum", "Upload"), ("Upload", "Notify")]
    assert doc["counts"] == {"completed": 2, "failed": 1, "skipped": 1}
    tasks = {t["key"]: t for t in doc["tasks"]}
    assert tasks["Sum"]["result"]["result"] == 6
    upload = tasks["Upload"]
    assert [(a["number"], a["status"]) for a in upload["attempt_history"]] == [(1, "failed"), (2, "failed")]
    assert "bucket is read-only" in upload["attempt_history"][1]["error"]
    assert [a["stdout"] for a in upload["attempt_history"]] == ["uploading reports\n"] * 2
    assert "uploading reports" in ui.request(f"/runs/{run_id}/tasks/Upload").text
    assert upload["params"]["context"] == {"bucket": "reports", "api_key": "***"}
    assert upload["dependencies"] == ["Sum"]
    assert ui.get_json(f"/api/runs/{run_id}/tasks/Upload")["attempt_history"] == upload["attempt_history"]
    assert [t["key"] for t in ui.get_json(f"/api/runs/{run_id}/tasks")] == ["Fetch", "Sum", "Upload", "Notify"]

    missing = ui.request("/api/runs/run-nope")
    assert missing.status == 404 and "run-nope" in missing.json()["error"]
    assert ui.request(f"/api/runs/{run_id}/tasks/Nope").status == 404
    assert ui.request("/api/runs?status=bogus").status == 400

    # a finished run's event stream says everything once, then ends
    events = sse(ui.request(f"/api/runs/{run_id}/events").text)
    assert [e for e, _ in events] == ["tasks", "run", "end"]
    assert {t["key"]: t["status"] for t in events[0][1]}["Notify"] == "skipped"

    # the page and the secret: masked everywhere, and never written to the store
    page = ui.request(f"/runs/{run_id}")
    assert page.status == 200 and 'data-key="Upload"' in page.text
    assert SECRET not in page.text and SECRET not in ui.request(f"/runs/{run_id}/tasks/Upload").text
    assert SECRET.encode() not in stored_bytes(cli)


def stored_bytes(cli: Cli) -> bytes:
    if cli.env["GLEITZEIT_PERSISTENCE_BACKEND"] == "sqlite":
        return b"".join(p.read_bytes() for p in cli.home.glob("workflows.db*"))
    client = redis.Redis.from_url(cli.env["GLEITZEIT_REDIS_URL"])
    try:
        return b"".join(json.dumps({k.decode(): repr(client.dump(k))}).encode() for k in client.scan_iter())
    finally:
        client.close()


def sse(text: str) -> list[tuple[str, object]]:
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((fields["event"], json.loads(fields["data"])))
    return out


def test_event_stream_follows_a_live_run(cli: Cli, work: Path, dashboard_factory) -> None:
    wf, gate = gated(work)
    ui = dashboard_factory(cli.env)
    with running(cli, wf) as proc:
        run_id = first_run_id(ui, "running")
        seen: list[tuple[str, str]] = []
        with urllib.request.urlopen(ui.url + f"/api/runs/{run_id}/events", timeout=WAIT_S) as stream:
            event = None
            for raw in stream:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "tasks":
                    seen += [(t["key"], t["status"]) for t in json.loads(line[6:])]
                    if ("Wait", "running") in seen and not gate.exists():
                        gate.write_text("open")
                elif line.startswith("data: ") and event == "end":
                    assert json.loads(line[6:])["status"] == "completed"
                    break
        assert seen.index(("Wait", "running")) < seen.index(("Wait", "completed")) < seen.index(("After", "completed"))
        assert proc.wait(WAIT_S) == 0


def test_read_only_by_default(cli: Cli, work: Path, dashboard_factory) -> None:
    wf = write(work, "one.yaml", """
        name: one
        tasks:
          - {name: A, method: python/execute, params: {code: "result = 1"}}
    """)
    cli.ok("run", str(wf), "--json")
    ui = dashboard_factory(cli.env)
    run_id = ui.get_json("/api/runs")[0]["run_id"]
    refused = ui.request(f"/api/runs/{run_id}/cancel", method="POST")
    assert refused.status == 403 and "--allow-actions" in refused.json()["error"]
    assert ui.request(f"/api/runs/{run_id}/resume", method="POST").status == 403
    page = ui.request(f"/runs/{run_id}").text
    assert "data-action" not in page and 'name="gleitzeit-token" content=""' in page
    # a loopback dashboard answers only to loopback host names (no DNS rebinding)
    assert ui.request("/api/runs", headers={"Host": "attacker.example"}).status == 400
    assert ui.request("/api/runs", headers={"Host": "localhost"}).status == 200


def test_actions_cancel_and_resume_with_the_page_token(cli: Cli, work: Path, dashboard_factory) -> None:
    wf, gate = gated(work)
    ui = dashboard_factory(cli.env, "--allow-actions")
    with running(cli, wf) as proc:
        run_id = first_run_id(ui, "running")
        page = ui.request(f"/runs/{run_id}").text
        token = re.search(r'name="gleitzeit-token" content="([^"]+)"', page).group(1)
        cancel = f"/api/runs/{run_id}/cancel"
        assert ui.request(cancel, method="POST").status == 403  # no token
        assert ui.request(cancel, method="POST", headers={"X-Gleitzeit-Token": "guess"}).status == 403
        foreign = ui.request(cancel, method="POST",
                             headers={"X-Gleitzeit-Token": token, "Origin": "http://attacker.example"})
        assert foreign.status == 403
        assert ui.get_json(f"/api/runs/{run_id}")["cancel_requested"] is False
        ok = ui.request(cancel, method="POST", headers={"X-Gleitzeit-Token": token, "Origin": ui.url})
        assert ok.status == 200 and ok.json()["cancel_requested"] is True
        assert proc.wait(WAIT_S) == 1
    assert ui.get_json(f"/api/runs/{run_id}")["status"] == "cancelled"

    gate.write_text("open")  # resumed, the task gets past its gate
    started = ui.request(f"/api/runs/{run_id}/resume", method="POST", headers={"X-Gleitzeit-Token": token})
    assert started.status == 202 and started.json()["resume_started"] is True
    wait_for(lambda: ui.get_json(f"/api/runs/{run_id}")["status"] == "completed", WAIT_S, what="the resumed run")
    tasks = {t["key"]: t["result"]["result"] for t in ui.get_json(f"/api/runs/{run_id}")["tasks"]}
    assert tasks == {"Wait": "opened", "After": 2}
    again = ui.request(f"/api/runs/{run_id}/resume", method="POST", headers={"X-Gleitzeit-Token": token})
    assert again.status == 409


def test_busy_port_is_one_line(cli: Cli) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        r = cli("ui", "--port", str(busy.getsockname()[1]))
    assert r.code == 1
    assert r.err.strip().startswith("error: cannot serve on 127.0.0.1:") and "Traceback" not in r.err


def test_providers_report_health(home: Path, dashboard_factory) -> None:
    ui = dashboard_factory({"GLEITZEIT_PERSISTENCE_BACKEND": "sqlite"})
    probes = {p["name"]: p for p in ui.get_json("/api/providers")}
    assert probes["python"]["state"] == "ok" and "python/execute" in probes["python"]["methods"]
    assert 'data-provider="python"' in ui.request("/fragments/providers").text


def test_stopping_returns_interrupted(home: Path, dashboard_factory) -> None:
    ui: Dashboard = dashboard_factory({"GLEITZEIT_PERSISTENCE_BACKEND": "sqlite"})
    assert ui.request("/").status == 200
    assert ui.stop() == 130


def metric(text: str, name: str, label: str) -> float | None:
    found = re.search(rf'^{name}\{{[a-z]+="{label}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else None


def test_metrics_count_runs_tasks_and_queue_depth(cli: Cli, work: Path, dashboard_factory) -> None:
    gate = work / "gate"
    wf = write(work, "two.yaml", f"""
        name: two
        tasks:
          - name: Wait
            method: python/execute
            params:
              code: "import os, time\\nwhile not os.path.exists(context['gate']): time.sleep(0.05)"
              context: {{gate: "{gate}"}}
          - {{name: Other, method: python/execute, params: {{code: "result = 1"}}}}
    """)
    ui = dashboard_factory(cli.env)
    with running(cli, wf, GLEITZEIT_MAX_CONCURRENT="1") as proc:
        first_run_id(ui, "running")
        def scrape_with_a_running_task() -> str | None:
            text = ui.request("/metrics").text
            return text if metric(text, "gleitzeit_tasks", "running") else None

        text = wait_for(scrape_with_a_running_task, WAIT_S, what="a running task in /metrics")
        assert metric(text, "gleitzeit_runs", "running") == 1
        assert metric(text, "gleitzeit_queue_depth", "python/v1") == 1  # Other waits for the one slot
        gate.write_text("open")
        assert proc.wait(WAIT_S) == 0
    text = ui.request("/metrics").text
    assert metric(text, "gleitzeit_runs", "completed") == 1 and metric(text, "gleitzeit_runs", "running") == 0
    assert metric(text, "gleitzeit_tasks", "completed") == 2
    assert metric(text, "gleitzeit_queue_depth", "python/v1") is None


def test_a_tasks_log_lines_as_json_and_as_an_event_stream(cli: Cli, work: Path, dashboard_factory) -> None:
    wf = write(work, "report.yaml", REPORT)
    assert cli("run", str(wf), "--json").code == 1
    ui = dashboard_factory(cli.env)
    run_id = first_run_id(ui, "failed")
    lines = ui.get_json(f"/api/runs/{run_id}/logs?task=Upload")
    assert [(x["attempt"], x["stream"], x["text"]) for x in lines] == [(1, "stdout", "uploading reports"),
                                                                        (2, "stdout", "uploading reports")]
    assert all(x["task"] == "Upload" and x["at"] > 0 for x in lines)
    assert [x["attempt"] for x in ui.get_json(f"/api/runs/{run_id}/logs?task=Upload&attempt=2")] == [2]
    events = sse(ui.request(f"/api/runs/{run_id}/logs/events?task=Upload").text)  # a finished task: all, then end
    assert [e for e, _ in events] == ["lines", "end"] and [x["text"] for x in events[0][1]] == ["uploading reports"] * 2
    assert ui.request(f"/api/runs/{run_id}/logs").status == 400
    assert ui.request(f"/api/runs/{run_id}/logs?task=Nope").status == 404
    assert ui.request(f"/api/runs/{run_id}/logs?task=Upload&attempt=x").status == 400
