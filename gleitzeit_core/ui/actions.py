"""The dashboard's two write actions, on only with `gleitzeit ui --allow-actions`.

Cancel is the same store flag `gleitzeit workflow cancel` sets. Resume starts
`gleitzeit workflow resume RUN` as a child process with the dashboard's own
configuration: the engine runs in its own process exactly as if typed in a
terminal, and the dashboard only watches the store. The children belong to the
dashboard's task group: stopping the dashboard stops them (SIGTERM, then
SIGKILL after a grace period), and the run stays resumable.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys

import anyio
from anyio.abc import TaskGroup

log = logging.getLogger("gleitzeit.ui")

STOP_GRACE_S = 10.0


class Resumer:
    """Starts and owns `workflow resume` children."""

    def __init__(self, tg: TaskGroup, global_args: list[str]):
        self.tg = tg
        self.global_args = global_args  # --config / --backend as the dashboard got them
        self.running: set[str] = set()

    def start(self, run_id: str) -> bool:
        """False when this dashboard is already resuming that run."""
        if run_id in self.running:
            return False
        self.running.add(run_id)
        self.tg.start_soon(self._resume, run_id)
        return True

    async def _resume(self, run_id: str) -> None:
        argv = [sys.executable, "-m", "gleitzeit_core.cli.main", *self.global_args, "workflow", "resume", run_id,
                "--json"]
        try:
            process = await anyio.open_process(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.PIPE)
            try:
                tail = b""  # the last of what it printed, for the dashboard's log
                assert process.stderr is not None
                async for chunk in process.stderr:
                    tail = (tail + chunk)[-4096:]
                code = await process.wait()
                if code not in (0, 1):  # 1 is "the run failed", which the dashboard shows anyway
                    log.warning("resuming %s exited %s: %s", run_id, code, tail.decode(errors="replace").strip())
            finally:
                with anyio.CancelScope(shield=True):
                    await _stop(process)
        finally:
            self.running.discard(run_id)


async def _stop(process: anyio.abc.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    with anyio.move_on_after(STOP_GRACE_S):
        await process.wait()
        return
    process.kill()
    await process.wait()
