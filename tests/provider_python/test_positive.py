"""Positive controls: ordinary code works inside the full sandbox."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import pytest

from provider_python.sandbox.host import Sandbox
from provider_python.sandbox.policy import ExecRequest, SandboxPolicy

from .conftest import run

pytestmark = pytest.mark.anyio


async def test_stdlib_context_and_result(sandbox: Sandbox, workspace_dir: Path) -> None:
    code = (
        "import json, re, math, statistics, datetime, pathlib, hashlib, collections, sqlite3, zoneinfo\n"
        "db = sqlite3.connect(':memory:'); db.execute('create table t (x)'); db.execute('insert into t values (42)')\n"
        "print('mean', statistics.mean(context['xs']))\n"
        "result = {'sum': sum(context['xs']), 'sq': math.sqrt(16), 'db': db.execute('select x from t').fetchone()[0],\n"
        "          'sha': hashlib.sha256(b'x').hexdigest()[:8], 'tz': str(zoneinfo.ZoneInfo('UTC'))}\n"
    )
    res = await run(sandbox, code, workspace_dir, context={"xs": [1, 2, 3]})
    assert res.ok, (res.error_message, res.stderr)
    assert res.result == {"sum": 6, "sq": 4.0, "db": 42, "sha": "2d711642", "tz": "UTC"}
    assert res.stdout == "mean 2\n"


async def test_a_request_larger_than_the_control_socket_buffer_arrives_whole(sandbox: Sandbox, workspace_dir: Path) -> None:
    # The host sends what the socket takes before the slot is woken and the rest afterwards.
    blob = "".join(chr(0x61 + i % 26) for i in range(8 << 20))
    res = await run(sandbox, "import hashlib\nresult = [len(context['blob']), hashlib.sha256(context['blob'].encode()).hexdigest()]",
                    workspace_dir, context={"blob": blob})
    assert res.ok, (res.error_message, res.stderr)
    assert res.result == [len(blob), __import__("hashlib").sha256(blob.encode()).hexdigest()]


async def test_printed_json_does_not_change_the_result(sandbox: Sandbox, workspace_dir: Path) -> None:
    res = await run(sandbox, 'print(\'{"result": "forged"}\')\nresult = [1, 2]', workspace_dir)
    assert res.ok and res.result == [1, 2]
    assert res.stdout == '{"result": "forged"}\n'


async def test_missing_result_is_null(sandbox: Sandbox, workspace_dir: Path) -> None:
    res = await run(sandbox, "x = 1", workspace_dir)
    assert res.ok and res.result is None


async def test_file_handed_to_the_next_execution_through_the_workspace(sandbox: Sandbox, workspace_dir: Path) -> None:
    first = await run(sandbox, "open('handoff.txt', 'w').write('from task one')", workspace_dir)
    assert first.ok, first.error_message
    second = await run(sandbox, "result = open('handoff.txt').read()", workspace_dir)
    assert second.ok and second.result == "from task one"
    assert (workspace_dir / "handoff.txt").read_text() == "from task one"


async def test_file_script_in_the_read_only_workflow_folder(sandbox: Sandbox, workspace_dir: Path, tmp_path: Path) -> None:
    flow = tmp_path / "flow"
    flow.mkdir()
    (flow / "data.txt").write_text("41")
    (flow / "script.py").write_text("import pathlib\nresult = int(pathlib.Path(__file__).with_name('data.txt').read_text()) + context['inc']\n")
    res = await sandbox.run(ExecRequest(file=str(flow / "script.py"), context={"inc": 1}, workspace=str(workspace_dir),
                                        read_only=(str(flow),)))
    assert res.ok and res.result == 42
    denied = await sandbox.run(ExecRequest(code=f"open({str(flow / 'new.txt')!r}, 'w')", workspace=str(workspace_dir),
                                           read_only=(str(flow),)))
    assert not denied.ok and denied.error_type in ("OSError", "PermissionError")
    assert not (flow / "new.txt").exists()


async def test_subprocess_and_private_tmp(sandbox: Sandbox, workspace_dir: Path) -> None:
    code = ("import subprocess, tempfile\n"
            "with tempfile.NamedTemporaryFile('w', delete=False) as f: f.write('t')\n"
            "result = [subprocess.run(['echo', 'hi'], capture_output=True, text=True).stdout, open(f.name).read()]\n")
    res = await run(sandbox, code, workspace_dir)
    assert res.ok and res.result == ["hi\n", "t"], (res.error_message, res.stderr)


async def test_threads_multiprocessing_and_asyncio(sandbox: Sandbox, workspace_dir: Path) -> None:
    code = ("import asyncio, multiprocessing, threading\n"
            "def square(x): return x * x\n"
            "with multiprocessing.Pool(2) as pool: squares = pool.map(square, range(4))\n"
            "t = threading.Thread(target=squares.append, args=(99,)); t.start(); t.join()\n"
            "async def main(): return 'async'\n"
            "result = [squares, asyncio.run(main())]\n")
    res = await run(sandbox, code, workspace_dir)
    assert res.ok and res.result == [[0, 1, 4, 9, 99], "async"], (res.error_message, res.stderr)


async def test_env_opt_in_is_the_only_environment(sandbox: Sandbox, workspace_dir: Path) -> None:
    res = await sandbox.run(ExecRequest(code="import os; result = dict(os.environ)", workspace=str(workspace_dir),
                                        policy=SandboxPolicy(env={"GREETING": "hello"})))
    assert res.ok
    assert res.result["GREETING"] == "hello"
    assert set(res.result) == {"GREETING", "PATH", "LANG", "HOME", "TMPDIR", "PYTHONDONTWRITEBYTECODE"}


async def test_fresh_interpreter_path_runs_the_same_sandbox(tmp_path: Path, workspace_dir: Path) -> None:
    async with Sandbox(state_dir=tmp_path / "state", mode="fresh") as sb:
        assert sb.isolation()["path"] == "fresh"
        res = await run(sb, "import os; result = [os.getuid(), os.getpid()]", workspace_dir)
    assert res.ok and res.result == [65534, 2] or "uid" not in sb.isolation()["active"]  # PID 1 is its supervisor


async def test_a_dead_fork_server_is_replaced(sandbox: Sandbox, workspace_dir: Path) -> None:
    old = sandbox.forkserver_pid
    assert old is not None
    died = os.pidfd_open(old)
    try:
        os.kill(old, signal.SIGKILL)
        await anyio.wait_readable(died)  # readable once the process has exited
    finally:
        os.close(died)
    res = await run(sandbox, "result = 'after restart'", workspace_dir)
    assert res.ok and res.result == "after restart"
    assert sandbox.isolation()["path"] == "forkserver" and sandbox.forkserver_pid not in (None, old)


async def test_a_chain_takes_held_slots_only(sandbox: Sandbox, workspace_dir: Path) -> None:
    """Back-to-back executions never wait for a slot to be built: the fork server refills below
    its low-water mark at once, not only once the host pauses (a chain of three pools' worth)."""
    await run(sandbox, "pass", workspace_dir)  # the pool is handed over by now, or being so
    counts = sandbox.slot_counts
    assert counts is not None
    held, built = counts.held, counts.built
    for i in range(12):
        res = await run(sandbox, f"result = {i}", workspace_dir)
        assert res.ok and res.result == i, (res.error_message, res.stderr)
    assert (counts.held - held, counts.built - built) == (12, 0)


async def test_site_builtins_exist(sandbox: Sandbox, workspace_dir: Path) -> None:
    res = await run(sandbox, "result = 5\nexit(0)", workspace_dir)
    assert res.ok and res.result == 5


async def test_concurrent_executions_are_isolated(sandbox: Sandbox, workspace_dir: Path) -> None:
    results = {}

    async def one(i: int) -> None:
        results[i] = await run(sandbox, "import os, time\ntime.sleep(0.2)\nresult = [os.getpid(), context['i']]",
                               workspace_dir, context={"i": i})

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(one, i)
    assert [results[i].result for i in range(4)] == [[2, i] for i in range(4)]  # each the PID 2 of its own namespace


async def test_exit_without_a_result_is_reported(sandbox: Sandbox, workspace_dir: Path) -> None:
    res = await run(sandbox, "import os\nprint('bye', flush=True)\nos._exit(3)", workspace_dir)
    assert not res.ok and res.error_type == "ProcessExited" and "code 3" in res.error_message
    assert res.stdout == "bye\n"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
async def test_code_that_signals_itself_dies_of_the_signal(sandbox: Sandbox, workspace_dir: Path, sig: int) -> None:
    """As in any process: a default-action signal to oneself ends the task, reported as a failure
    (a namespace's init would ignore it and carry on to a null result)."""
    code = f"import os\nprint('before', flush=True)\nos.kill(os.getpid(), {int(sig)})\nresult = 'survived'"
    res = await run(sandbox, code, workspace_dir)
    assert not res.ok and res.result is None and res.error_type == "ProcessKilled"
    assert res.exit_signal == sig and signal.Signals(sig).name in res.error_message
    assert res.stdout == "before\n"


async def test_workspace_inside_a_private_root_owned_folder(sandbox: Sandbox, tmp_path: Path) -> None:
    """The workspace is entered through its bind mount, so folders above it may stay private; its
    files belong to the engine's user on disk (idmapped) or to the sandbox uid (fallback)."""
    flow = tmp_path / "private"
    flow.mkdir(mode=0o700)
    ws = flow / "workspaces" / "run-1"
    ws.mkdir(parents=True)
    res = await run(sandbox, "open('out.txt', 'w').write('x')\nresult = 'ran'", ws)
    assert res.ok and res.result == "ran", (res.error_type, res.error_message)
    assert (ws / "out.txt").read_text() == "x"
    assert not ws.stat().st_mode & 0o077  # never world-writable (it used to be 0777)
    if "idmap" in sandbox.isolation()["active"]:
        assert (ws / "out.txt").stat().st_uid == os.getuid()


async def test_workspace_changes_reach_the_disk_as_the_task_left_them(sandbox: Sandbox, workspace_dir: Path) -> None:
    """Through the quota's overlay: deletions, a folder replaced (opaque), a folder turned into a
    file, modes and symlinks arrive in the real workspace for the next task and the user."""
    first = ("import os\nos.makedirs('a/b'); open('a/b/c.txt', 'w').write('c')\nopen('gone.txt', 'w').write('g')\n"
             "os.makedirs('d'); open('d/old.txt', 'w').write('o')\nresult = 1")
    second = ("import os, shutil\nos.remove('gone.txt')\nshutil.rmtree('d'); os.mkdir('d'); open('d/new.txt', 'w').write('n')\n"
              "shutil.rmtree('a'); open('a', 'w').write('file now')\nos.chmod('a', 0o640)\nos.symlink('/nowhere', 'ln')\n"
              "result = sorted(os.listdir('.'))")
    assert (await run(sandbox, first, workspace_dir)).ok
    res = await run(sandbox, second, workspace_dir)
    assert res.ok and res.result == ["a", "d", "ln"], (res.error_type, res.error_message, res.result)
    assert sorted(p.name for p in workspace_dir.iterdir()) == ["a", "d", "ln"]
    assert (workspace_dir / "a").read_text() == "file now" and (workspace_dir / "a").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in (workspace_dir / "d").iterdir()) == ["new.txt"]
    assert os.readlink(workspace_dir / "ln") == "/nowhere"
    assert "diskquota" in sandbox.isolation()["active"]


async def test_over_quota_changes_are_discarded(sandbox: Sandbox, workspace_dir: Path) -> None:
    code = "open('big', 'wb').write(b'x' * (9 << 20))"
    res = await sandbox.run(ExecRequest(code=code, workspace=str(workspace_dir), policy=SandboxPolicy(disk_mb=8)))
    assert not res.ok and res.error_type == "DiskQuotaExceeded" and not res.retryable
    assert res.error_message.startswith("disk quota of 8 MiB exceeded")
    assert list(workspace_dir.iterdir()) == []
