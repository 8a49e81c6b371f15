"""Forking a supervisor as PID 1 of its own PID namespace (the `pidns` layer).

unshare(CLONE_NEWPID) moves only the caller's *next* child into a new namespace, whose PID 1 it
becomes; setns back to our own namespace afterwards lets the next fork make another one. So a
supervisor needs no separate init process: it is its namespace's PID 1, the sandboxed child its
PID 2, and every orphan of the execution is handed to the supervisor itself.
"""

from __future__ import annotations

import os
import signal

from provider_python.sandbox import syscalls


def home() -> int:
    """An fd of our PID namespace, for `fork` to set our later children's back to. That needs
    CAP_SYS_ADMIN over the namespace's owner, which a rootless fork server (root of its own user
    namespace only) lacks for the host's: it first goes on as PID 1 of a namespace of its own."""
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(own, syscalls.CLONE_NEWPID)
        return own
    except PermissionError:
        os.close(own)
    continue_as_pid1()
    return os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)


def fork(home_fd: int | None) -> int:
    """os.fork(), the child being PID 1 of a new PID namespace. `home_fd` (from `home`): where our
    later children go again; None when no other child follows. Without a new namespace (unshare
    refused) the child is forked anyway: it finds it is not PID 1 and reports that."""
    try:
        syscalls.unshare(syscalls.CLONE_NEWPID)
    except OSError:
        return os.fork()
    try:
        pid = os.fork()
    except BaseException:
        _go_home(home_fd)
        raise
    if pid != 0:
        _go_home(home_fd)
    return pid


def _go_home(home_fd: int | None) -> None:
    if home_fd is not None:
        syscalls.setns(home_fd, syscalls.CLONE_NEWPID)


def continue_as_pid1() -> None:
    """Go on as PID 1 of a new PID namespace: a forked child, tied to us by PDEATHSIG, while this
    process only waits for it (holding none of its fds: their peers see EOF when it ends) and
    exits as it did."""
    pid = fork(None)
    if pid == 0:
        if syscalls.IS_LINUX:
            syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        return
    os.closerange(3, 1 << 20)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)
