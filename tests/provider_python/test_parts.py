"""The sandbox's pure parts: output cap, result records, workspace retention, request building."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import pytest

from provider_python import provider
from provider_python.sandbox import execute, workspace
from provider_python.sandbox.host import Sandbox
from provider_python.sandbox.output import BoundedOutput
from provider_python.sandbox.policy import SandboxPolicy

from .conftest import run


def test_bounded_output_keeps_the_head_and_counts_the_rest() -> None:
    out = BoundedOutput("stdout", 10)
    assert out.feed(b"hello ") == "hello "
    streamed = out.feed("wörld and more".encode())
    assert streamed.startswith("wör\n[") and "[stdout truncated at 10 bytes]" in streamed
    assert out.feed(b"x" * 1000) == ""
    text = out.text()
    assert out.truncated and out.total == 1021
    assert text.startswith("hello wör\n") and text.endswith("[stdout: 1021 bytes written in total, first 10 kept]\n")


def _record(code: str, **extra: object) -> dict:
    return json.loads(execute.run({"code": code, "context": {"n": 2}, **extra}))


@pytest.fixture(autouse=True)
def _keep_main(monkeypatch: pytest.MonkeyPatch) -> None:
    """execute.run installs the user's module as __main__ (it normally runs in a throw-away child)."""
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])


def test_records_for_results_exceptions_and_exits() -> None:
    assert _record("result = context['n'] * 21")["result"] == 42
    assert _record("import sys; result = 1; sys.exit(0)")["result"] == 1
    err = _record("import sys; sys.exit('bye')")["error"]
    assert err["type"] == "SystemExit" and err["message"] == "SystemExit: bye"
    syntax = _record("def (:")["error"]
    assert syntax["type"] == "SyntaxError" and 'File "<code>", line 1' in "\n".join(syntax["traceback"])
    nan = _record("result = float('nan')")["error"]
    assert nan["type"] == "ResultNotSerializable" and nan["retryable"] is False


def test_result_larger_than_the_message_limit_names_its_size() -> None:
    err = _record("result = 'x' * 5000", max_result_bytes=1000)["error"]
    assert err["type"] == "ResultTooLarge" and "5002 bytes" in err["message"] and "1000-byte" in err["message"]


def test_workspace_sweep_removes_only_stale_run_folders(tmp_path: Path) -> None:
    old, fresh = workspace.for_run(tmp_path, "run-old"), workspace.for_run(tmp_path, "../run-new")
    assert fresh.parent == tmp_path  # a run id cannot point outside the root
    for ws in (old, fresh):
        ws.mkdir()
    past = time.time() - 8 * 86400
    os.utime(old, (past, past))
    assert workspace.sweep(tmp_path, retention_days=7) == [str(old)]
    assert fresh.exists() and not old.exists()


@pytest.mark.anyio
async def test_no_sandbox_baseline_still_runs_in_a_child(tmp_path: Path) -> None:
    async with Sandbox(state_dir=tmp_path / "state", layers=()) as sb:
        assert sb.isolation()["level"] == "none"
        res = await run(sb, "import os; result = os.getpid()", tmp_path)
    assert res.ok and res.result != os.getpid()


def test_memory_default_is_the_policy_s_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """build_request leaves an unset sandbox.memory_mb to SandboxPolicy (one default, not two):
    a policy with another default is what a task without memory_mb gets."""

    @dataclasses.dataclass(frozen=True)
    class OtherDefault(SandboxPolicy):
        memory_mb: int = 333

    monkeypatch.setattr(provider, "SandboxPolicy", OtherDefault)
    settings = provider.Settings(state_dir=tmp_path)
    unset = provider.build_request({}, settings, code="result = 1", file=None, base_dir=None, context=None,
                                   timeout=None, sandbox={"network": False})
    given = provider.build_request({}, settings, code="result = 1", file=None, base_dir=None, context=None,
                                   timeout=None, sandbox={"memory_mb": 64})
    assert (unset.policy.memory_mb, given.policy.memory_mb) == (333, 64)
