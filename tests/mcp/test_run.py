"""MCP servers as providers, end to end through `gleitzeit run`, `validate` and `provider …`."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests.helpers.cli import gz, spawn
from tests.mcp.conftest import one_task, register, run

#: Hang guard for waits on a file another process writes (not a timing assertion).
WAIT_S = 60.0


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def wire_log(work: Path, name: str, command: str, *args: str) -> tuple[str, list[str], Path, Path]:
    """A wrapper that records each start of the server and every line it reads on stdin."""
    starts, stdin = work / f"{name}.starts", work / f"{name}.stdin"
    script = f'echo $$ >> {starts}; tee -a {stdin} | "$@"'
    return "sh", ["-c", script, "sh", command, *args], starts, stdin


def sent(stdin: Path) -> list[dict]:
    return [json.loads(line) for line in stdin.read_text().splitlines() if line.strip()] if stdin.exists() else []


def test_workflow_mixes_mcp_tools_python_and_references(home: Path, work: Path, time_server: str, everything: str):
    register(home, "clock", time_server)
    register(home, "every", everything, "stdio", startup_timeout=30)
    r, report = run(home, work, """
name: mixed
tasks:
  - name: Now
    method: clock/get_current_time
    parameters: {timezone: Europe/Berlin}
  - name: Sum
    method: every/get-sum
    parameters: {a: 40, b: 2}
  - name: Weather
    method: every/get-structured-content
    parameters: {location: Chicago}
  - name: Combine
    method: python/execute
    dependencies: [Now, Sum, Weather]
    parameters:
      code: |
        result = {"day": ${Now.result.day_of_week}, "sum": ${Sum.result.text}, "temp": ${Weather.result.temperature}}
  - name: Echo
    method: every/echo
    dependencies: [Combine]
    parameters: {message: "on ${Combine.result.result.day}: ${Combine.result.result.sum}"}
""")
    assert r.code == 0, r.err
    tasks = report["tasks"]
    now = tasks["Now"]["result"]
    assert now["timezone"] == "Europe/Berlin" and set(now) == {"timezone", "datetime", "day_of_week", "is_dst"}
    # no structuredContent: the content blocks as sent, and their text joined
    assert tasks["Sum"]["result"] == {"content": [{"type": "text", "text": "The sum of 40 and 2 is 42."}],
                                      "text": "The sum of 40 and 2 is 42."}
    assert isinstance(tasks["Weather"]["result"]["temperature"], (int, float))  # structuredContent as the result
    combined = tasks["Combine"]["result"]["result"]
    assert combined["day"] == now["day_of_week"] and combined["sum"] == "The sum of 40 and 2 is 42."
    assert tasks["Echo"]["result"]["text"] == f"Echo: on {now['day_of_week']}: The sum of 40 and 2 is 42."


def test_both_eras_list_and_health(home: Path, time_server: str, everything: str):
    register(home, "clock", time_server)  # modern: answers server/discover
    register(home, "every", everything, "stdio", startup_timeout=30)  # legacy: initialize only
    listed = {p["name"]: p for p in gz(home, "provider", "list", "--json").json()}
    assert listed["clock"]["state"] == "ok" and listed["clock"]["protocols"] == ["clock/v1"]
    assert listed["clock"]["methods"] == ["clock/convert_time", "clock/get_current_time"]
    assert "every/trigger-long-running-operation" in listed["every"]["methods"]
    clock = gz(home, "provider", "health", "clock", "--json")
    assert clock.code == 0, clock.err
    assert clock.json()["health"] | {"serverInfo": None} == {
        "status": "ok", "kind": "mcp", "era": "modern", "protocolVersion": "2026-07-28", "serverInfo": None,
        "tools": 2}
    assert clock.json()["health"]["serverInfo"]["name"] == "mcp-time"
    every = gz(home, "provider", "health", "every", "--json")
    assert every.code == 0, every.err
    assert every.json()["health"]["era"] == "legacy" and every.json()["health"]["protocolVersion"] == "2025-11-25"


def test_legacy_server_gets_initialize_after_the_probe(home: Path, work: Path, everything: str):
    command, args, _, stdin = wire_log(work, "every", everything, "stdio")
    register(home, "every", command, *args, startup_timeout=30)
    r, report = run(home, work, one_task("every/echo", {"message": "hi"}))
    assert r.code == 0, r.err
    methods = [m.get("method") for m in sent(stdin)]
    assert methods[:4] == ["server/discover", "initialize", "notifications/initialized", "tools/list"]
    call = next(m for m in sent(stdin) if m.get("method") == "tools/call")
    assert call["params"]["name"] == "echo" and call["params"]["arguments"] == {"message": "hi"}
    assert "io.modelcontextprotocol/protocolVersion" not in call["params"]["_meta"]  # legacy: no per-request meta


def test_modern_server_gets_meta_on_every_request_and_no_initialize(home: Path, work: Path, time_server: str):
    command, args, _, stdin = wire_log(work, "clock", time_server)
    register(home, "clock", command, *args)
    r, _ = run(home, work, one_task("clock/get_current_time", {"timezone": "UTC"}))
    assert r.code == 0, r.err
    lines = sent(stdin)
    assert [m["method"] for m in lines] == ["server/discover", "tools/list", "tools/call"]
    for m in lines:
        meta = m["params"]["_meta"]
        assert meta["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
        assert meta["io.modelcontextprotocol/clientInfo"]["name"] == "gleitzeit"
        assert meta["io.modelcontextprotocol/clientCapabilities"] == {}
    assert lines[2]["params"]["_meta"]["traceparent"].startswith("00-")


def test_a_modern_server_slower_than_the_probe_is_taken_at_its_late_answer(home: Path, work: Path, time_server: str):
    """A modern server that reads its stdin only after the probe gave up (``uvx`` fetching its
    package on a first start, a loaded machine) is sent ``initialize``, refuses it, and its late
    answer to ``server/discover`` decides: the task runs. The server cannot answer before 9 s
    (``sleep``); the probe gives up at half the startup timeout, 8 s."""
    stdin = work / "slow.stdin"
    register(home, "slow", "sh", "-c", f'sleep 9; tee -a {stdin} | "$@"', "sh", time_server, startup_timeout=16)
    r, report = run(home, work, one_task("slow/get_current_time", {"timezone": "UTC"}))
    assert r.code == 0, r.err
    assert report["tasks"]["Task"]["status"] == "completed"
    assert [m["method"] for m in sent(stdin)] == ["server/discover", "initialize", "tools/list", "tools/call"]


def test_validate_rejects_bad_tool_parameters(home: Path, work: Path, time_server: str):
    register(home, "clock", time_server)
    wf = work / "bad.yaml"
    wf.write_text("""name: bad
