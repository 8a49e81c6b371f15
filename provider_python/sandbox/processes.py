"""What the host side needs of the processes it starts (fork server, fresh supervisors, probes):
the one error for "the sandbox cannot run" and a wait that cannot hang."""

from __future__ import annotations

import anyio
from anyio.abc import Process

STOP_TIMEOUT = 2.0


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run as configured (e.g. `require: strict` and a layer is missing)."""


async def bounded_wait(proc: Process) -> int | None:
    """Wait for a process we started, killing it if it does not exit within STOP_TIMEOUT."""
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(STOP_TIMEOUT):
            return await proc.wait()
        proc.kill()
        with anyio.move_on_after(STOP_TIMEOUT):
            return await proc.wait()
    return None
