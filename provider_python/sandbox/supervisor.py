"""The per-execution keeper: creates the namespaces, forks the sandboxed child ahead of time (a
`Slot`), hands it the execution, waits for it or kills it, and reports how it ended once no
process of the execution is left.

Runs as root outside the sandbox; it is what the host talks to, over the control socket. Closing
the host's end of that socket (timeout, cancellation, provider death) kills the child and its
whole tree at once. Forked from the warm fork server (fast path, with its slot prepared before the
execution arrives) or started as a fresh interpreter (fallback:
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

from provider_python.sandbox import child, copyback, syscalls
from provider_python.sandbox.quota import Quota
from provider_python.sandbox.template import Template

MAX_REQUEST_BYTES = child.MAX_REQUEST_BYTES
REQUEST_DEADLINE = 30.0
_NAMESPACES = (("pidns", syscalls.CLONE_NEWPID), ("mountns", syscalls.CLONE_NEWNS), ("netns", syscalls.CLONE_NEWNET),
               ("ipcns", syscalls.CLONE_NEWIPC | syscalls.CLONE_NEWUTS))


@dataclass
class Slot:
    """A sandboxed child already forked into its namespaces, waiting on `link` for its execution;
    `init`: PID 1 of its PID namespace (None without one), which lives until `lifeline` closes."""

    pid: int
    link: socket.socket
    init: int | None = None
    lifeline: int = -1

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
        if flags:
            syscalls.unshare(flags)
        init, lifeline = _start_init() if "pidns" in layers else (None, -1)
        if "subreaper" in layers:
            syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            ours.close()
            if lifeline >= 0:
                os.close(lifeline)
            child.warm(theirs, host_net, layers, stage, tpl, idmap)
        theirs.close()
        for fd in (host_net, idmap):
            if fd is not None:
                os.close(fd)
        _children(os.getpid())  # copy the pages the exit path writes now, not then (~0.3 ms measured)
        return cls(pid, ours, init, lifeline)


def _start_init() -> tuple[int, int]:
    """PID 1 of the new PID namespace, forked before the child, and our end of its lifeline. It
    runs no user code and only lets the kernel reap the orphans handed to it, until we exit or
    close the lifeline (EOF; only we hold it: no PDEATHSIG race at start-up, and no signal
    permission needed, which the copy-back gives up with our identity). So the child is an
    ordinary process (PID 2): a signal it sends itself ends it as anywhere (the kernel drops
    default-action signals that a namespace's init gets from inside, SIGKILL included), and it
    is our own child, so its exit status comes from waitpid."""
    theirs, ours = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.closerange(0, theirs)
            os.closerange(theirs + 1, 1 << 20)
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # orphans are reaped by the kernel
            while os.read(theirs, 1):
                pass
        finally:
            os._exit(0)
    os.close(theirs)
    return pid, ours


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
            slot = Slot.prepare(tpl, req["layers"], req["stage"])
        child.send_execution(slot.link, raw, (out_fd, err_fd, res_fd))
        for fd in (out_fd, err_fd, res_fd):
            os.close(fd)
        status, killed = _wait(slot, ctl)
        _end_tree(slot)
        disk = _settle_workspace(req)  # the tree is dead: nothing can change the upper layer now
        _send(ctl, {"event": "exited", "returncode": os.waitstatus_to_exitcode(status), "killed": killed, **disk})
        _release(slot)
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
            try:
                if slot.init is not None:
                    os.kill(slot.init, signal.SIGKILL)  # the namespace's PID 1: the kernel kills the rest
                else:
                    os.killpg(pid, signal.SIGKILL)  # without a PID namespace: its process group
            except OSError:
                pass
            watch = [w for w in watch if w is not ctl]


def _end_tree(slot: Slot) -> None:
    """Return only once no process of the execution is left. In a PID namespace every process but
    PID 1 descends from the (reaped) child or from PID 1, and an orphan is handed to PID 1 before
    its parent can be reaped: so when PID 1 has no child, nothing but the idle PID 1 is left and
    no wait is needed. Otherwise PID 1 is killed, and the kernel kills the rest before it reaps."""
    if slot.init is None:
        _reap_descendants(slot.pid)
    elif _children(slot.init) != []:  # None: unknown, so end the namespace
        _release(slot)


def _release(slot: Slot) -> None:
    """End the namespace's PID 1 (the kernel first ends every process left in it) and reap it: at
    the latest after the report, so that no zombie is left to whatever reaps orphans here."""
    if slot.init is not None:
        os.close(slot.lifeline)  # it exits; a SIGKILL is quicker where we still may (before the copy-back)
        try:
            os.kill(slot.init, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(slot.init, 0)
        slot.init, slot.lifeline = None, -1


def _reap_descendants(pid: int) -> None:
    """Without a PID namespace: kill the child's process group, then every orphan that the
    subreaper flag handed to us (setsid() grandchildren included), until none is left."""
    while True:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        for orphan in _children(os.getpid()) or ():
            try:
                os.kill(orphan, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _children(pid: int) -> list[int] | None:
    """The children of single-threaded `pid`, or None when /proc cannot tell."""
    try:
        fd = os.open(f"/proc/{pid}/task/{pid}/children", os.O_RDONLY | os.O_CLOEXEC)
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
