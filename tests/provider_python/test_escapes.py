"""Real escape attempts against the full sandbox, judged by what the host sees afterwards."""

from __future__ import annotations

import os
import signal
import socket
import uuid
from pathlib import Path

import anyio
import pytest

from provider_python.sandbox.host import Sandbox
from provider_python.sandbox.policy import ExecRequest, SandboxPolicy

from .conftest import SECRET, processes_matching, run

pytestmark = pytest.mark.anyio


def _tcp_listener() -> socket.socket:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.setblocking(False)
    return srv


def _accepted(srv: socket.socket) -> bool:
    try:
        srv.accept()[0].close()
        return True
    except BlockingIOError:
        return False


async def test_no_network_reaches_a_loopback_listener_or_a_host_unix_socket(sandbox: Sandbox, workspace_dir: Path) -> None:
    tcp = _tcp_listener()
    port = tcp.getsockname()[1]
    unix_path = workspace_dir / "host.sock"  # inside the workspace, so only the socket layers stop it
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(unix_path))
    os.chmod(unix_path, 0o777)
    unix.listen(8)
    unix.setblocking(False)
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract_name = "\0gleitzeit-test-" + uuid.uuid4().hex
    abstract.bind(abstract_name)
    abstract.listen(8)
    abstract.setblocking(False)
    code = (
        "import socket\n"
        "out = []\n"
        "for fam, addr in [(socket.AF_INET, ('127.0.0.1', context['port'])), (socket.AF_INET6, ('::1', context['port'])),\n"
        "                  (socket.AF_UNIX, context['unix']), (socket.AF_UNIX, context['abstract'])]:\n"
        "    try:\n"
        "        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(2); s.connect(addr); out.append('connected')\n"
        "    except OSError as e:\n"
        "        out.append(type(e).__name__)\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 80); out.append('resolved')\n"
        "except OSError as e:\n"
        "    out.append(type(e).__name__)\n"
        "result = out\n"
    )
    res = await run(sandbox, code, workspace_dir, context={"port": port, "unix": str(unix_path),
                                                            "abstract": abstract_name})
    await anyio.sleep(0.2)
    assert not _accepted(tcp) and not _accepted(unix) and not _accepted(abstract)
    assert res.ok and "connected" not in res.result and "resolved" not in res.result, res.result
    for s in (tcp, unix, abstract):
        s.close()


async def test_network_opt_in_reaches_the_host_network(sandbox: Sandbox, workspace_dir: Path) -> None:
    tcp = _tcp_listener()
    code = "import socket; socket.create_connection(('127.0.0.1', context['port']), timeout=2).close()"
    res = await sandbox.run(ExecRequest(code=code, context={"port": tcp.getsockname()[1]}, workspace=str(workspace_dir),
                                        policy=SandboxPolicy(network=True)))
    assert res.ok, res.error_message
    await anyio.sleep(0.1)
    assert _accepted(tcp)
    tcp.close()


@pytest.mark.parametrize("network", [False, True])
async def test_landlock_holds_with_and_without_the_network_opt_in(sandbox: Sandbox, workspace_dir: Path,
                                                                  network: bool) -> None:
    """The two cases get their Landlock ruleset differently (built ahead of time, or when a
    `network: true` execution arrives): in both, the root folder cannot be listed although its
    mode would let anyone (only Landlock says no: no rule covers `/` itself), and the workspace
    can be written."""
    if "landlock" not in sandbox.isolation()["active"]:
        pytest.skip("Landlock is not available here")
    code = (
        "import os, stat\n"
        "assert stat.S_IMODE(os.stat('/').st_mode) & 0o005 == 0o005\n"
        "try:\n"
        "    listed = os.listdir('/')\n"
        "except OSError as exc:\n"
        "    listed = type(exc).__name__\n"
        "open('mine.txt', 'w').write('ok')\n"
        "result = listed\n"
    )
    res = await sandbox.run(ExecRequest(code=code, workspace=str(workspace_dir), policy=SandboxPolicy(network=network)))
    assert res.ok, res.error_message
    assert res.result == "PermissionError" and (workspace_dir / "mine.txt").read_text() == "ok"


