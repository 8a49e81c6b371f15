"""The provider's handle on the fork server process (whose own side is forkserver.py): start it
and read its probe, tell it which layers to use, hand one execution's fds at a time to a
prepared slot it handed over (or to it, when none is held), and replace it when it dies (a few
times, then give up so the host falls back to fresh interpreters).
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import anyio
from anyio.abc import Process

from provider_python.sandbox.processes import SandboxUnavailable, bounded_wait

log = logging.getLogger("gleitzeit.provider_python.sandbox")

START_TIMEOUT = 10.0  # start-up incl. probing; generous for a loaded CI machine
MAX_RESTARTS = 3


@dataclass
class SlotCounts:
    """How executions met the pool: `held` went straight to a slot prepared ahead of time,
    `built` went through the fork server, which built its slot on the critical path."""

    held: int = 0
    built: int = 0


class ForkServer:
    """One fork server process at a time, restarted when lost. `argv(fd)`: its command line
    given the fd of its end of the socket; `env`: its environment."""

    def __init__(self, argv: Callable[[int], list[str]], env: dict[str, str]):
        self._argv, self._env = argv, env
        self._proc: Process | None = None
        self._sock: socket.socket | None = None
        self._lock = anyio.Lock()
        self._restarts = 0
        self._settings: dict[str, Any] | None = None
        self._slots: deque[socket.socket] = deque()  # prepared slots' sockets handed to us
        self.given_up = False  # restarted too often: executions must take the fresh path
        self.counts = SlotCounts()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> dict[str, Any]:
        """Start the process; its probe result (`{"ready": true, "layers": {...}}`)."""
        host_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = await anyio.open_process(self._argv(child_sock.fileno()), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=None,
                                            env=self._env, pass_fds=(child_sock.fileno(),), cwd="/")
        finally:
            child_sock.close()
        host_sock.setblocking(False)
        try:
            with anyio.fail_after(START_TIMEOUT):
                await anyio.wait_readable(host_sock)
            msg = host_sock.recv(1 << 16)
            if not msg:
                raise SandboxUnavailable(f"fork server exited during start-up (status {await bounded_wait(proc)})")
            info = json.loads(msg)
        except BaseException:
            host_sock.close()
            await bounded_wait(proc)
            raise
        self._proc, self._sock = proc, host_sock
        return info

    def configure(self, layers: Iterable[str], idle: int) -> None:
        """Tell it which layers to prepare its slots with (the answer to its probe) and how many
        slots to keep ready."""
        self._settings = {"layers": list(layers), "idle": idle}
        if self._sock is not None:
            self._sock.send(json.dumps(self._settings).encode())

    async def submit(self, fds: list[int]) -> bool:
        """Hand one execution's fds over, replacing a lost fork server once; False when it is
        given up for good (the caller then starts a fresh supervisor)."""
        if self.given_up:
            return False
        if self._direct(fds):
            self.counts.held += 1
            return True
        sock = self._sock
        try:
            await self._send(sock, fds)
            self.counts.built += 1
            return True
        except OSError as exc:
            log.warning("python sandbox: fork server lost (%s)", exc)
        if not await self._restart(sock):
            return False
        await self._send(self._sock, fds)
        self.counts.built += 1
        return True

    def _direct(self, fds: list[int]) -> bool:
        """Send the fds straight to a prepared slot's supervisor (one process wake-up less than
        through the fork server); False when no live slot is held."""
        self._collect_slots()
        while self._slots:
            slot = self._slots.popleft()
            try:
                socket.send_fds(slot, [b"x"], fds)  # an idle peer's empty buffer: never blocks
                sent = True
            except OSError:
                sent = False  # its supervisor is gone (the fork server died): try the next
            slot.close()
            self._report_used()
            if sent:
                return True
        return False

    def _collect_slots(self) -> None:
        """Take the slots the fork server has handed over since the last call (never blocks). Once
        it is gone so are its slots (they die with it): drop them, the normal path restarts it."""
        while self._sock is not None:
            try:
                msg, fds, _, _ = socket.recv_fds(self._sock, 16, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                msg, fds = b"", []
            if not msg:
                self._drop_slots()
                return
            self._slots.extend(socket.socket(fileno=fd) for fd in fds)

    def _report_used(self) -> None:
        """Tell the fork server a slot it handed over is gone, so it prepares another."""
        try:
            if self._sock is not None:
                self._sock.send(b"u")
        except OSError:
            pass  # lost: the next submit through it notices and restarts it

    def _drop_slots(self) -> None:
        while self._slots:
            self._slots.popleft().close()

    async def stop(self) -> None:
        with anyio.CancelScope(shield=True):
            self._drop_slots()
            if self._sock is not None:
                self._sock.close()  # EOF ends the server
                self._sock = None
            if self._proc is not None:
                await bounded_wait(self._proc)
                self._proc = None

    async def _send(self, sock: socket.socket | None, fds: list[int]) -> None:
        if sock is None:
            raise BrokenPipeError("fork server is not running")
        async with self._lock:
            while True:
                try:
                    socket.send_fds(sock, [b"x"], fds)
                    return
                except BlockingIOError:
                    await anyio.wait_writable(sock)

    async def _restart(self, failed: socket.socket | None) -> bool:
        """Replace the dead process (once per failure, however many executions noticed it);
        after MAX_RESTARTS give up. Whether a fork server runs now."""
        async with self._lock:
            if self.given_up:
                return False
            if self._sock is not failed:
                return True  # someone else already restarted it
            await self.stop()
            self._restarts += 1
            if self._restarts <= MAX_RESTARTS:
                try:
                    await self.start()
                    if self._settings is not None:
                        self.configure(self._settings["layers"], self._settings["idle"])
                    return True
                except (OSError, SandboxUnavailable, ValueError) as exc:
                    log.warning("python sandbox: fork server restart failed: %s", exc)
            log.warning("python sandbox: switching to a fresh interpreter per execution")
            self.given_up = True
            return False
