"""Kill the real engine in the middle of a run (SIGKILL: what a crash or the OOM killer does),
for the tests that then resume it. One place for the set-up every such test repeats: start
`gleitzeit run`, read its run id, wait for a task to get somewhere, kill, wait for the death."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.cli import spawn
from tests.helpers.procs import alive, descendants
from tests.helpers.wait import wait_for


def started_run_id(proc: subprocess.Popen) -> str:
    """The run id from the engine's first stderr line (``run run-… started``)."""
    line = proc.stderr.readline()
    m = re.search(r"run (run-[0-9a-f]+) started", line)
    assert m, f"no run id in {line!r}"
    return m.group(1)


@dataclass
class Killed:
    """A run whose engine was killed: its id, its workspace, and when the kill happened."""

    run_id: str
    workspace: Path
    killed_at: float = 0.0

    @property
    def markers(self) -> Path:
        """The file the test workflows' tasks append their names to."""
        return self.workspace / "markers"

    def seen(self) -> list[str]:
        return self.markers.read_text().split() if self.markers.exists() else []


def kill_engine(home: Path, wf: Path, *args: str, env: Mapping[str, str], until: str | Callable[[Killed], bool],
                what: str = "", timeout: float = 30.0, reap: bool = False) -> Killed:
    """``gleitzeit run wf *args``, SIGKILLed once ``until`` holds: a word a task wrote into
    the workspace's ``markers`` file, or a predicate. With ``reap``, also wait for the
    engine's provider processes (there must be some) to notice and exit."""
    proc = spawn(home, "run", str(wf), *args, **env)
    run_id = started_run_id(proc)
    killed = Killed(run_id, home / "workspaces" / run_id)
    ready = until if callable(until) else (lambda k: until in k.seen())
    wait_for(lambda: ready(killed), timeout=timeout, what=what or f"{until!r} in the markers")
    children = descendants(proc.pid) if reap else []
    assert children or not reap, "the engine should have provider processes"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    killed.killed_at = time.time()
    if reap:
        wait_for(lambda: not any(alive(p) for p in children), timeout=10, what="providers to exit")
    return killed