async def test_secrets_of_the_host_never_appear(tmp_path: Path, workspace_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    key = home / ".ssh" / "id_rsa"
    key.write_text(f"-----BEGIN KEY-----\n{SECRET}\n")
    key.chmod(0o644)  # even world-readable it must stay invisible
    monkeypatch.setenv("GZ_ENGINE_SECRET", SECRET)
    monkeypatch.setenv("HOME", str(home))
    code = (
        "import os, glob\n"
        "seen = [repr(dict(os.environ))]\n"
        "for path in [context['key'], os.path.expanduser('~/.ssh/id_rsa'), '/proc/1/environ', '/proc/self/environ',\n"
        "             '/root/.bash_history', '/etc/shadow', *glob.glob('/proc/*/environ'), *glob.glob('/home/*/.ssh/*')]:\n"
        "    try:\n"
        "        seen.append(open(path, errors='replace').read())\n"
        "    except OSError as e:\n"
        "        seen.append(f'{path}: {e}')\n"
        "print('\\n'.join(seen))\n"
        "exec(open(context['key']).read())\n"
    )
    async with Sandbox(state_dir=tmp_path / "state") as sb:
        res = await run(sb, code, workspace_dir, context={"key": str(key)})
    everything = repr(res)
    assert SECRET not in everything
    assert "No such file or directory" in res.stdout  # the key's path does not even exist in there


async def test_no_file_appears_outside_the_workspace(sandbox: Sandbox, workspace_dir: Path, tmp_path: Path) -> None:
    marker = "gz-escape-" + uuid.uuid4().hex
    flow = tmp_path / "flow"
    flow.mkdir()
    targets = [f"/tmp/{marker}", f"/var/tmp/{marker}", f"/dev/shm/{marker}", f"/root/{marker}",
               f"{os.getcwd()}/{marker}", str(flow / marker), str(tmp_path / marker), f"/{marker}"]
    code = (
        "import os\n"
        "for t in context['targets']:\n"
        "    try:\n"
        "        os.makedirs(os.path.dirname(t), exist_ok=True); open(t, 'w').write('x')\n"
        "    except OSError:\n"
        "        pass\n"
        "open('inside.txt', 'w').write('ok')\n"
    )
    res = await sandbox.run(ExecRequest(code=code, context={"targets": targets}, workspace=str(workspace_dir),
                                        read_only=(str(flow),)))
    assert res.ok, res.error_message
    assert [t for t in targets if os.path.exists(t)] == []
    assert (workspace_dir / "inside.txt").read_text() == "ok"


async def test_no_process_survives_setsid_grandchildren(sandbox: Sandbox, workspace_dir: Path) -> None:
    marker = str(900000 + uuid.uuid4().int % 99999)
    code = (
        "import os, subprocess\n"
        "subprocess.Popen(['sleep', context['m']], start_new_session=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.execvp('sleep', ['sleep', context['m'] + '1'])\n"
        "    os._exit(0)\n"
        "import time; time.sleep(0.3)\n"
    )
    res = await run(sandbox, code, workspace_dir, context={"m": marker})
    assert res.ok, res.error_message
    assert processes_matching(f"sleep\0{marker}") == []


async def test_the_namespaces_pid_1_is_out_of_the_tasks_reach(sandbox: Sandbox, workspace_dir: Path) -> None:
    """PID 1 of the task's PID namespace is its supervisor (root, outside the sandbox, holding the
    host's end of the channels): the task can neither signal it nor look into it, and the
    execution is reported normally afterwards."""
    code = (
        "import os, signal\n"
        "tried = {}\n"
        "for name, attempt in [('kill', lambda: os.kill(1, signal.SIGKILL)), ('term', lambda: os.kill(1, signal.SIGTERM)),\n"
        "                      ('environ', lambda: open('/proc/1/environ').read()), ('fds', lambda: os.listdir('/proc/1/fd')),\n"
        "                      ('root', lambda: os.listdir('/proc/1/root/')), ('mem', lambda: open('/proc/1/mem', 'rb').read(1))]:\n"
        "    try:\n"
        "        attempt()\n"
        "        tried[name] = 'allowed'\n"
        "    except OSError as exc:\n"
        "        tried[name] = type(exc).__name__\n"
        "result = [os.getpid(), tried]\n"
    )
    res = await run(sandbox, code, workspace_dir)
    assert res.ok, res.error_message
    pid, tried = res.result
    assert pid == 2 and tried == {name: "PermissionError" for name in ("kill", "term", "environ", "fds", "root", "mem")}, tried


@pytest.mark.parametrize("disk_mb", [0, 16])
async def test_an_orphan_cannot_change_the_workspace_once_the_task_is_done(sandbox: Sandbox, workspace_dir: Path,
                                                                           disk_mb: int) -> None:
    """The result is reported only once the task's whole tree is dead: an orphan rewriting a file
    as fast as it can has stopped before the caller sees the result (with and without the quota)."""
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    n = 0\n"
        "    while True:\n"
        "        n += 1\n"
        "        with open('tick.tmp', 'w') as fh:\n"
        "            fh.write(str(n))\n"
        "        os.replace('tick.tmp', 'tick')\n"
        "time.sleep(0.2)\n"
        "result = 1\n"
    )
    res = await sandbox.run(ExecRequest(code=code, workspace=str(workspace_dir), policy=SandboxPolicy(disk_mb=disk_mb)))
    assert res.ok, res.error_message
    first = (workspace_dir / "tick").read_text()
    await anyio.sleep(0.3)
    assert int(first) > 0 and (workspace_dir / "tick").read_text() == first