tasks:
  - name: Wrong type
    method: clock/get_current_time
    parameters: {timezone: 5}
  - name: Missing
    method: clock/get_current_time
    parameters: {}
  - name: From a reference
    method: clock/get_current_time
    dependencies: [Missing]
    parameters: {timezone: "${Missing.result.timezone}"}
""")
    r = gz(home, "validate", str(wf))
    assert r.code == 2
    # one file:line:col line per problem, naming task and parameter; exactly two problems
    problems = [line for line in (r.out + r.err).splitlines() if line.startswith(f"{wf}:") and "task '" in line]
    assert len(problems) == 2, problems
    wrong, missing = problems
    assert re.match(rf"{re.escape(str(wf))}:\d+:\d+: task 'Wrong type': .*'timezone'.*5 is not of type 'string'", wrong)
    assert re.match(rf"{re.escape(str(wf))}:\d+:\d+: task 'Missing': .*'timezone'", missing)
    assert "From a reference" not in r.out + r.err  # known only at run time
    ran = gz(home, "run", str(wf))
    assert ran.code == 2 and "task 'Missing'" in ran.err
    assert gz(home, "workflow", "list", "--json").json() == []  # nothing ran, nothing stored


def test_tool_error_fails_the_task_and_follows_its_retry_policy(home: Path, work: Path, time_server: str):
    register(home, "clock", time_server)
    r, report = run(home, work, """
name: tool error
tasks:
  - name: Nowhere
    method: clock/get_current_time
    retry: {max_attempts: 2, base_delay: 0.1}
    parameters: {timezone: Not/AZone}
  - name: After
    method: python/execute
    dependencies: [Nowhere]
    parameters: {code: "result = 1"}
""")
    assert r.code == 1
    nowhere = report["tasks"]["Nowhere"]
    assert nowhere["status"] == "failed" and nowhere["attempts"] == 2  # isError is retryable
    assert "Invalid timezone" in nowhere["error"]
    assert report["tasks"]["After"]["status"] == "skipped"


def test_timeout_sends_cancelled_and_does_not_wait_for_an_answer(home: Path, work: Path, everything: str):
    command, args, starts, stdin = wire_log(work, "every", everything, "stdio")
    register(home, "every", command, *args, startup_timeout=30)
    r, report = run(home, work, """
