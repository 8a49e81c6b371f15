"""`python -m provider_python` as a real subprocess, spoken to over NDJSON JSON-RPC."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from gleitzeit_sdk import codes
from gleitzeit_sdk.testing import ProviderProcess, spawn

from .conftest import SECRET, processes_matching

pytestmark = pytest.mark.anyio
START = 20.0


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[ProviderProcess]:
    env = {"PATH": os.environ["PATH"], "GZ_PROVIDER_SECRET": SECRET, "HOME": str(tmp_path / "home")}
    async with spawn([sys.executable, "-m", "provider_python"], env=env, cwd=str(tmp_path)) as proc:
        await proc.client.handshake(timeout=START, config={"sandbox": {"state_dir": str(tmp_path / "state")}})
        yield proc


async def execute(proc: ProviderProcess, params: dict, timeout: float = 30.0) -> dict:
    return await proc.client.request("python/execute", params, timeout=timeout)


async def test_descriptor_declares_code_params_and_schemas(tmp_path: Path) -> None:
    async with spawn([sys.executable, "-m", "provider_python"], env={"PATH": os.environ["PATH"]}) as proc:
        init = await proc.client.handshake(timeout=START, config={"sandbox": {"state_dir": str(tmp_path)}})
    (method,) = init["methods"]
    assert method["name"] == "python/execute" and method["codeParams"] == {"code": "python"}
    assert set(method["paramsSchema"]["properties"]) == {"code", "file", "base_dir", "context", "timeout", "sandbox"}
    assert method["resultSchema"]["required"] == ["result", "stdout", "stderr", "duration_ms"]
    assert init["protocols"] == ["python/v1"] and init["capabilities"]["concurrency"]["maxInFlight"] == 4


async def test_result_object_and_streamed_output(provider: ProviderProcess) -> None:
    resp = await execute(provider, {"code": "print('a'); import sys; print('b', file=sys.stderr); result = context",
                                    "context": {"k": [1, None]}, "_meta": {"progressToken": "tok"}})
    res = resp["result"]
    assert res["result"] == {"k": [1, None]} and res["stdout"] == "a\n" and res["stderr"] == "b\n"
    assert isinstance(res["duration_ms"], float) and set(res) == {"result", "stdout", "stderr", "duration_ms"}
    streamed = {(n["params"]["stream"], n["params"]["data"]) for n in provider.client.notifications
                if n["method"] == "$/output" and n["params"]["token"] == "tok"}
    assert streamed == {("stdout", "a\n"), ("stderr", "b\n")}


async def test_exception_carries_only_the_users_traceback(provider: ProviderProcess) -> None:
    resp = await execute(provider, {"code": "def f():\n    return 1 / 0\nprint('before')\nf()\n"})
    err = resp["error"]
    assert err["code"] == codes.TASK_FAILED and err["message"] == "ZeroDivisionError: division by zero"
    data = err["data"]
    assert data["type"] == "ZeroDivisionError" and data["retryable"] is True
    tb = "\n".join(data["details"]["traceback"])
    assert 'File "<code>", line 4, in <module>' in tb and 'line 2, in f' in tb and "return 1 / 0" in tb
    assert "provider_python" not in tb and "exec(" not in tb
    assert data["details"]["stdout"] == "before\n"


async def test_non_json_result_names_its_type_and_is_not_retryable(provider: ProviderProcess) -> None:
    data = (await execute(provider, {"code": "result = {1, 2}"}))["error"]["data"]
    assert data["type"] == "ResultNotSerializable" and "set" in data["message"] and data["retryable"] is False


async def test_timeout_fails_the_task_and_leaves_no_process(provider: ProviderProcess) -> None:
    marker = str(600000 + uuid.uuid4().int % 99999)
    code = "import subprocess; subprocess.Popen(['sleep', context['m']], start_new_session=True)\nwhile True: pass"
    err = (await execute(provider, {"code": code, "context": {"m": marker}, "timeout": 1}))["error"]
    assert err["message"] == "timed out after 1 s" and err["data"]["retryable"] is True
    assert processes_matching(f"sleep\0{marker}") == []


async def test_cancel_request_kills_the_sandbox(provider: ProviderProcess) -> None:
    marker = str(500000 + uuid.uuid4().int % 99999)
    rid = provider.client.next_id()
    await provider.client.send({"jsonrpc": "2.0", "id": rid, "method": "python/execute", "params": {
        "code": "import subprocess, time; subprocess.Popen(['sleep', context['m']], start_new_session=True); time.sleep(60)",
        "context": {"m": marker}}})
    with anyio.fail_after(10):
        while not processes_matching(f"sleep\0{marker}"):
            await anyio.sleep(0.05)
    await provider.client.notify("$/cancelRequest", {"id": rid})
    resp = await provider.client.response_to(rid, timeout=10)
    assert resp["error"]["code"] == codes.CANCELLED
    assert processes_matching(f"sleep\0{marker}") == []


async def test_file_resolves_against_the_workflow_folder_and_shares_the_run_workspace(provider: ProviderProcess, tmp_path: Path) -> None:
    flow = tmp_path / "flow"
    flow.mkdir()
    (flow / "step.py").write_text("import os\nopen('note.txt', 'w').write(context['v'])\nresult = os.getcwd()\n")
    meta = {"workflowDir": str(flow), "runId": "run-1"}
    first = await execute(provider, {"file": "step.py", "context": {"v": "hello"}, "_meta": meta})
    assert "result" in first, first
    second = await execute(provider, {"code": "result = open('note.txt').read()", "_meta": meta})
    assert second["result"]["result"] == "hello"
    other_run = await execute(provider, {"code": "import os; result = os.path.exists('note.txt')", "_meta": {"runId": "run-2"}})
    assert other_run["result"]["result"] is False
    assert (tmp_path / "state" / "workspaces" / "run-1" / "note.txt").read_text() == "hello"
    missing = (await execute(provider, {"file": "nope.py", "_meta": meta}))["error"]["data"]
    assert missing["type"] == "FileNotFoundError" and missing["retryable"] is False


async def test_host_given_workspace_and_base_dir(provider: ProviderProcess, tmp_path: Path) -> None:
    scripts, ws = tmp_path / "scripts", tmp_path / "ws"
    scripts.mkdir()
    (scripts / "s.py").write_text("open('out.txt', 'w').write('x'); result = 7\n")
    resp = await execute(provider, {"file": "s.py", "base_dir": str(scripts), "_meta": {"workspace": str(ws)}})
    assert resp["result"]["result"] == 7 and (ws / "out.txt").read_text() == "x"


async def test_provider_environment_and_home_never_leak(provider: ProviderProcess, tmp_path: Path) -> None:
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    (tmp_path / "home" / ".ssh" / "id_ed25519").write_text(SECRET)
    code = ("import os\nout = [repr(dict(os.environ))]\n"
            "for p in [context['key'], '/proc/1/environ']:\n"
            "    try: out.append(open(p).read())\n"
            "    except OSError as e: out.append(str(e))\nresult = out\n")
    resp = await execute(provider, {"code": code, "context": {"key": str(tmp_path / "home" / ".ssh" / "id_ed25519")}})
    assert SECRET not in repr(resp)


async def test_killing_the_provider_fails_alone(provider: ProviderProcess) -> None:
    pids = [provider.process.pid, os.getpid()]
    code = "import os, signal\nfor p in context['pids']:\n    try: os.kill(p, signal.SIGKILL)\n    except OSError: pass\nresult = 1"
    await execute(provider, {"code": code, "context": {"pids": pids}})
    assert provider.process.returncode is None
    assert (await provider.client.request("ping", {}))["result"] == {}
    assert (await execute(provider, {"code": "result = 'still here'"}))["result"]["result"] == "still here"


async def test_ping_is_answered_during_an_output_flood(provider: ProviderProcess) -> None:
    rid = provider.client.next_id()
    await provider.client.send({"jsonrpc": "2.0", "id": rid, "method": "python/execute", "params": {
        "code": "import sys\nc = 'y' * (1 << 20)\nfor _ in range(256): sys.stdout.write(c)\nresult = 'done'",
        "timeout": 120}})
    assert (await provider.client.request("ping", {}, timeout=10))["result"] == {}
    resp = await provider.client.response_to(rid, timeout=120)
    assert resp["result"]["result"] == "done" and len(resp["result"]["stdout"]) < (1 << 20) + 200


async def test_health_reports_the_isolation_layers(provider: ProviderProcess) -> None:
    health = (await provider.client.request("health", {}))["result"]
    sb = health["sandbox"]
    assert health["status"] == "ok" and sb["path"] == "forkserver"
    assert {"process", "env", "rlimits"} <= set(sb["active"])
    assert set(sb["active"]) | set(sb["unavailable"]) >= {"uid", "pidns", "netns", "mountns", "landlock", "seccomp"}


async def test_sandbox_opt_ins_read_write_env(provider: ProviderProcess, tmp_path: Path) -> None:
    flow, ref, out = tmp_path / "flow", tmp_path / "ref", tmp_path / "out"
    for d in (flow, ref, out):
        d.mkdir()
    (ref / "in.txt").write_text("ref data")
    os.chown(out, 65534, 65534)
    code = ("import os\nopen(context['out'] + '/o.txt', 'w').write(open(context['ref'] + '/in.txt').read())\n"
            "result = os.environ['MODE']")
    params = {"code": code, "context": {"ref": str(ref), "out": str(out)}, "_meta": {"workflowDir": str(flow)},
              "sandbox": {"read": ["../ref"], "write": [str(out)], "env": {"MODE": "opt-in"}}}
    resp = await execute(provider, params)
    assert resp["result"]["result"] == "opt-in" and (out / "o.txt").read_text() == "ref data"
    closed = await execute(provider, {**params, "sandbox": {}})
    assert closed["error"]["data"]["type"] == "FileNotFoundError"  # neither path exists without the opt-in
    missing = await execute(provider, {**params, "sandbox": {"write": ["nope"]}})
    assert "sandbox.write path does not exist: nope" in missing["error"]["message"]


async def test_params_are_validated_against_the_schema(provider: ProviderProcess) -> None:
    for bad in ({}, {"code": "1", "file": "x.py"}, {"code": "1", "timeout": 0}, {"code": "1", "sandbox": {"cpu": 1}}):
        assert (await execute(provider, bad))["error"]["code"] == codes.INVALID_PARAMS, bad