async def test_no_sandbox_process_outlives_the_sandbox(tmp_path: Path, workspace_dir: Path) -> None:
    """Every process an execution used (supervisor, its namespace's PID 1, the child) is gone once
    the sandbox is: after a plain task, one whose workspace changes are copied back (the
    supervisor drops to the sandbox's uid for that), one leaving an orphan, and a timed-out one."""
    state = tmp_path / "state"
    async with Sandbox(state_dir=state) as sb:
        for code, timeout in (("result = 1", 10.0), ("open('out.txt', 'w').write('x')", 10.0),
                              ("import os, time\nif os.fork() == 0:\n    time.sleep(60)\n", 10.0),
                              ("while True: pass", 1.0)):
            await sb.run(ExecRequest(code=code, workspace=str(workspace_dir), timeout=timeout))
    assert (workspace_dir / "out.txt").read_text() == "x"
    with anyio.move_on_after(10):
        while processes_matching(str(state)):
            await anyio.sleep(0.05)
    assert processes_matching(str(state)) == []


async def test_no_process_survives_a_fork_flood(sandbox: Sandbox, workspace_dir: Path) -> None:
    marker = str(300000 + uuid.uuid4().int % 99999)
    code = (
        "import os\n"
        "n = 0\n"
        "try:\n"
        "    while n < 10000:\n"
        "        if os.fork() == 0:\n"
        "            os.execvp('sleep', ['sleep', context['m']])\n"
        "        n += 1\n"
        "except OSError as e:\n"
        "    result = [n, type(e).__name__]\n"
    )
    res = await run(sandbox, code, workspace_dir, context={"m": marker})
    assert res.ok and res.result[1] == "BlockingIOError" and res.result[0] < 64, res
    assert processes_matching(f"sleep\0{marker}") == []


async def test_timeout_kills_the_whole_tree(sandbox: Sandbox, workspace_dir: Path) -> None:
    marker = str(800000 + uuid.uuid4().int % 99999)
    code = "import subprocess; subprocess.Popen(['sleep', context['m']], start_new_session=True)\nwhile True: pass\n"
    res = await run(sandbox, code, workspace_dir, context={"m": marker}, timeout=1.0)
    assert res.timed_out and res.error_message == "timed out after 1 s"
    assert processes_matching(f"sleep\0{marker}") == []


async def test_cancellation_kills_the_whole_tree(sandbox: Sandbox, workspace_dir: Path) -> None:
    marker = str(700000 + uuid.uuid4().int % 99999)
    code = "import subprocess, time; subprocess.Popen(['sleep', context['m']], start_new_session=True); time.sleep(60)"
    with anyio.move_on_after(1.0):
        await run(sandbox, code, workspace_dir, context={"m": marker})
    assert processes_matching(f"sleep\0{marker}") == []


async def test_memory_bomb_fails_the_task_only(sandbox: Sandbox, workspace_dir: Path) -> None:
    res = await sandbox.run(ExecRequest(code="chunks = []\nwhile True: chunks.append(bytearray(16 << 20))",
                                        workspace=str(workspace_dir), policy=SandboxPolicy(memory_mb=256)))
    assert not res.ok and res.error_type == "MemoryError"
    big = await run(sandbox, "x = bytearray(8 << 30)", workspace_dir)  # over the default 1 GiB
    assert not big.ok and big.error_type == "MemoryError"
    after = await run(sandbox, "result = 'alive'", workspace_dir)
    assert after.ok and after.result == "alive"


async def test_stdout_flood_is_bounded_and_the_host_stays_responsive(sandbox: Sandbox, workspace_dir: Path) -> None:
    flood = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024): sys.stdout.write(chunk)\nresult = 'done'\n"
    results = {}

    async def flood_task() -> None:
        results["flood"] = await run(sandbox, flood, workspace_dir, timeout=120)

    async with anyio.create_task_group() as tg:
        tg.start_soon(flood_task)
        await anyio.sleep(0.2)
        results["other"] = await run(sandbox, "result = 2", workspace_dir)
    res = results["flood"]
    assert results["other"].ok and results["other"].result == 2
    assert res.ok and res.result == "done"
    assert res.stdout_truncated and len(res.stdout) < (1 << 20) + 200
    assert "1073741824 bytes written in total" in res.stdout