name: too slow
tasks:
  - name: Long
    method: every/trigger-long-running-operation
    timeout: 1
    parameters: {duration: 600, steps: 600}
  - name: Next
    method: every/echo
    parameters: {message: still here}
""")
    assert r.code == 1
    assert report["tasks"]["Long"]["status"] == "failed" and "timed out" in report["tasks"]["Long"]["error"]
    assert report["tasks"]["Next"]["result"]["text"] == "Echo: still here"
    call = next(m for m in sent(stdin) if m.get("params", {}).get("name") == "trigger-long-running-operation")
    cancels = [m for m in sent(stdin) if m.get("method") == "notifications/cancelled"]
    assert [c["params"]["requestId"] for c in cancels] == [call["id"]]
    # not killed for "ignoring" the cancel: MCP promises no response, so the same process served Next
    assert len(starts.read_text().split()) == 1


def test_workflow_cancel_cancels_a_running_tool(home: Path, work: Path, everything: str):
    command, args, _, stdin = wire_log(work, "every", everything, "stdio")
    register(home, "every", command, *args, startup_timeout=30)
    wf = work / "wf.yaml"
    wf.write_text("""name: cancelled
tasks:
  - name: Long
    method: every/trigger-long-running-operation
    parameters: {duration: 600, steps: 600}
""")
    proc = spawn(home, "run", str(wf), "--json", cwd=work)
    try:
        wait_for(lambda: any(m.get("method") == "tools/call" for m in sent(stdin)), "the tools/call")
        run_id = gz(home, "workflow", "list", "--json").json()[0]["run_id"]
        assert gz(home, "workflow", "cancel", run_id).code == 0
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert json.loads(out)["tasks"]["Long"]["status"] == "cancelled"
    call = next(m for m in sent(stdin) if m.get("method") == "tools/call")
    assert [m["params"]["requestId"] for m in sent(stdin) if m.get("method") == "notifications/cancelled"] == [
        call["id"]]


def test_server_killed_mid_call_is_restarted_and_retried(home: Path, work: Path, sdk_state: Path):
    r, report = run(home, work, """
name: crash
tasks:
  - name: Retried
    method: sdk/crash_once
    retry: {max_attempts: 2, base_delay: 0.1, on_crash: true}
    parameters: {flag: a}
  - name: Not retried
    method: sdk/crash_once
    dependencies: [Retried]
    retry: {max_attempts: 2, base_delay: 0.1}   # tools are not idempotent: a crash re-runs only with on_crash
    parameters: {flag: b}
""")
    assert r.code == 1
    retried, single = report["tasks"]["Retried"], report["tasks"]["Not retried"]
    assert retried["status"] == "completed" and retried["attempts"] == 2 and retried["result"] == {"result": "survived a"}
    assert single["status"] == "failed" and single["attempts"] == 1
    assert "crashed during sdk/crash_once" in single["error"] and "killed by signal 9" in single["error"]
    assert len((sdk_state / "starts").read_text().split()) == 2  # restarted once, after the first crash


def test_progress_and_structured_content_from_an_sdk_server(home: Path, work: Path, sdk_state: Path):
    r, report = run(home, work, """
name: sdk
tasks:
  - name: Add
    method: sdk/add
    parameters: {a: 2, b: 3}
  - name: Steps
    method: sdk/steps
    parameters: {count: 3}
""", GLEITZEIT_LOG_LEVEL="info")
    assert r.code == 0, r.err
    assert report["tasks"]["Add"]["result"] == {"result": 5}  # the SDK wraps a bare return value
    assert report["tasks"]["Steps"]["result"] == {"result": "did 3 steps"}
    assert [line.split(": ", 1)[1] for line in r.err.splitlines() if "] progress" in line] == [
        "[sdk] progress 1/3: step 1", "[sdk] progress 2/3: step 2", "[sdk] progress 3/3: step 3"]


def test_banner_and_log_lines_on_stdout_are_dropped(home: Path, work: Path, time_server: str):
    banner = 'echo "Time server starting..."; echo "[]"; echo \'{"level": "info", "msg": "ready"}\'; exec "$0"'
    register(home, "clock", "sh", "-c", banner, time_server)
    r, report = run(home, work, one_task("clock/get_current_time", {"timezone": "UTC"}))
    assert r.code == 0, r.err
    assert report["tasks"]["Task"]["result"]["timezone"] == "UTC"
    assert r.err.count("not JSON-RPC (dropped)") == 3
