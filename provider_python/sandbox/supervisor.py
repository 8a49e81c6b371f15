"""The per-execution keeper: creates the namespaces, forks the sandboxed child ahead of time (a
`Slot`), hands it the execution, waits for it or kills it, and reports how it ended once no
process of the execution is left.

Runs as root outside the sandbox; it is what the host talks to, over the control socket. Closing
the host's end of that socket (timeout, cancellation, provider death) kills the child and its
whole tree at once. With the `pidns` layer it is PID 1 of the execution's PID namespace (its
parent forked it into a new one), so the child is PID 2 and every orphan of the execution is
handed to the supervisor itself. Forked from the warm fork server (fast path, with its slot
prepared before the execution arrives) or started as a fresh interpreter (fallback:
`python -m provider_python.sandbox.supervisor CTL OUT ERR RES`).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
from dataclasses import dataclass
from typing import Any, Iterable, NoReturn

from provider_python.sandbox import child, copyback, pidns, syscalls
from provider_python.sandbox.quota import Quota
from provider_python.sandbox.template import Template

MAX_REQUEST_BYTES = child.MAX_REQUEST_BYTES
REQUEST_DEADLINE = 30.0
# unshared by the supervisor itself; the PID namespace it was forked into (pidns.py)
_NAMESPACES = (("mountns", syscalls.CLONE_NEWNS), ("netns", syscalls.CLONE_NEWNET),
               ("ipcns", syscalls.CLONE_NEWIPC | syscalls.CLONE_NEWUTS))


@dataclass
class Slot:
    """A sandboxed child already forked into its namespaces, waiting on `link` for its execution;
    `reaper`: we are PID 1 of its PID namespace (the `pidns` layer)."""

    pid: int
    link: socket.socket
    reaper: bool = False

    @classmethod
    def prepare(cls, tpl: Template, layers: Iterable[str], stage: str, *, idmap: int | None = None) -> "Slot":
        """`idmap`: the fork server's user namespace idmapping root's folders (None: the child
        makes its own); inherited by the child, closed here."""
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the fork server ignores it; we must wait()
        layers = frozenset(layers)
        host_net = os.open("/proc/self/ns/net", os.O_RDONLY) if "netns" in layers else None
        flags = 0
        for layer, flag in _NAMESPACES:
            if layer in layers:
                flags |= flag
        reaper = "pidns" in layers
        if reaper and os.getpid() != 1:
            raise OSError("the supervisor is not PID 1 of a new PID namespace")
        if flags:
            syscalls.unshare(flags)
        if "subreaper" in layers and not reaper:
            syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            ours.close()
            child.warm(theirs, host_net, layers, stage, tpl, idmap)
        theirs.close()
        for fd in (host_net, idmap):
            if fd is not None:
                os.close(fd)
        _children()  # copy the pages the exit path writes now, not then (~0.3 ms measured)
        return cls(pid, ours, reaper)


def supervise(ctl_fd: int, out_fd: int, err_fd: int, res_fd: int, tpl: Template,
              slot: Slot | BaseException | None = None) -> NoReturn:
    """Run one execution: `slot` prepared in advance, or the error preparing it raised, or None
    to prepare one now (fresh interpreter)."""
    ctl = socket.socket(fileno=ctl_fd)
    try:
        if syscalls.IS_LINUX:
            syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        raw = _read_request(ctl)
        req = json.loads(raw)
        if isinstance(slot, BaseException):
            raise slot
        if slot is None:
            if "pidns" in req["layers"]:
                pidns.continue_as_pid1()
            slot = Slot.prepare(tpl, req["layers"], req["stage"])
        child.send_execution(slot.link, raw, (out_fd, err_fd, res_fd))
        for fd in (out_fd, err_fd, res_fd):
            os.close(fd)
        status, killed = _wait(slot, ctl)
        _end_tree(slot)
        disk = _settle_workspace(req)  # the tree is dead: nothing can change the upper layer now
        _send(ctl, {"event": "exited", "returncode": os.waitstatus_to_exitcode(status), "killed": killed, **disk})
    except BaseException as exc:  # noqa: BLE001 - report, never raise out of a forked child
        try:
            _send(ctl, {"event": "failed", "message": f"{type(exc).__name__}: {exc}"})
        except OSError:
            pass
    os._exit(0)


def _settle_workspace(req: dict[str, Any]) -> dict[str, Any]:
    """Copy a quota'd execution's workspace changes into the workspace (as the sandbox user), or
    discard them when the execution went over its quota: {"disk_error": message} on a problem."""
    quota = Quota.of(req)
    if quota is None:
        return {}
    if copyback.is_empty(quota.upper):
        return {}  # nothing was changed (or nothing mounted): no walk, no identity change
    plan = copyback.measure(quota.upper)
    if quota.exceeded() or plan.data_bytes > quota.mb << 20 or plan.entries > quota.inodes:
        return {"disk_error": quota.message(), "disk_exceeded": True}
    try:
        src, dst = copyback.open_dir(quota.upper), copyback.open_dir(quota.lower)
        child.become_sandbox(req["layers"])
        problems = copyback.merge(src, dst, plan)
    except OSError as exc:
        problems = [str(exc)]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return {"disk_error": f"could not copy the task's workspace changes: {problems[0]}{more}"}
    return {}


def _read_request(ctl: socket.socket) -> bytes:
    ctl.settimeout(REQUEST_DEADLINE)
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = ctl.recv(1 << 16)
        if not chunk or len(buf) > MAX_REQUEST_BYTES:
            raise ConnectionError("host closed the control socket before sending the request")
        buf += chunk
    ctl.settimeout(None)
    return bytes(buf)


def _wait(slot: Slot, ctl: socket.socket) -> tuple[int, bool]:
    """Block until the child exits, or kill it (and its namespace) the moment the host closes or
    writes to `ctl`."""
    pid, killed = slot.pid, False
    pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None  # Linux >= 5.3
    watch = [ctl] + ([pidfd] if pidfd is not None else [])
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, killed
        ready, _, _ = select.select(watch, [], [], None if pidfd is not None else 0.05)
        if ctl in ready and not killed:
            killed = True
            os.kill(pid, signal.SIGKILL)
            _kill_rest(slot)
            watch = [w for w in watch if w is not ctl]


def _kill_rest(slot: Slot) -> None:
    """SIGKILL every other process of the execution: as PID 1 of its namespace, every process in
    it but us; without one, the child's process group."""
    try:
        if slot.reaper:
            os.kill(-1, signal.SIGKILL)
        else:
            os.killpg(slot.pid, signal.SIGKILL)
    except OSError:
        pass


