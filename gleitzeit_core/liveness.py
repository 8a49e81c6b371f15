"""Who owns a run, and whether that engine is still alive.

An engine stamps the run it drives with its identity (host, pid, the process's
start time) and renews ``heartbeat_at`` every second. A reader decides a live
(pending/running) run is orphaned when

- its owner ran on this host and that process is gone (no such pid, or the pid
  now belongs to a process that started later: pids get reused), or
- its owner ran elsewhere and has not renewed the heartbeat for ``LEASE_S``.

``mark_orphans`` then records the run as INTERRUPTED, with a compare-and-set
on the heartbeat it judged, so a run that was renewed or taken over meanwhile
stays as it is. Every CLI command runs it when it opens the store.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import lru_cache

from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import RunRecord, RunStatus, TaskRecord, TaskStatus, now

#: how often the owning engine renews its heartbeat (seconds)
HEARTBEAT_S = 1.0
#: a heartbeat older than this marks a run of another host as orphaned
LEASE_S = 15.0
#: start times read back from /proc are exact to a clock tick; allow for rounding
_START_SLACK_S = 1.0


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started_at: float | None  # None where the OS does not tell (no /proc)

    def stamp(self, run: RunRecord) -> None:
        run.owner_host, run.owner_pid, run.owner_started_at = self.host, self.pid, self.started_at
        run.heartbeat_at = now()

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def this_process() -> Owner:
    return Owner(socket.gethostname(), os.getpid(), process_start_time(os.getpid()))


@lru_cache(maxsize=1)
def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (UNIX seconds), from /proc; None if unknown."""
    boot = _boot_time()
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    if boot is None:
        return None
    # field 22 (starttime, clock ticks after boot); the name in field 2 may hold spaces
    fields = stat.rsplit(")", 1)[1].split()
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def owner_gone(run: RunRecord, *, at: float | None = None, host: str | None = None) -> str | None:
    """Why the engine owning a live run is gone, or None while it may be alive."""
    if not run.status.live:
        return None
    at = now() if at is None else at
    if run.owner_pid is None:  # stamped by nothing (a run written by an older version)
        last = run.heartbeat_at or run.updated_at
        return "no engine owns it" if at - last > LEASE_S else None
    who = f"the engine (pid {run.owner_pid} on {run.owner_host})"
    if run.owner_host == (host or socket.gethostname()):
        if not _pid_alive(run.owner_pid):
            return f"{who} is no longer running"
        started = process_start_time(run.owner_pid)
        if run.owner_started_at is not None and started is not None \
                and abs(started - run.owner_started_at) > _START_SLACK_S:
            return f"{who} is no longer running (the pid belongs to another process now)"
        return None
    last = run.heartbeat_at or run.updated_at
    if at - last > LEASE_S:
        return f"{who} has not renewed its heartbeat for {at - last:.0f} s"
    return None


async def mark_orphans(store: Store) -> list[RunRecord]:
    """Record every live run whose owner is gone as INTERRUPTED; returns them."""
    marked = []
    for status in (RunStatus.RUNNING, RunStatus.PENDING):
        for run in await store.list_runs(status=status):
            reason = owner_gone(run)
            if reason and await store.mark_interrupted(run.run_id, run.heartbeat_at, interrupted_error(run, reason)):
                marked.append(run)
    return marked


def interrupted_error(run: RunRecord, reason: str) -> str:
    how = f"gleitzeit run {run.workflow_path} --resume {run.run_id}" if run.workflow_path \
        else f"gleitzeit workflow resume {run.run_id}"
    return f"interrupted: {reason}; resume with: {how}"


def last_alive(run: RunRecord) -> float:
    """When the run's engine last showed it was alive (its end, its last heartbeat, its last write)."""
    return run.finished_at or run.heartbeat_at or run.updated_at


async def close_interrupted_attempts(store: Store, rec: TaskRecord, at: float) -> None:
    """The attempts an engine left running ended at its last sign of life, not when someone looked;
    written with the task as it is now."""
    for attempt in await store.get_attempts(rec.id):
        if attempt.status is TaskStatus.RUNNING:
            attempt.status, attempt.finished_at = TaskStatus.CANCELLED, max(attempt.started_at, at)
            attempt.error, attempt.retryable = "interrupted: the engine stopped during this attempt", True
            await store.save_task(rec, attempt)


async def cancel_stopped(store: Store, run: RunRecord) -> None:
    """Cancel an interrupted run at once: no engine is left to honour a request. Its running
    attempts are closed as resume would close them, so none stays "running" for ever."""
    at = now()
    died = min(last_alive(run), at)
    tasks = [t for t in await store.list_tasks(run_id=run.run_id) if not t.status.finished]
    for t in tasks:
        was_running = t.status is TaskStatus.RUNNING
        t.status, t.error, t.finished_at, t.updated_at = TaskStatus.CANCELLED, "run cancelled", at, at
        if was_running:
            await close_interrupted_attempts(store, t, died)
    if tasks:
        await store.save_tasks(tasks)
    run.status, run.error = RunStatus.CANCELLED, "cancelled on request (its engine had stopped)"
    run.finished_at = run.updated_at = at
    await store.save_run(run)
