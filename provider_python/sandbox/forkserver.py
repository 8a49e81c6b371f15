"""The warm template process: imports and compiles everything once, then hands each execution to
a supervisor forked from it. `python -m provider_python.sandbox.forkserver FD STAGE` where FD is
a SOCK_SEQPACKET socket to the host and STAGE an empty directory to build sandbox roots on.

Protocol on FD: on start-up the template sends `{"ready": true, "layers": {...}}` (the probe
result) and the host answers `{"layers": [...], "idle": N}`, the layers to apply and how many
slots to keep prepared (the provider's in-flight limit, so a full burst never waits for one). Each
prepared slot's socket is then handed to the host (`s`, one fd): the host sends an execution's four
fds (control socket, stdout, stderr and result pipe ends) straight to that slot's supervisor, with
no hop through this process, and tells it the slot is gone (`u`, no fd) so it prepares another.
When the host holds no slot it sends the four fds here (`x`) and a slot is forked for them. No
message carries a meaningful payload; the request itself travels on the control socket, so the
template never parses user input. EOF on FD ends the server.

Supervisors are forked ahead of time, each with its sandboxed child already forked into fresh
namespaces and its shared root prepared, so neither fork nor namespace creation is on the
critical path of an execution; a burst larger than the pool prepares slots on demand. Below the
low-water mark (half the pool) slots are refilled at once, one between two messages, so a chain or
a steady fan-out faster than the refill deferral does not empty the pool; above it, only once the
host pauses.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys
from typing import NoReturn

from provider_python.sandbox import pidns, probe, syscalls
from provider_python.sandbox.child import SANDBOX_UID
from provider_python.sandbox.supervisor import Slot, supervise
from provider_python.sandbox.template import Template

FDS_PER_EXECUTION = 4
DEFAULT_IDLE = 4
REFILL_DELAY = 0.01


class _Pool:
    """Idle supervisors with prepared slots, each waiting on its own socket for one execution;
    `handed`: how many of those sockets the host holds and has not reported used."""

    def __init__(self, tpl: Template, layers: list[str], stage: str, size: int, host: socket.socket):
        self._tpl, self._layers, self._stage, self.size, self._host = tpl, layers, stage, size, host
        self.handed = 0
        self._idmap = _idmap_userns(layers)  # before SIGCHLD is ignored: it waits for its helper
        self._pidns = pidns.home() if "pidns" in layers else None  # each supervisor: PID 1 of a new one

    @property
    def low(self) -> bool:
        """Below the low-water mark: the next burst would find too few slots, refill without a pause."""
        return self.handed < (self.size + 1) // 2

    def refill(self) -> None:
        while self.handed < self.size:
            self.add()

    def add(self) -> None:
        """Prepare one slot and hand its socket to the host."""
        slot = self.fork()
        socket.send_fds(self._host, [b"s"], [slot.fileno()])
        slot.close()
        self.handed += 1

    def fork(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if (pidns.fork(self._pidns) if self._pidns is not None else os.fork()) == 0:
            _close_all_but(theirs.fileno(), self._idmap)  # the server socket, the other idle supervisors' sockets
            _idle(theirs, self._tpl, self._layers, self._stage, self._idmap)
        theirs.close()
        return ours


def _idmap_userns(layers: list[str]) -> int | None:
    """The user namespace that idmaps root's writable folders to the sandbox uid, made once here
    for every slot (a fork and a new namespace per slot otherwise, ~2.5 ms of CPU measured). It
    holds no process, only the fixed mapping, and no sandboxed process ever holds its fd. None
    where it cannot be made: each root then makes its own and reports what failed."""
    if "idmap" not in layers:
        return None
    try:
        return syscalls.idmap_userns(0, 0, SANDBOX_UID)
    except OSError:
        return None


def _close_all_but(*keep: int | None) -> None:
    low = 3
    for fd in sorted(k for k in keep if k is not None):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def _idle(sock: socket.socket, tpl: Template, layers: list[str], stage: str, idmap: int | None) -> NoReturn:
    if syscalls.IS_LINUX:
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)  # the fork server died -> so do we
    slot: Slot | BaseException
    try:
        slot = Slot.prepare(tpl, layers, stage, idmap=idmap)
    except BaseException as exc:  # noqa: BLE001 - reported to the host with the execution
        slot = exc
    fds = _receive(sock)
    if fds is None:
        os._exit(0)
    sock.detach()
    supervise(*fds, tpl, slot)


def _receive(sock: socket.socket) -> list[int] | None:
    """One execution's fds, or None at EOF (a supervisor's socket)."""
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 64, FDS_PER_EXECUTION)
        except InterruptedError:
            continue
        if not msg:
            return None
        if len(fds) == FDS_PER_EXECUTION:
            return fds
        for fd in fds:
            os.close(fd)


def serve(sock: socket.socket, stage: str) -> None:
    tpl = Template.prepare()
    available = probe.probe(tpl, stage)
    gc.freeze()  # a collection in a child would otherwise write to (and so copy) every object's page
    sock.send(json.dumps({"ready": True, "pid": os.getpid(), "layers": available}).encode())
    config = sock.recv(1 << 16)
    if not config:
        return
    settings = json.loads(config)
    pool = _Pool(tpl, list(settings["layers"]), stage, max(1, int(settings.get("idle", DEFAULT_IDLE))), sock)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # from now on supervisors are reaped by the kernel
    try:
        _serve(sock, pool)
    except (ConnectionResetError, BrokenPipeError):
        pass  # the host closed with slots unread: its end is gone, as at EOF


def _serve(sock: socket.socket, pool: _Pool) -> None:
    pool.refill()
    while True:
        # Above the low-water mark, refill once requests pause: preparing a slot (fork, unshare,
        # root) while an execution runs would compete with it for the CPU. Below it, at once. Either
        # way one slot at a time, so a waiting message is read after at most one slot's preparation.
        if pool.handed < pool.size and not select.select([sock], [], [], 0 if pool.low else REFILL_DELAY)[0]:
            pool.add()
            continue
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 64, FDS_PER_EXECUTION)
        except InterruptedError:
            continue
        if not msg:
            return
        if msg == b"u":
            pool.handed -= 1
        elif len(fds) == FDS_PER_EXECUTION:
            supervisor = pool.fork()
            socket.send_fds(supervisor, [b"x"], fds)
            supervisor.close()
        for fd in fds:
            os.close(fd)


def main(argv: list[str]) -> NoReturn:
    parent = os.getppid()
    if syscalls.IS_LINUX:
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)  # the provider died -> so do we
    if os.getppid() != parent:
        os._exit(0)
    syscalls.enter_user_namespace()
    sock = socket.socket(fileno=int(argv[0]))
    serve(sock, argv[1])
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
