"""A task whose workflow has no `sandbox:` block runs in the closed sandbox docs/security.md
describes, with its documented limits, as the task itself observes them; and a policy is a
snapshot of what it was given. The mutation-testing selection for
provider_python/sandbox/policy.py (docs/testing.md): one sandbox start, a few executions."""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

import pytest

from provider_python.sandbox.host import Sandbox
from provider_python.sandbox.policy import ExecRequest, SandboxPolicy
from tests.provider_python.conftest import run

pytestmark = pytest.mark.anyio
MIB = 1 << 20

PROBE = """
import os, resource, socket
def reaches(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return True
    except OSError:
        return False
lim = lambda r: list(resource.getrlimit(r))
fs = os.statvfs(".")
result = {"as": lim(resource.RLIMIT_AS), "cpu": lim(resource.RLIMIT_CPU), "nofile": lim(resource.RLIMIT_NOFILE),
          "fsize": lim(resource.RLIMIT_FSIZE), "nproc": lim(resource.RLIMIT_NPROC), "core": lim(resource.RLIMIT_CORE),
          "reaches": reaches(context["port"]),
          "workspace_mb": fs.f_blocks * fs.f_frsize // (1 << 20)}
"""


async def test_no_sandbox_block_means_the_documented_limits_and_no_network(sandbox: Sandbox, workspace_dir: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as host_port:  # a service on the host's loopback
        host_port.setblocking(False)
        res = await run(sandbox, PROBE, workspace_dir, context={"port": host_port.getsockname()[1]})
        with pytest.raises(BlockingIOError):
            host_port.accept()  # nothing came in from the task
    assert res.ok, (res.error_type, res.error_message, res.traceback)
    active = sandbox.isolation()["active"]
    assert res.result["as"] == [1024 * MIB] * 2  # memory_mb 1024
    assert res.result["cpu"] == [61, 62]  # the default timeout (60 s) + 1, then SIGKILL
    assert res.result["nofile"] == [256, 256]
    assert res.result["fsize"] == [256 * MIB] * 2
    assert res.result["core"] == [0, 0]
    if "uid" in active or "userns" in active:
        assert res.result["nproc"] == [64, 64]
    assert "netns" in active and res.result["reaches"] is False
    assert "diskquota" in active and res.result["workspace_mb"] == 1024


async def test_a_successful_execution_reports_nothing_went_wrong(sandbox: Sandbox, workspace_dir: Path) -> None:
    res = await run(sandbox, "print('hi')\nresult = 2", workspace_dir)
    assert (res.ok, res.result, res.stdout, res.stderr) == (True, 2, "hi\n", "")
    assert (res.error_type, res.error_message, res.traceback, res.exit_signal) == (None, None, None, None)
    assert (res.timed_out, res.stdout_truncated, res.stderr_truncated) == (False, False, False)
    assert res.duration_ms > 0 and res.wall_ms > 0


async def test_output_is_bounded_at_one_mib_per_stream_by_default(sandbox: Sandbox, workspace_dir: Path) -> None:
    code = "import sys\nsys.stdout.write('o' * (2 << 20))\nsys.stderr.write('e' * ((1 << 20) - 4096))"
    res = await run(sandbox, code, workspace_dir)
    assert res.ok and res.stdout_truncated and not res.stderr_truncated
    assert MIB - 4096 <= len(res.stdout.encode()) <= MIB + 4096 and res.stderr == "e" * (MIB - 4096)


async def test_a_result_over_16_mib_is_refused_by_default(sandbox: Sandbox, workspace_dir: Path) -> None:
    res = await run(sandbox, "result = 'x' * (16 << 20)", workspace_dir)  # 16 MiB and its two quotes
    assert not res.ok and res.result is None
    res = await run(sandbox, "result = 'x' * (15 << 20)", workspace_dir)
    assert res.ok and len(res.result) == 15 * MIB


async def test_a_timed_out_execution_is_retryable_and_timed_by_the_host(sandbox: Sandbox, workspace_dir: Path) -> None:
    res = await run(sandbox, "import time\ntime.sleep(30)", workspace_dir, timeout=1.0)
    assert (res.ok, res.timed_out, res.retryable) == (False, True, True)
    assert res.duration_ms == res.wall_ms > 0  # no time from the child: the host's own measure


def test_policies_and_requests_cannot_be_changed_once_made() -> None:
    policy, request = SandboxPolicy(), ExecRequest(code="result = 1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.network = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.policy = SandboxPolicy(network=True)  # type: ignore[misc]


async def test_a_policy_is_a_snapshot_of_what_it_was_given(sandbox: Sandbox, workspace_dir: Path, tmp_path: Path) -> None:
    allowed, later = tmp_path / "allowed", tmp_path / "later"
    for folder in (allowed, later):
        folder.mkdir()
        (folder / "f.txt").write_text(folder.name)
    read, env = [str(allowed)], {"A": "1"}
    policy = SandboxPolicy(read=read, env=env)  # type: ignore[arg-type]
    read.append(str(later))
    env["B"] = "2"
    code = (f"import os\ndef can(p):\n    try:\n        return open(p).read()\n    except OSError:\n        return None\n"
            f"result = [can({str(allowed / 'f.txt')!r}), can({str(later / 'f.txt')!r}), "
            "os.environ.get('A'), os.environ.get('B')]")
    res = await sandbox.run(ExecRequest(code=code, workspace=str(workspace_dir), policy=policy))
    assert res.ok, (res.error_type, res.error_message)
    assert res.result == ["allowed", None, "1", None]
    assert isinstance(policy.read, tuple) and not hasattr(policy.env, "__setitem__")
    assert os.path.isdir(later)
