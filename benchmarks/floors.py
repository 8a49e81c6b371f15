"""Per-call latencies: the floors (scenario 7) and `python/execute` itself (scenario 5).

``python -m benchmarks.floors --runs N`` prints one JSON line mapping a row
name to its samples in milliseconds.  The floors bound what any per-task
figure can reach: a JSON-RPC round trip to a warm child over pipes (a bare
echo loop, then the real no-op provider through the engine's actor), and one
SQLite commit in WAL mode with the store's pragmas (on the event loop as the
store does, then through a worker thread, then the store's own ``save_task``).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.to_thread

from gleitzeit_core.providers.host import ProviderHost
from gleitzeit_core.providers.manifest import load_manifest
from gleitzeit_core.store.factory import make_store
from gleitzeit_core.store.records import AttemptRecord, RunRecord, TaskRecord, TaskStatus, new_id
from gleitzeit_sdk.framing import LineReader, LineWriter
from gleitzeit_sdk.messages import decode, encode, request

from benchmarks.gleitzeit_worker import NOOP_MANIFEST, bench_config, bench_dispatcher

# The least a JSON-RPC peer can do: parse a line, answer it.
ECHO_CHILD = (
    "import sys, json\n"
    "for line in sys.stdin:\n"
    "    req = json.loads(line)\n"
    "    sys.stdout.write(json.dumps({'jsonrpc': '2.0', 'id': req['id'], 'result': req['params']}) + '\\n')\n"
    "    sys.stdout.flush()\n"
)
PRAGMAS = ("journal_mode = WAL", "synchronous = NORMAL")


async def timed(runs: int, once: Callable[[], Awaitable[None]], warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        await once()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await once()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


async def echo_round_trip(runs: int) -> list[float]:
    async with await anyio.open_process([sys.executable, "-c", ECHO_CHILD]) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        reader, writer = LineReader(proc.stdout), LineWriter(proc.stdin)
        ids = iter(range(1, 1 << 30))

        async def once() -> None:
            await writer.send_line(encode(request(next(ids), "noop/pass", {"value": 1})))
            decode(await reader.receive_line())

        samples = await timed(runs, once)
        await proc.stdin.aclose()
    return samples


async def actor_round_trip(runs: int) -> list[float]:
    async with ProviderHost([load_manifest(NOOP_MANIFEST)], log_level="warning") as host:
        actor = host.actor("bench-noop")

        async def once() -> None:
            await actor.request("noop/pass", {"value": 1}, meta={"taskId": "t", "runId": "r", "attempt": 1})

        return await timed(runs, once)


def sqlite_commit(path: Path, runs: int) -> list[float]:
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        db.execute(f"PRAGMA {pragma}")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    samples = []
    for i in range(runs):
        t0 = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (i % 100, "x" * 200))
        db.execute("COMMIT")
        samples.append((time.perf_counter() - t0) * 1000)
    db.close()
    return samples


async def threaded_commit(path: Path, runs: int) -> list[float]:
    """The same commit, each one a hop to a worker thread (what aiosqlite did per call)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in PRAGMAS:
        db.execute(f"PRAGMA {pragma}")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    counter = iter(range(1 << 30))

    def commit() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (next(counter) % 100, "x" * 200))
        db.execute("COMMIT")

    async def once() -> None:
        await anyio.to_thread.run_sync(commit)

    try:
        return await timed(runs, once)
    finally:
        db.close()


async def store_save_task(kind: str, path: Path, runs: int, synchronous: str = "normal") -> list[float]:
    """The scheduler's hot write: one task upsert plus its attempt, as when an attempt finishes
    (alone in its group commit: the cost of one save that nothing else shares)."""
    run = RunRecord(run_id=new_id("run"), workflow_id="bench", workflow_name="bench")
    task = TaskRecord(id=new_id("task"), run_id=run.run_id, key="t", name="t", protocol="noop/v1", method="noop/pass")
    async with make_store(kind, sqlite_path=str(path), sqlite_synchronous=synchronous) as store:
        await store.create_run(run, [task])

        async def once() -> None:
            task.attempts += 1
            task.status, task.result = TaskStatus.COMPLETED, {"value": task.attempts}
            await store.save_task(task, AttemptRecord(task.id, run.run_id, task.attempts, status=task.status))

        return await timed(runs, once)


async def python_execute(home: Path, runs: int) -> list[float]:
    """`result = 1` through the engine's actor for the built-in, sandboxed python provider (warm)."""
    async with bench_dispatcher(bench_config(home, 1)) as local:
        actor = local.host.actor("python")
        workspace = home / "ws"
        workspace.mkdir(mode=0o777)
        workspace.chmod(0o777)  # the sandbox runs user code as an unprivileged uid
        meta = {"taskId": "t", "runId": "r", "attempt": 1, "workspace": str(workspace)}

        async def once() -> None:
            await actor.request("python/execute", {"code": "result = 1"}, meta=meta)

        return await timed(runs, once, warmup=5)


async def python_c(runs: int) -> list[float]:
    async def once() -> None:
        await anyio.run_process([sys.executable, "-c", "result = 1"])

    return await timed(runs, once, warmup=2)


async def measure(runs: int, sandbox_runs: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="gz-floors-") as tmp:
        d = Path(tmp)
        return {
            "JSON-RPC round trip, bare echo child": await echo_round_trip(runs),
            "JSON-RPC round trip, no-op provider via actor": await actor_round_trip(runs),
            "SQLite WAL commit (sqlite3)": sqlite_commit(d / "a.db", runs),
            "SQLite WAL commit via a worker thread": await threaded_commit(d / "b.db", runs),
            "store.save_task (sqlite)": await store_save_task("sqlite", d / "c.db", runs),
            "store.save_task (sqlite, synchronous=full)": await store_save_task("sqlite", d / "f.db", runs, "full"),
            "store.save_task (memory)": await store_save_task("memory", d / "m.db", runs),
            "python/execute via sandboxed provider": await python_execute(d, sandbox_runs),
            "python -c per call (fresh interpreter)": await python_c(max(5, sandbox_runs // 4)),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000, help="samples per floor row")
    ap.add_argument("--sandbox-runs", type=int, default=200, help="python/execute samples")
    args = ap.parse_args()
    sys.stdout.write(json.dumps(anyio.run(measure, args.runs, args.sandbox_runs)) + "\n")


if __name__ == "__main__":
    main()
