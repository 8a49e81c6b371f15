"""What one state change costs on each store backend.

The engine writes every state change before acting on it, and the hot path is
``save_task(task, attempt)`` (a task upsert plus an attempt upsert). This times
that call N times per backend -- memory, SQLite in a temp dir (synchronous
NORMAL and FULL), and Redis on a redis-server this script starts on a free
loopback port -- and prints the median and p95 in microseconds: alone (one
transaction each), and ``--width`` saves issued in one event-loop turn (as when
several attempts finish together: group commit makes them one transaction; the
figure is per save). Also times ``create_run`` for a large run.

    python benchmarks/store_write_cost.py [--writes 5000] [--run-size 50000] [--width 8]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import redis

from gleitzeit_core.store import (
    AttemptRecord,
    InMemoryBackend,
    RedisBackend,
    RunRecord,
    SQLiteBackend,
    Store,
    TaskRecord,
    TaskStatus,
    new_id,
)

TASKS_PER_RUN = 100  # writes cycle over a realistic run rather than one hot row


def _records(n: int) -> tuple[RunRecord, list[TaskRecord]]:
    run = RunRecord(run_id=new_id("run"), workflow_id="bench", workflow_name="bench")
    tasks = [
        TaskRecord(
            id=new_id("task"), run_id=run.run_id, key=f"t{i}", name=f"Task {i}",
            protocol="python/v1", method="python/execute", workflow_name="bench",
        )  # fmt: skip
        for i in range(n)
    ]
    return run, tasks


async def _write_cost(store: Store, writes: int) -> list[float]:
    run, tasks = _records(TASKS_PER_RUN)
    await store.create_run(run, tasks)
    samples = []
    for i in range(writes):
        task = tasks[i % len(tasks)]
        task.attempts = i // len(tasks) + 1
        task.status = TaskStatus.COMPLETED if i % 2 else TaskStatus.RUNNING
        task.result = {"result": i, "stdout": "", "stderr": "", "duration_ms": 3}
        attempt = AttemptRecord(task.id, run.run_id, task.attempts, status=task.status)
        start = time.perf_counter()
        await store.save_task(task, attempt)
        samples.append(time.perf_counter() - start)
    return samples


async def _together_cost(store: Store, writes: int, width: int) -> tuple[list[float], int]:
    """Per-save time of ``width`` saves started in one turn, and the transactions they took."""
    run, tasks = _records(TASKS_PER_RUN)
    await store.create_run(run, tasks)
    before = store.group_commit.transactions
    samples = []
    for i in range(0, writes, width):
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for j in range(i, i + width):
                task = tasks[j % len(tasks)]
                task.status, task.attempts = TaskStatus.COMPLETED, j // len(tasks) + 1
                attempt = AttemptRecord(task.id, run.run_id, task.attempts, status=task.status)
                tg.start_soon(store.save_task, task, attempt)
        samples.append((time.perf_counter() - start) / width)
    return samples, store.group_commit.transactions - before


async def _create_cost(store: Store, size: int) -> float:
    run, tasks = _records(size)
    start = time.perf_counter()
    await store.create_run(run, tasks)
    return time.perf_counter() - start


def _start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server not found on PATH (Debian: apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                sys.exit("redis-server did not answer PING within 10 s")
            time.sleep(0.02)
    client.close()
    return proc, f"redis://127.0.0.1:{port}/0"


async def _main(writes: int, run_size: int, width: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _start_redis(Path(tmp))
        try:
            stores: list[tuple[str, Store]] = [
                ("memory", InMemoryBackend()),
                ("sqlite", SQLiteBackend(Path(tmp) / "bench.db")),
                ("sqlite/full", SQLiteBackend(Path(tmp) / "full.db", synchronous="full")),
                ("redis", RedisBackend(url)),
            ]
            print(f"save_task(task, attempt) x {writes}, alone and {width} per turn; "
                  f"create_run with {run_size} tasks")
            header = ("backend", "median µs", "p95 µs", f"{width}/turn µs", "transactions", "create_run s")
            print("{:<12} {:>10} {:>10} {:>12} {:>13} {:>13}".format(*header))
            for name, store in stores:
                async with store:
                    samples = await _write_cost(store, writes)
                    together, transactions = await _together_cost(store, writes, width)
                    create = await _create_cost(store, run_size)
                median = statistics.median(samples) * 1e6
                p95 = statistics.quantiles(samples, n=20)[-1] * 1e6
                print(f"{name:<12} {median:>10.0f} {p95:>10.0f} {statistics.median(together) * 1e6:>12.0f} "
                      f"{transactions:>13} {create:>13.2f}")
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=5000)
    parser.add_argument("--run-size", type=int, default=50_000)
    parser.add_argument("--width", type=int, default=8, help="saves per turn (the engine's default concurrency: 8 in the benchmarks)")
    args = parser.parse_args()
    anyio.run(_main, args.writes, args.run_size, args.width)


if __name__ == "__main__":
    main()