async def test_code_cannot_kill_the_engine_or_the_provider(sandbox: Sandbox, workspace_dir: Path) -> None:
    code = (
        "import os, signal\n"
        "out = []\n"
        "for pid in context['pids'] + [-1]:\n"
        "    try:\n"
        "        os.kill(pid, signal.SIGKILL); out.append('sent')\n"
        "    except OSError as e:\n"
        "        out.append(type(e).__name__)\n"
        "result = out\n"
    )
    fs_pid = sandbox.forkserver_pid or os.getpid()
    res = await run(sandbox, code, workspace_dir, context={"pids": [os.getpid(), os.getppid(), fs_pid]})
    os.kill(fs_pid, 0)  # still there
    after = await run(sandbox, "result = 'ok'", workspace_dir)
    assert after.ok and after.result == "ok"
    assert res.exit_signal in (None, signal.SIGKILL)  # kill(-1) may take the sandbox itself down, nothing else


async def test_oversized_output_file_fails_with_a_clear_error(sandbox: Sandbox, workspace_dir: Path) -> None:
    res = await sandbox.run(ExecRequest(code="open('big', 'wb').write(b'x' * (3 << 20))", workspace=str(workspace_dir),
                                        policy=SandboxPolicy(max_file_bytes=1 << 20)))
    assert not res.ok and res.error_type == "OSError" and "File too large" in res.error_message
    assert (workspace_dir / "big").stat().st_size <= 1 << 20


async def test_a_root_only_script_is_opened_as_the_sandbox_user(sandbox: Sandbox, workspace_dir: Path,
                                                                tmp_path: Path) -> None:
    """The provider runs as root, the script is 0600 root in a readable folder: it is opened inside
    the sandbox after the uid drop, so neither the code nor its first line (a syntax error) leaks."""
    if "uid" not in sandbox.isolation()["active"]:
        pytest.skip("needs the uid layer (provider running as root)")
    flow = tmp_path / "flow"
    flow.mkdir()
    tmp_path.chmod(0o755)
    flow.chmod(0o755)
    script = flow / "step.py"
    script.write_text(f"{SECRET} = not python\n")
    script.chmod(0o600)
    res = await sandbox.run(ExecRequest(file=str(script), workspace=str(workspace_dir), read_only=(str(flow),)))
    assert not res.ok and res.error_type == "PermissionError"
    assert SECRET not in repr(res)


async def test_hidden_paths_stay_hidden_inside_a_visible_folder(sandbox: Sandbox, tmp_path: Path) -> None:
    """The engine's store inside the workflow folder: covered, while the run's own workspace (inside
    it too) stays usable."""
    flow = tmp_path / "flow"
    store = flow / ".gleitzeit"
    ws = store / "workspaces" / "run-1"
    other = store / "workspaces" / "run-0"
    for folder in (ws, other):
        folder.mkdir(parents=True)
    (store / "workflows.db").write_text(SECRET)
    (other / "note.txt").write_text(SECRET)
    (flow / "data.txt").write_text("visible")
    for folder in (tmp_path, flow):
        folder.chmod(0o755)
    code = ("import os\nseen = []\nfor root, dirs, files in os.walk(context['flow']):\n"
            "    for f in files:\n        try:\n            seen.append(open(os.path.join(root, f)).read())\n"
            "        except OSError:\n            pass\nopen('mine.txt', 'w').write('x')\nresult = seen")
    res = await sandbox.run(ExecRequest(code=code, context={"flow": str(flow)}, workspace=str(ws),
                                        read_only=(str(flow),), hidden=(str(store),)))
    assert res.ok, res.error_message
    assert "visible" in res.result and SECRET not in repr(res)
    assert (ws / "mine.txt").read_text() == "x"


async def test_a_mask_keeps_the_python_installation_inside_it(sandbox: Sandbox, workspace_dir: Path) -> None:
    """A venv inside the hidden home (e.g. ~/.gleitzeit/venv): the mask over the home must not take
    the task's packages away."""
    from provider_python.sandbox.interpreter import TaskPython

    task = TaskPython.from_json(sandbox._env["GLEITZEIT_SANDBOX_INTERPRETER"])  # noqa: SLF001 - what the sandbox mounts
    site = next((p for p in task.sys_path if p.endswith("-packages")), None)
    assert site is not None
    mount = next(m for m in task.mounts if site == m or site.startswith(m + os.sep))
    parent = os.path.dirname(mount)
    if parent == "/" or os.path.dirname(parent) == "/":
        pytest.skip(f"the python installation {mount} sits right under /: no folder above it to hide")
    code = "import os\nresult = len(os.listdir(context['site']))"
    res = await sandbox.run(ExecRequest(code=code, context={"site": site}, workspace=str(workspace_dir),
                                        read_only=(os.path.dirname(parent),), hidden=(parent,)))
    assert res.ok and res.result == len(os.listdir(site)), (res.error_type, res.error_message, res.result)
