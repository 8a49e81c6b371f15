"""Distributed throughput and dispatch latency: workers coordinated through Redis.

Starts its own redis-server (temporary dir, free port, no persistence), then:

* throughput: a 2,000-task fan-out of ``noop/pass`` through the whole engine
  (Redis store, scheduler, RedisDispatcher) with 1, 2 and 4 local
  `gleitzeit worker` processes whose slots add up to ``max_concurrent`` (48: each
  of N workers ``--concurrency 48/N``), against the same engine and store with
  the provider local (48 in flight too), in the same run, with the CPU per task of
  each kind of process (engine, workers, providers, redis-server) from /proc;
* dispatch latency: one attempt at a time straight through the dispatcher
  (XADD → worker claims → no-op provider → report → XREAD) with one worker,
  against the same provider driven locally (LocalDispatcher) for reference, and
  one Redis round trip through the project's client (the floor of each hop).

Run: ``python -m benchmarks.distributed_throughput [--tasks 1000] [--reps 2]``; ``--json`` ends
with one JSON line of the figures (``python -m benchmarks`` reads it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import anyio
import redis

from gleitzeit_core.config import Config, load_config
from gleitzeit_core.dispatch.redis import RedisDispatcher
from gleitzeit_core.dispatch.local import LocalDispatcher, provider_config
from gleitzeit_core.engine import run_workflow
from gleitzeit_core.providers.host import ProviderHost
from gleitzeit_core.providers.manifest import load_manifest
from gleitzeit_core.redis_keys import connect
from gleitzeit_core.store.redis import RedisBackend
from gleitzeit_core.store.records import RunStatus
from gleitzeit_core.workflow.loader import load_workflow_text

NOOP_MANIFEST = Path(__file__).with_name("noop.yaml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(workdir), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.02)
    raise RuntimeError("redis-server did not start")


def start_workers(n: int, home: Path, url: str, concurrency: int) -> list[subprocess.Popen]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLEITZEIT_")}
    env.update(GLEITZEIT_HOME=str(home), GLEITZEIT_PERSISTENCE_BACKEND="redis", GLEITZEIT_REDIS_URL=url)
    procs = [subprocess.Popen([sys.executable, "-m", "gleitzeit_core.cli.main", "worker", "--name", f"bench-{i}",
                               "--providers", "bench-noop", "--manifest", str(NOOP_MANIFEST),
                               "--concurrency", str(concurrency)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i in range(n)]
    client = redis.Redis.from_url(url)
    deadline = time.time() + 30
    while len([k for k in client.smembers("gleitzeit:workers") if client.exists(b"gleitzeit:w:" + k)]) < n:
        if time.time() > deadline:
            raise RuntimeError("workers did not register")
        time.sleep(0.05)
    return procs


def stop_workers(procs: list[subprocess.Popen], url: str) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(15)
    redis.Redis.from_url(url).delete("gleitzeit:workers")


def fanout_text(n: int) -> str:
    tasks = [{"name": f"t{i}", "protocol": "noop/v1", "method": "noop/pass", "params": {"value": i}} for i in range(n)]
    return json.dumps({"name": f"fan-out {n}", "tasks": tasks})


def config_for(home: Path, url: str, max_concurrent: int) -> Config:
    return load_config(home / "config.yaml", overrides={
        "persistence.backend": "redis", "persistence.redis.url": url,
        "workspace.directory": str(home / "workspaces"), "providers.directory": str(home / "providers"),
        "execution.max_concurrent_tasks": max_concurrent, "logging.level": "warning"})


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def cpu_by_process(workers: list[subprocess.Popen], redis_proc: subprocess.Popen) -> dict[str, float]:
    """CPU seconds so far: this process (the engine), the workers, every provider process
    (the workers' children, or this process's for the local reference) and redis-server."""
    engine = time.process_time()  # this process only: the local providers are children
    others = {redis_proc.pid, *(w.pid for w in workers)}
    providers = [c for c in children(os.getpid()) if c not in others] + [c for w in workers for c in children(w.pid)]
    return {"engine": engine, "workers": sum(cpu_seconds(w.pid) for w in workers),
            "providers": sum(cpu_seconds(c) for c in providers),
            "redis": cpu_seconds(redis_proc.pid)}


@dataclass
class Rate:
    tasks_per_s: float
    cpu_ms: dict[str, float]  # CPU per task by process kind, during the timed run


async def throughput(n_tasks: int, config: Config, url: str, cpu: Callable[[], dict[str, float]],
                     local: LocalDispatcher | None = None) -> Rate:
    """One run: on the worker pool, or (``local``) on a local provider for reference."""
    workflow = load_workflow_text(fanout_text(n_tasks), filename="fanout.json")
    async with RedisBackend(url) as store, RedisDispatcher(url) as pool:
        before = cpu()
        t0 = time.perf_counter()
        outcome = await run_workflow(workflow, config=config, store=store, dispatcher=local or pool)
        wall = time.perf_counter() - t0
        after = cpu()
    if outcome.run.status is not RunStatus.COMPLETED:
        raise RuntimeError(f"run ended {outcome.run.status.value}: {outcome.run.error}")
    return Rate(n_tasks / wall, {k: (after[k] - before[k]) / n_tasks * 1000 for k in after})


def best(rates: list[Rate]) -> Rate:
    return max(rates, key=lambda r: r.tasks_per_s)


def cpu_text(rate: Rate) -> str:
    return " / ".join(f"{rate.cpu_ms[k]:.2f}" for k in ("engine", "workers", "providers", "redis"))


async def latency(dispatcher: Any, workflow_text: str, n: int) -> list[float]:
    """Seconds per attempt, one at a time (the first few are warm-up)."""
    spec = load_workflow_text(workflow_text, filename="one.json").tasks[0]
    out = []
    for i in range(n + 5):
        meta = {"runId": "run-latency", "taskId": f"task-{i}", "attempt": 1}
        t0 = time.perf_counter()
        await dispatcher.execute(spec, {"value": i}, meta=meta, timeout=None, on_output=lambda s, d: None)
        if i >= 5:
            out.append(time.perf_counter() - t0)
    return out


async def redis_round_trip(url: str, n: int) -> tuple[list[float], float]:
    """One GET at a time through the client every part of Gleitzeit uses (``redis_keys.connect``):
    seconds each, and CPU seconds per call — the floor of each hop through Redis."""
    client = connect(url)
    try:
        await client.set("gleitzeit:bench:k", "v")
        out, c0 = [], time.process_time()
        for _ in range(n):
            t0 = time.perf_counter()
            await client.get("gleitzeit:bench:k")
            out.append(time.perf_counter() - t0)
        return out, (time.process_time() - c0) / n
    finally:
        await client.aclose()


def summary(samples: list[float]) -> str:
    s = sorted(samples)
    return (f"median {statistics.median(s) * 1000:.2f} ms, p95 {s[int(len(s) * 0.95)] * 1000:.2f} ms, "
            f"min {s[0] * 1000:.2f} ms")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="gz-dist-bench-") as tmp:
        home = Path(tmp)
        redis_proc, url = start_redis(home)
        try:
            print(f"{args.tasks}-task no-op fan-out, max_concurrent {args.max_concurrent} (the pool's slots "
                  f"split evenly over its workers), {args.reps} reps (best shown)\n")
            config = config_for(home, url, args.max_concurrent)
            async with LocalDispatcher(ProviderHost([load_manifest(NOOP_MANIFEST)],
                                                    config=provider_config(config))) as local:
                def cpu_here() -> dict[str, float]:
                    return cpu_by_process([], redis_proc)
                await throughput(200, config, url, cpu_here, local)  # warm-up
                reference = [await throughput(args.tasks, config, url, cpu_here, local) for _ in range(args.reps)]
            ref = best(reference)
            print(f"load average {os.getloadavg()[0]:.1f}; CPU ms per task of the best rep: engine / workers / "
                  f"providers / redis-server\n")
            print("| where the attempts run | tasks/s (best) | all reps | × local | CPU ms/task |\n|---|---:|---|---:|---|")
            print(f"| local provider, no workers (reference) | {ref.tasks_per_s:.0f} | "
                  f"{', '.join(f'{r.tasks_per_s:.0f}' for r in reference)} | 1.00 | {cpu_text(ref)} |", flush=True)
            pools: dict[int, float] = {}  # workers → best tasks/s
            for n in args.workers:
                per_worker = max(1, args.max_concurrent // n)
                procs = start_workers(n, home, url, per_worker)
                try:
                    def cpu_pool() -> dict[str, float]:
                        return cpu_by_process(procs, redis_proc)
                    await throughput(200, config, url, cpu_pool)  # warm-up
                    rates = [await throughput(args.tasks, config, url, cpu_pool) for _ in range(args.reps)]
                finally:
                    stop_workers(procs, url)
                top = best(rates)
                pools[n] = top.tasks_per_s
                print(f"| {n} worker(s) × --concurrency {per_worker} | {top.tasks_per_s:.0f} | "
                      f"{', '.join(f'{r.tasks_per_s:.0f}' for r in rates)} | "
                      f"{top.tasks_per_s / ref.tasks_per_s:.2f} | {cpu_text(top)} |", flush=True)

            one = json.dumps({"name": "one", "tasks": [{"name": "t", "protocol": "noop/v1", "method": "noop/pass"}]})
            procs = start_workers(1, home, url, 1)
            try:
                async with RedisDispatcher(url) as d:
                    remote = await latency(d, one, args.latency_n)
            finally:
                stop_workers(procs, url)
            config = config_for(home, url, 1)
            async with LocalDispatcher(ProviderHost([load_manifest(NOOP_MANIFEST)],
                                                    config=provider_config(config))) as here:
                local = await latency(here, one, args.latency_n)
            print(f"\ndispatch latency, one attempt at a time ({args.latency_n} samples):")
            print(f"- through Redis (1 worker): {summary(remote)}")
            print(f"- local provider (reference): {summary(local)}")
            trips, trip_cpu = await redis_round_trip(url, args.latency_n)
            print(f"- one Redis round trip (a GET through the project's client; the floor of each hop): "
                  f"{summary(trips)}, CPU {trip_cpu * 1e6:.0f} µs per call")
            if args.json:
                print(json.dumps({"kind": "distributed", "tasks": args.tasks, "local_tasks_per_s": ref.tasks_per_s,
                                  "pool_tasks_per_s": pools, "redis_latency_ms": [s * 1000 for s in remote],
                                  "local_latency_ms": [s * 1000 for s in local],
                                  "redis_round_trip_ms": [s * 1000 for s in trips]}))
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--max-concurrent", type=int, default=48)
    parser.add_argument("--latency-n", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="pool sizes to run")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    anyio.run(main, parser.parse_args(), backend="asyncio")