def _end_tree(slot: Slot) -> None:
    """Return only once no process of the execution is left. In our PID namespace every process
    descends from us, and an orphan is handed to us (PID 1, or the nearest subreaper in the
    namespace, itself a descendant) before its parent can be reaped: so once the child is reaped,
    our having no child means no other process is left, and no wait is needed. Otherwise (or
    when /proc cannot tell) every process left is killed and reaped, as without a PID namespace,
    where the subreaper flag hands us the orphans."""
    if not slot.reaper or _children() != []:  # None: unknown, so kill whatever may be left
        _reap_descendants(slot)


def _reap_descendants(slot: Slot) -> None:
    """Kill the rest of the execution (without a PID namespace also every orphan the subreaper
    flag handed to us: setsid() grandchildren), and reap until we have no child left."""
    while True:
        _kill_rest(slot)
        for orphan in () if slot.reaper else _children() or ():  # host PIDs: only valid outside one
            try:
                os.kill(orphan, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _children() -> list[int] | None:
    """Our own children (we are single-threaded), or None when /proc cannot tell. Through
    /proc/thread-self: our PID in the PID namespace we may be PID 1 of is not the one /proc
    (the host's) knows us by."""
    try:
        fd = os.open("/proc/thread-self/children", os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = b"".join(iter(lambda: os.read(fd, 1 << 16), b""))
        finally:
            os.close(fd)
    except OSError:
        return None
    return [int(p) for p in data.split()]


def _send(ctl: socket.socket, event: dict[str, Any]) -> None:
    ctl.sendall(json.dumps(event).encode() + b"\n")


def main(argv: list[str]) -> NoReturn:
    ctl_fd, out_fd, err_fd, res_fd = (int(a) for a in argv)
    syscalls.enter_user_namespace()
    supervise(ctl_fd, out_fd, err_fd, res_fd, Template.prepare(preload=False))


if __name__ == "__main__":
    main(sys.argv[1:])
