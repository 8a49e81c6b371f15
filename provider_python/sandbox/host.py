"""The provider's side of the sandbox: owns the fork server (through forkserver_client.ForkServer), launches one supervised child per
execution, streams and caps its output, enforces the wall-clock timeout and turns what it
observed into an `ExecResult`.

Execution path: the warm fork server (default) or, when it cannot start or keeps dying, a fresh
interpreter per execution. Both run the same supervisor/child code; only the fork origin differs.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Literal

import anyio
from anyio.abc import Process

from gleitzeit_sdk import jsonlimits
from provider_python.sandbox import workspace
from provider_python.sandbox.child import SANDBOX_UID
from provider_python.sandbox.forkserver_client import START_TIMEOUT, ForkServer, SlotCounts
from provider_python.sandbox.interpreter import ENV_VAR, TaskPython, describe
from provider_python.sandbox.output import BoundedOutput
from provider_python.sandbox.policy import ExecRequest, ExecResult
from provider_python.sandbox.probe import ALWAYS, LAYERS
from provider_python.sandbox.processes import SandboxUnavailable, bounded_wait

log = logging.getLogger("gleitzeit.provider_python.sandbox")

OutputCallback = Callable[[str, str], Awaitable[None]]
Mode = Literal["auto", "forkserver", "fresh"]

KILL_GRACE = 5.0  # after a kill request the supervisor reports within ms; this only bounds bugs
DRAIN_GRACE = 2.0  # output pipes close with the last sandboxed process
PIPE_SIZE = 1 << 20
READ_CHUNK = 1 << 20
_CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _module_argv(python: str, task: TaskPython, module: str, *args: str) -> list[str]:
    """`python -I -S` running `module`: isolated from PYTHON* variables and without site
    processing (.pth hooks belong to the host's environment and can cost tens of ms). It imports
    from the task interpreter's own path, plus this package and `pyseccomp` from the engine's
    environment (the task environment need not have gleitzeit installed)."""
    spec = importlib.util.find_spec("pyseccomp")
    extra = [os.path.dirname(spec.origin)] if spec is not None and spec.origin else []
    paths = [_PACKAGE_ROOT, *task.sys_path, *extra]
    boot = (f"import sys, runpy; sys.path[:] = {paths!r}; "
            f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")
    return [python, "-I", "-S", "-c", boot, *args]


async def describe_interpreter(python: str) -> TaskPython:
    """Ask the task interpreter (with `site`, without PYTHON* variables) what it imports from; when
    it is this very interpreter, started with `site` (the provider is), without a subprocess."""
    if python == sys.executable and not sys.flags.no_site:
        return describe()
    boot = (f"import sys, runpy; sys.path.insert(0, {_PACKAGE_ROOT!r}); "
            "runpy.run_module('provider_python.sandbox.interpreter', run_name='__main__')")
    try:
        with anyio.fail_after(START_TIMEOUT):
            proc = await anyio.run_process([python, "-E", "-c", boot], env=_CLEAN_ENV, cwd="/", check=False)
    except (OSError, TimeoutError) as exc:
        raise SandboxUnavailable(f"python sandbox: cannot run the task interpreter {python}: {exc}") from exc
    if proc.returncode != 0:
        raise SandboxUnavailable(f"python sandbox: the task interpreter {python} failed: "
                                 f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
    return TaskPython.from_json(proc.stdout.decode())


@dataclass
class _Channels:
    """Host ends and child ends of one execution's pipes and control socket."""

    ctl: socket.socket
    ctl_child: socket.socket
    stdout: int
    stderr: int
    result: int
    child_fds: tuple[int, int, int] = field(default=(-1, -1, -1))

    @classmethod
    def open(cls) -> "_Channels":
        ctl, ctl_child = socket.socketpair()
        pipes = [os.pipe() for _ in range(3)]
        for read_end, _ in pipes[:2]:
            try:
                fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass  # fewer wake-ups with a bigger pipe; correctness does not depend on it
        for read_end, _ in pipes:
            os.set_blocking(read_end, False)
        ctl.setblocking(False)
        (out_r, out_w), (err_r, err_w), (res_r, res_w) = pipes
        return cls(ctl, ctl_child, out_r, err_r, res_r, (out_w, err_w, res_w))

    def fds_for_child(self) -> list[int]:
        return [self.ctl_child.fileno(), *self.child_fds]

    def close_child_ends(self) -> None:
        self.ctl_child.close()
        for fd in self.child_fds:
            _close(fd)
        self.child_fds = (-1, -1, -1)

    def close(self) -> None:
        self.close_child_ends()
        self.ctl.close()
        for fd in (self.stdout, self.stderr, self.result):
            _close(fd)


class Sandbox:
    """Async context manager running sandboxed executions.

    `layers=None` wants every layer; pass an explicit subset (e.g. `()` for the benchmark's
    "no sandbox" baseline) to run with fewer. With `require="strict"` entering fails unless every
    wanted layer is available. `idle_slots`: sandboxes the fork server keeps prepared; at least
    the caller's in-flight limit, or part of a burst waits for one to be built.
    """

    def __init__(self, *, state_dir: str | os.PathLike[str], mode: Mode = "auto",
                 require: Literal["best", "strict"] = "best", layers: Iterable[str] | None = None,
                 python: str = sys.executable, idle_slots: int = 4):
        self._state_dir = os.path.abspath(state_dir)
        self._mode: Mode = mode
        self._require = require
        self._wanted = tuple(LAYERS) if layers is None else tuple(dict.fromkeys([*ALWAYS, *layers]))
        self._python = python
        self._idle_slots = idle_slots
        self._task = TaskPython(python, (), ())
        self._env = dict(_CLEAN_ENV)
        self._path = "none"
        self._active: tuple[str, ...] = ()
        self._unavailable: dict[str, str] = {}
        self._landlock_abi = 0
        self._stage = ""
        self._quota_dir = ""
        self._forkserver: ForkServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> "Sandbox":
        self._stage = os.path.join(self._state_dir, "sandbox-root")  # only a mount point, in private namespaces
        os.makedirs(self._stage, mode=0o700, exist_ok=True)
        self._quota_dir = os.path.join(self._state_dir, "sandbox-quota")  # the same, for workspace quotas
        os.makedirs(self._quota_dir, mode=0o700, exist_ok=True)
        try:
            self._task = await describe_interpreter(self._python)
            self._env = {**_CLEAN_ENV, ENV_VAR: self._task.to_json()}
            available = await self._start()
            self._choose_layers(available)
            if self._forkserver is not None:
                self._forkserver.configure(self._active, self._idle_slots)
            await self._smoke_test()
        except BaseException:
            await self._stop()
            raise
        log.info("python sandbox: %s path, active layers: %s%s", self._path, ", ".join(self._active),
                 "".join(f"; unavailable {k}: {v}" for k, v in self._unavailable.items()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop()

    def isolation(self) -> dict[str, Any]:
        """Which layers protect executions, and which are missing (with the reason)."""
        missing = [k for k in self._unavailable if k not in ("subreaper", "idmap")]  # conveniences, not walls
        return {"path": self._path, "active": list(self._active), "unavailable": dict(self._unavailable),
                "level": "none" if len(self._active) <= len(ALWAYS) else ("partial" if missing else "full"),
                "landlock_abi": self._landlock_abi if "landlock" in self._active else 0,
                "python": self._task.executable}

    @property
    def forkserver_pid(self) -> int | None:
        """The fork server process's pid, while executions go through one."""
        return self._forkserver.pid if self._path == "forkserver" and self._forkserver else None

    @property
    def slot_counts(self) -> SlotCounts | None:
        """How many executions took a held slot and how many had one built, while executions go
        through a fork server."""
        return self._forkserver.counts if self._path == "forkserver" and self._forkserver else None

    @property
    def sandbox_uid(self) -> int | None:
        """Owner to give writable folders (the workspace), or None when none is needed: the uid is
        not dropped, or writable folders are bound idmapped (root's files appear as the sandbox's)."""
        return SANDBOX_UID if "uid" in self._active and "idmap" not in self._active else None

    async def _start(self) -> dict[str, Any]:
        if self._mode in ("auto", "forkserver"):
            forkserver = ForkServer(lambda fd: _module_argv(self._python, self._task, "provider_python.sandbox.forkserver",
                                                            str(fd), self._stage), self._env)
            try:
                info = await forkserver.start()
                self._forkserver, self._path = forkserver, "forkserver"
                return info["layers"]
            except (OSError, SandboxUnavailable, anyio.BrokenResourceError, ValueError) as exc:
                if self._mode == "forkserver":
                    raise SandboxUnavailable(f"python sandbox: fork server failed to start: {exc}") from exc
                log.warning("python sandbox: fork server unavailable (%s); using a fresh interpreter per execution", exc)
        self._path = "fresh"
        return await self._probe_fresh()

    def _choose_layers(self, available: dict[str, Any]) -> None:
        self._landlock_abi = int(available.get("landlock_abi", 0))
        wanted = list(self._wanted)
        if "pidns" in wanted and available.get("pidns") is True:
            wanted = [w for w in wanted if w != "subreaper"]  # a namespace's PID 1 already reaps all
        if not (available.get("uid") is True and available.get("mountns") is True and "uid" in wanted):
            wanted = [w for w in wanted if w != "idmap"]  # only a dropped uid needs its writes translated
        if available.get("mountns") is not True:
            wanted = [w for w in wanted if w != "diskquota"]  # the quota is a mount in the sandbox's namespace
        self._active = tuple(w for w in wanted if available.get(w) is True)
        self._unavailable = {w: str(available.get(w, "unknown layer")) for w in wanted if w not in self._active}
        if self._require == "strict" and self._unavailable:
            raise SandboxUnavailable("python sandbox: require=strict but these layers are unavailable: " +
                                     "; ".join(f"{k} ({v})" for k, v in self._unavailable.items()))

    async def _smoke_test(self) -> None:
        ws = os.path.join(self._state_dir, "smoke")
        req = ExecRequest(code="result = 1", timeout=10.0, workspace=ws)
        res = await self.run(req)
        if not res.ok or res.result != 1:
            raise SandboxUnavailable(f"python sandbox: self-test failed: {res.error_type}: {res.error_message} "
                                     f"{res.stderr.strip()[-500:]}")

    async def _probe_fresh(self) -> dict[str, Any]:
        proc = await anyio.run_process(_module_argv(self._python, self._task, "provider_python.sandbox.probe", self._stage),
                                       env=self._env, cwd="/", check=False)
        if proc.returncode != 0:
            raise SandboxUnavailable(f"python sandbox: probe failed: {proc.stderr.decode(errors='replace')[-500:]}")
        return json.loads(proc.stdout)

    async def _stop(self) -> None:
        if self._forkserver is not None:
            await self._forkserver.stop()

    # -- executions --------------------------------------------------------------------------

    async def run(self, req: ExecRequest, on_output: OutputCallback | None = None) -> ExecResult:
        """Run one execution to completion, timeout or cancellation; never raises for user faults."""
        started = time.perf_counter()
        tmpdir = ""
        try:
            tmpdir = self._private_tmp()
            wire = (json.dumps(self._wire_request(req, tmpdir)) + "\n").encode()
        except OSError as exc:
            if tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)
            return ExecResult(ok=False, error_type="SandboxError", error_message=f"cannot prepare the sandbox: {exc}")
        ex = _Execution.open(req, on_output)
        ch, events, outcome = ex.ch, ex.events, ex.outcome
        proc: Process | None = None
        try:
            # The request goes first, as far as the socket's buffer takes it: the supervisor then
            # finds it waiting when the fds wake it, instead of being woken a second time for it.
            rest = memoryview(wire)[_send_ready(ch.ctl, wire):]
            try:
                proc = await self._launch(ch)
            except OSError as exc:
                outcome.failure, outcome.ended = f"cannot start the sandbox: {exc}", True
            else:
                ch.close_child_ends()
                await _drive(ex, rest)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    if not outcome.ended:
                        _request_kill(ch.ctl)  # cancelled (or a bug): the supervisor kills the tree now
                        with anyio.move_on_after(KILL_GRACE):
                            await events.until_end(outcome)
                    if proc is not None:
                        await bounded_wait(proc)
                except BaseException:
                    # A cancellation that is not anyio's (e.g. asyncio.gather re-cancelling its
                    # children) passes through shields: still never return before the tree is dead.
                    events.until_end_blocking(outcome, KILL_GRACE)
                    raise
                finally:
                    ch.close()
                    if tmpdir:
                        shutil.rmtree(tmpdir, ignore_errors=True)
        return outcome.to_result(req, ex.out, ex.err, wall_ms=(time.perf_counter() - started) * 1000)

    def _wire_request(self, req: ExecRequest, tmpdir: str) -> dict[str, Any]:
        ws = workspace.prepare(req.workspace or os.path.join(self._state_dir, "adhoc"), self.sandbox_uid)
        pol = req.policy
        real = lambda paths: [os.path.realpath(p) for p in paths]  # noqa: E731
        hidden = [h for h in real((*req.hidden, self._state_dir)) if h != ws]
        if req.inputs:
            workspace.link_inputs(ws, os.path.realpath(req.inputs), hidden)
        return {
            "code": req.code, "file": os.path.realpath(req.file) if req.file else None,
            "context": dict(req.context), "timeout": req.timeout, "workspace": ws, "hidden": hidden,
            "read_only": real(req.read_only), "read": real(pol.read), "write": real(pol.write),
            "network": pol.network, "env": dict(pol.env), "memory_mb": pol.memory_mb,
            "max_processes": pol.max_processes, "max_file_bytes": pol.max_file_bytes,
            "max_open_files": pol.max_open_files, "max_result_bytes": req.max_result_bytes,
            "layers": list(self._active), "stage": self._stage, "tmpdir": tmpdir,
            "disk_mb": pol.disk_mb, "quota_dir": self._quota_dir,
        }

    def _private_tmp(self) -> str:
        """Without a mount namespace /tmp is the host's: give each execution its own folder."""
        if "mountns" in self._active:
            return ""
        path = tempfile.mkdtemp(prefix="tmp-", dir=self._state_dir)
        if self.sandbox_uid is not None:
            os.chown(path, self.sandbox_uid, self.sandbox_uid)
        return path

    async def _launch(self, ch: _Channels) -> Process | None:
        """Hand the child ends to the fork server (returns None) or start a fresh supervisor."""
        if self._path == "forkserver" and self._forkserver is not None:
            if await self._forkserver.submit(ch.fds_for_child()):
                return None
            self._path = "fresh"
        fds = ch.fds_for_child()
        return await anyio.open_process(
            _module_argv(self._python, self._task, "provider_python.sandbox.supervisor", *map(str, fds)),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=None, env=self._env,
            pass_fds=fds, cwd="/")


@dataclass
class _Outcome:
    """What the host saw of one execution, filled in by the readers."""

    record: dict[str, Any] | None = None
    record_error: str = ""
    ended: bool = False
    returncode: int | None = None
    killed: bool = False
    failure: str = ""
    timed_out: bool = False
    disk_error: str = ""  # the workspace changes went over the quota, or could not be copied back
    disk_exceeded: bool = False

    def to_result(self, req: ExecRequest, out: BoundedOutput, err: BoundedOutput, *, wall_ms: float) -> ExecResult:
        res = ExecResult(ok=False, stdout=out.text(), stderr=err.text(), stdout_truncated=out.truncated,
                         stderr_truncated=err.truncated, wall_ms=round(wall_ms, 3))
        if self.returncode is not None and self.returncode < 0:
            res.exit_signal = -self.returncode
        rec = self.record
        if self.timed_out:
            res.error_type, res.error_message, res.timed_out = "TimeoutError", f"timed out after {req.timeout:g} s", True
        elif self.disk_error:
            res.error_type = "DiskQuotaExceeded" if self.disk_exceeded else "SandboxError"
            res.error_message, res.retryable = self.disk_error, not self.disk_exceeded
        elif rec is not None and rec.get("ok"):
            res.ok, res.result, res.duration_ms = True, rec.get("result"), float(rec.get("duration_ms", 0.0))
        elif rec is not None:
            e = rec.get("error") or {}
            res.error_type, res.error_message = str(e.get("type", "Error")), str(e.get("message", ""))
            res.traceback, res.retryable = e.get("traceback"), bool(e.get("retryable", True))
            res.duration_ms = float(rec.get("duration_ms", 0.0))
        else:
            res.error_type, res.error_message = self._why_no_record()
        if not res.duration_ms:
            res.duration_ms = res.wall_ms
        return res

    def _why_no_record(self) -> tuple[str, str]:
        """(error type, message) when the child reported no record."""
        if self.record_error:
            return "SandboxError", self.record_error
        if self.failure:
            return "SandboxError", f"sandbox failure: {self.failure}"
        code = self.returncode
        if code is None:
            return "SandboxError", "the sandbox supervisor vanished without reporting (fork server died?)"
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            hint = {"SIGKILL": " (memory or process limit, or killed from outside)",
                    "SIGXCPU": " (CPU time limit)", "SIGSEGV": " (crashed)"}.get(name, "")
            return "ProcessKilled", f"the sandboxed process was killed by {name}{hint} before reporting a result"
        return "ProcessExited", f"the sandboxed process exited with code {code} before reporting a result"


class _EventReader:
    """Newline-delimited JSON events from the supervisor on the control socket."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._buf = b""

    async def until_end(self, outcome: _Outcome) -> None:
        while not outcome.ended:
            await anyio.wait_readable(self._sock)
            self._receive(outcome)

    def until_end_blocking(self, outcome: _Outcome, timeout: float) -> None:
        """The same, blocking the thread: only for cleanup that must not be interrupted."""
        deadline = time.monotonic() + timeout
        while not outcome.ended and (left := deadline - time.monotonic()) > 0:
            if select.select([self._sock], [], [], left)[0]:
                self._receive(outcome)

    def _receive(self, outcome: _Outcome) -> None:
        try:
            chunk = self._sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            outcome.ended = True
            return
        self._buf += chunk
        while b"\n" in self._buf and not outcome.ended:
            line, self._buf = self._buf.split(b"\n", 1)
            event = json.loads(line)
            if event.get("event") == "exited":
                outcome.returncode, outcome.killed, outcome.ended = event["returncode"], event["killed"], True
                outcome.disk_error = str(event.get("disk_error", ""))
                outcome.disk_exceeded = bool(event.get("disk_exceeded", False))
            elif event.get("event") == "failed":
                outcome.failure, outcome.ended = str(event.get("message")), True


@dataclass
class _Execution:
    """The host's side of one execution: its channels, what it observed, where its output goes,
    and the bounds it is held to."""

    ch: _Channels
    events: _EventReader
    outcome: _Outcome
    out: BoundedOutput
    err: BoundedOutput
    on_output: OutputCallback | None
    timeout: float
    result_limit: int

    @classmethod
    def open(cls, req: ExecRequest, on_output: OutputCallback | None) -> "_Execution":
        ch = _Channels.open()
        limit = req.policy.max_output_bytes
        return cls(ch, _EventReader(ch.ctl), _Outcome(), BoundedOutput("stdout", limit), BoundedOutput("stderr", limit),
                   on_output, req.timeout, req.max_result_bytes)


async def _drive(ex: _Execution, rest: memoryview) -> None:
    """Send the rest of the request, then read output, result and events until the end or the timeout."""
    ch, outcome = ex.ch, ex.outcome
    async with anyio.create_task_group() as tg:
        tg.start_soon(_pump, ch.stdout, ex.out, ex.on_output)
        tg.start_soon(_pump, ch.stderr, ex.err, ex.on_output)
        tg.start_soon(_collect, ch.result, ex.result_limit, outcome)
        await _send_all(ch.ctl, rest)
        with anyio.move_on_after(ex.timeout) as deadline:
            await ex.events.until_end(outcome)
        if deadline.cancelled_caught:
            outcome.timed_out = True
            _request_kill(ch.ctl)
            with anyio.move_on_after(KILL_GRACE):
                await ex.events.until_end(outcome)
        tg.cancel_scope.deadline = anyio.current_time() + DRAIN_GRACE


async def _pump(fd: int, sink: BoundedOutput, on_output: OutputCallback | None) -> None:
    """Drain one output pipe to EOF; past the cap the bytes are only counted."""
    while True:
        await anyio.wait_readable(fd)
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            continue
        if not data:
            return
        text = sink.feed(data)
        if text and on_output is not None:
            await on_output(sink.name, text)


async def _collect(fd: int, limit: int, outcome: _Outcome) -> None:
    """Read the result channel; the child's record is its last line."""
    buf = bytearray()
    cap = limit + (1 << 16)
    while True:
        await anyio.wait_readable(fd)
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            continue
        if not data:
            break
        if len(buf) < cap:
            buf += data
    if len(buf) >= cap:
        outcome.record_error = f"the result channel carried more than {cap} bytes"
        return
    lines = [ln for ln in bytes(buf).split(b"\n") if ln.strip()]
    if not lines:
        return
    try:  # the child's code may have forged this line: bound it like any input from a peer
        record = jsonlimits.loads(lines[-1])
    except ValueError as exc:  # not JSON, or outside the limits (jsonlimits.ValueRejected)
        outcome.record_error = f"the result channel carried an unusable record ({exc})"
        return
    if isinstance(record, dict):
        outcome.record = record
    else:
        outcome.record_error = "the result channel carried a record that is not an object"


def _send_ready(sock: socket.socket, data: bytes) -> int:
    """How much of `data` the (non-blocking) socket took at once."""
    try:
        return sock.send(data)
    except BlockingIOError:
        return 0


async def _send_all(sock: socket.socket, view: memoryview) -> None:
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            await anyio.wait_writable(sock)


def _request_kill(ctl: socket.socket) -> None:
    try:
        ctl.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _close(fd: int) -> None:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
