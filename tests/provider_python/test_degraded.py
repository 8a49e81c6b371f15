"""Layer-by-layer fallback, for real, in two restricted environments:

* `no-namespaces`: the provider runs under a seccomp filter that forbids namespaces and uid
  changes (like Docker's default profile); Landlock, seccomp, rlimits and the subreaper remain.
* `rootless`: the provider runs as root of its own user namespace (like a rootless container):
  namespaces work, device nodes and the uid drop do not.

The remaining layers must still stop the same escapes, and `require: strict` must refuse."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gleitzeit_sdk import codes
from gleitzeit_sdk.testing import ProviderProcess, spawn

from .conftest import SECRET, processes_matching
from provider_python.sandbox.interpreter import ENV_VAR, TaskPython

pytestmark = pytest.mark.anyio

NO_NAMESPACES = (
    "import errno, pyseccomp as s\n"
    "f = s.SyscallFilter(s.ALLOW)\n"
    "for n in ('unshare', 'setresuid', 'setresgid', 'setgroups'): f.add_rule(s.ERRNO(errno.EPERM), n)\n"
    "f.load()\n"
    "import runpy; runpy.run_module('provider_python', run_name='__main__', alter_sys=True)\n"
)


ENVIRONMENTS = {
    "no-namespaces": ([sys.executable, "-c", NO_NAMESPACES], {"uid", "pidns", "mountns", "netns", "ipcns"},
                      {"landlock", "seccomp", "rlimits", "subreaper"}),
    "rootless": (["unshare", "--user", "--map-root-user", sys.executable, "-m", "provider_python"], {"uid"},
                 {"pidns", "mountns", "netns", "landlock", "seccomp", "rlimits"}),
}


@pytest.fixture(params=list(ENVIRONMENTS))
def environment(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def degraded(tmp_path: Path, environment: str) -> AsyncIterator[ProviderProcess]:
    env = {"PATH": os.environ["PATH"], "GZ_PROVIDER_SECRET": SECRET}
    async with spawn(ENVIRONMENTS[environment][0], env=env, cwd=str(tmp_path)) as proc:
        await proc.client.handshake(timeout=20, config={"sandbox": {"state_dir": str(tmp_path / "state")}})
        yield proc


async def test_health_says_which_layers_are_missing(degraded: ProviderProcess, environment: str) -> None:
    sb = (await degraded.client.request("health", {}))["result"]["sandbox"]
    _, missing, active = ENVIRONMENTS[environment]
    assert sb["level"] == "partial"
    assert set(sb["unavailable"]) == missing
    assert active <= set(sb["active"])


async def test_strict_refuses_to_start(tmp_path: Path, environment: str) -> None:
    async with spawn(ENVIRONMENTS[environment][0], env={"PATH": os.environ["PATH"]}) as proc:
        resp = await proc.client.request("initialize", {
            "protocolVersion": "1", "host": {"name": "t", "version": "0"}, "capabilities": {},
            "config": {"sandbox": {"require": "strict", "state_dir": str(tmp_path)}}}, timeout=20)
    assert resp["error"]["code"] == codes.PROVIDER_ERROR
    assert "require=strict" in resp["error"]["message"] and "uid (" in resp["error"]["message"]


async def test_escapes_still_fail(degraded: ProviderProcess, tmp_path: Path) -> None:
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(4)
    tcp.setblocking(False)
    key = tmp_path / "id_rsa"
    key.write_text(SECRET)
    marker = str(400000 + uuid.uuid4().int % 99999)
    outside = tmp_path / ("escape-" + marker)
    code = (
        "import os, socket, subprocess, signal\n"
        "out = [repr(dict(os.environ))]\n"
        "for attempt in (lambda: socket.create_connection(('127.0.0.1', context['port']), timeout=2),\n"
        "                lambda: open(context['key']).read(),\n"
        "                lambda: open(context['outside'], 'w').write('x'),\n"
        "                lambda: os.kill(context['provider'], signal.SIGKILL)):\n"
        "    try:\n"
        "        out.append('escaped: ' + repr(attempt()))\n"
        "    except OSError as e:\n"
        "        out.append(type(e).__name__)\n"
        "subprocess.Popen(['sleep', context['m']], start_new_session=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.execvp('sleep', ['sleep', context['m']])\n"
        "    os._exit(0)\n"
        "result = out\n"
    )
    resp = await degraded.client.request("python/execute", {"code": code, "context": {
        "port": tcp.getsockname()[1], "key": str(key), "outside": str(outside), "provider": degraded.process.pid,
        "m": marker}}, timeout=30)
    assert "result" in resp, resp
    assert SECRET not in repr(resp)
    connect, read_key, _, kill = resp["result"]["result"][1:]  # the write is judged on the host below
    assert not any(a.startswith("escaped") for a in (connect, read_key, kill)), resp["result"]["result"]
    with pytest.raises(BlockingIOError):
        tcp.accept()
    assert not outside.exists()
    assert processes_matching(f"sleep\0{marker}") == []
    assert degraded.process.returncode is None
    assert (await degraded.client.request("ping", {}))["result"] == {}


def _system_python() -> str | None:
    """An interpreter an unprivileged user can run (ours may live under a private home)."""
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(cand, os.X_OK):
            out = subprocess.run([cand, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                                 capture_output=True, text=True, user=65534, group=65534, cwd="/")
            if out.stdout.strip() == "True":
                return cand
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to uid 65534 to act as an unprivileged user")
def test_unprivileged_user_gets_namespaces_through_a_user_namespace() -> None:
    python = _system_python()
    if python is None:
        pytest.skip("no system python >= 3.11 runnable by an unprivileged user")
    stage = tempfile.mkdtemp()
    try:
        os.chown(stage, 65534, 65534)
        repo = str(Path(__file__).resolve().parents[2])
        out = subprocess.run([python, "-I", "-c", "import sys, runpy; sys.path.insert(0, sys.argv.pop(1)); "
                              "runpy.run_module('provider_python.sandbox.probe', run_name='__main__', alter_sys=True)",
                              repo, stage], capture_output=True, text=True, user=65534, group=65534, cwd="/", timeout=60,
                             env={ENV_VAR: TaskPython(python, (), ()).to_json()})
    finally:
        os.rmdir(stage)
    layers = json.loads(out.stdout)
    assert layers["uid"] is not True  # an unprivileged user cannot become uid 65534 ...
    assert all(layers[k] is True for k in ("pidns", "mountns", "netns", "landlock", "caps")), layers  # ... but gets these
