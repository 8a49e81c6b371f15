"""OS process of one provider: spawn in its own process group, drain stderr, stop.

Only process mechanics live here; JSON-RPC is ``connection.py``'s job.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Mapping, Sequence

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream, Process, TaskGroup

from gleitzeit_sdk import pipes

log = logging.getLogger("gleitzeit.provider")

#: Stop timeline (the MCP SDK's and VS Code's): close stdin, wait, TERM the group, wait, KILL.
STDIN_CLOSE_GRACE = 2.0
TERM_GRACE = 2.0
#: stderr lines kept for error messages, and the log rate limit (lines per second).
STDERR_TAIL_LINES = 20
STDERR_LOG_RATE = 50


@dataclass(frozen=True)
class LaunchSpec:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None = None
    name: str = "provider"


class ProviderProcess:
    """A running provider executable. ``stderr_tail`` keeps its last log lines.

    Its stdin and stdout (the wire) are pipes of our own, on ``gleitzeit_sdk.pipes``
    streams: asyncio's subprocess pipes hand each chunk on through one more
    ``call_soon`` (a loop turn per response), and anyio's send yields a turn after
    every write (one per request). stderr is anyio's."""

    def __init__(self, spec: LaunchSpec, process: Process, stdin: ByteSendStream, stdout: ByteReceiveStream):
        self.spec = spec
        self.process = process
        self.stdin = stdin
        self.stdout = stdout
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    @classmethod
    async def spawn(cls, spec: LaunchSpec, tg: TaskGroup) -> "ProviderProcess":
        """Start the executable; its stderr is drained by a task in ``tg``.

        Raises OSError (missing / not executable command) unchanged: the caller
        turns it into a readable ProviderUnavailable.
        """
        # Non-inheritable pipes; the child gets its ends as fds 0 and 1.
        child_in, wire_in = os.pipe()
        wire_out, child_out = os.pipe()
        try:
            proc = await anyio.open_process(
                list(spec.argv),
                stdin=child_in,
                stdout=child_out,
                stderr=subprocess.PIPE,
                cwd=spec.cwd,
                env=dict(spec.env),
                start_new_session=True,  # own process group: we can signal the whole tree
            )
        except BaseException:
            os.close(wire_in)
            os.close(wire_out)
            raise
        finally:  # the child's copies alone keep them open: its exit is our EOF, our close its EOF
            os.close(child_in)
            os.close(child_out)
        self = cls(spec, proc, await pipes.open_send(wire_in), await pipes.open_receive(wire_out))
        tg.start_soon(self._drain_stderr)
        return self

    def describe_exit(self) -> str:
        """How it ended (or that it has not) and its last stderr lines, for error messages."""
        rc = self.process.returncode
        status = "still running" if rc is None else (f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}")
        tail = self.tail()
        return status + (f"; last stderr: {tail}" if tail else "")

    def tail(self) -> str:
        """The provider's last stderr lines, for error messages."""
        return " | ".join(line for line in self.stderr_tail if line.strip())

    async def _drain_stderr(self) -> None:
        # Always drain: a chatty provider would block once the pipe buffer fills.
        assert self.process.stderr is not None
        pending = b""
        budget, window_start = STDERR_LOG_RATE, anyio.current_time()
        try:
            async for chunk in self.process.stderr:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if len(pending) > 8192:  # an endless line: cut it
                    lines.append(pending)
                    pending = b""
                for raw in lines:
                    text = raw.decode("utf-8", "replace").rstrip("\r")[:2000]
                    self.stderr_tail.append(text)
                    t = anyio.current_time()
                    if t - window_start >= 1.0:
                        budget, window_start = STDERR_LOG_RATE, t
                    if budget > 0:
                        budget -= 1
                        log.info("[%s] %s", self.spec.name, text)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass
        if pending:
            self.stderr_tail.append(pending.decode("utf-8", "replace"))

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    async def _exited_within(self, seconds: float) -> bool:
        # Poll returncode instead of wait(): a grandchild that inherited the
        # pipes would make wait() hang until it exits too.
        with anyio.move_on_after(seconds):
            while self.process.returncode is None:
                await anyio.sleep(0.01)
            return True
        return False

    async def stop(self) -> None:
        """close stdin → 2 s → SIGTERM the group → 2 s → SIGKILL the group. Shielded, bounded."""
        with anyio.CancelScope(shield=True):
            try:
                await self.stdin.aclose()
            except (anyio.BrokenResourceError, OSError):
                pass
            if not await self._exited_within(STDIN_CLOSE_GRACE):
                self.kill_group(signal.SIGTERM)
                if not await self._exited_within(TERM_GRACE):
                    self.kill_group(signal.SIGKILL)
                    await self._exited_within(TERM_GRACE)
            # Whatever the leader did, take its group with it.
            self.kill_group(signal.SIGKILL)
            for stream in (self.stdout, self.process.stderr):
                if stream is not None:
                    try:
                        await stream.aclose()
                    except OSError:
                        pass


def inherited_env(allow: Sequence[str], explicit: Mapping[str, str]) -> dict[str, str]:
    """Only allow-listed variables of ours, plus explicit values: no secret leaks by default."""
    env = {k: os.environ[k] for k in allow if k in os.environ}
    env.update(explicit)
    return env
