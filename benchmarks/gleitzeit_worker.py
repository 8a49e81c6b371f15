"""Gleitzeit driven in-process: one shape, one backend, one provider, several repetitions.

Runs as its own process (``python -m benchmarks.gleitzeit_worker ...``) so its
peak RSS is the engine's alone for that scenario, and prints one JSON line.
Providers are started once and kept warm across repetitions (a warm-up run
comes first); each repetition gets a fresh store, so every run writes its
whole history.  ``--profile FILE`` wraps the timed repetitions in cProfile
(``--cpu-clock``: timed by the process's CPU clock, so time the loop sleeps in
``epoll`` or waits for the provider does not count).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

from gleitzeit_core.config import Config, load_config
from gleitzeit_core.dispatch.local import LocalDispatcher, provider_config
from gleitzeit_core.engine import run_workflow
from gleitzeit_core.providers.host import ProviderHost
from gleitzeit_core.providers.declared import declarations
from gleitzeit_core.providers.manifest import load_manifest
from gleitzeit_core.store.factory import make_store
from gleitzeit_core.store.records import RunStatus
from gleitzeit_core.workflow.loader import load_workflow_text
from gleitzeit_core.workflow.model import Workflow

from benchmarks.shapes import Shape, build

NOOP_MANIFEST = Path(__file__).with_name("noop.yaml")
METHODS = {  # provider → (protocol, method)
    "python": ("python/v1", "python/execute"),
    "noop": ("noop/v1", "noop/pass"),
}


def task_params(provider: str, reads: str | None) -> dict[str, Any]:
    """Trivial work; a chain task reads the previous task's result."""
    if provider == "python":
        return {"code": f"result = ${{{reads}.result.result}} + 1" if reads else "result = 1"}
    return {"value": f"${{{reads}.result.value}}" if reads else 1}


def map_params(provider: str) -> dict[str, Any]:
    """One map item's trivial work on its ``${item}``."""
    if provider == "python":
        return {"code": "result = context['x'] + 1", "context": {"x": "${item}"}}
    return {"value": "${item}"}


def workflow_text(shape: Shape, provider: str) -> str:
    """The shape as a Gleitzeit JSON workflow (JSON: large workflows load faster than YAML);
    a ``map`` shape is one ``for_each`` task over its items, then the join."""
    protocol, method = METHODS[provider]
    if shape.kind == "map":
        items = len(shape.nodes) - 1
        doc = {"name": f"bench map {items:,} ({provider})", "tasks": [
            {"name": "items", "protocol": protocol, "method": method, "for_each": list(range(items)),
             "params": map_params(provider)},
            {"name": "join", "protocol": protocol, "method": method, "params": task_params(provider, None),
             "dependencies": ["items"]}]}
        return json.dumps(doc)
    tasks = [
        {"name": n.key, "protocol": protocol, "method": method, "params": task_params(provider, n.reads),
         "dependencies": list(n.deps)}
        for n in shape.nodes
    ]
    doc: dict[str, Any] = {"name": f"bench {shape.label} ({provider})", "tasks": tasks}
    return json.dumps(doc)


def bench_config(home: Path, max_concurrent: int) -> Config:
    """Defaults, with every folder inside the benchmark's temporary home."""
    return load_config(home / "config.yaml", overrides={
        "providers.directory": str(home / "providers"),
        "workspace.directory": str(home / "workspaces"),
        "execution.max_concurrent_tasks": max_concurrent,
        "logging.level": "warning",
    })


def bench_dispatcher(config: Config) -> LocalDispatcher:
    """The built-in python provider and the no-op provider, started on first use."""
    manifests = [load_manifest(d.manifest) for d in declarations() if d.name == "python"]
    manifests.append(load_manifest(NOOP_MANIFEST))
    return LocalDispatcher(ProviderHost(manifests, config=provider_config(config), log_level="warning"))


@dataclass
class Job:
    shape: str
    size: int
    backend: str  # sqlite | memory
    provider: str  # python | noop
    reps: int = 3
    max_concurrent: int = 8


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


async def run_once(workflow: Workflow, config: Config, local: LocalDispatcher, backend: str, db: Path) -> tuple[float, int]:
    """Wall seconds of one run, and the store transactions (group commits) it took."""
    store = make_store(backend, sqlite_path=str(db))
    async with store:
        t0 = time.perf_counter()
        outcome = await run_workflow(workflow, config=config, store=store, dispatcher=local)
        wall = time.perf_counter() - t0
    if outcome.run.status is not RunStatus.COMPLETED:
        raise RuntimeError(f"benchmark run ended {outcome.run.status.value}: {outcome.run.error}")
    return wall, store.group_commit.transactions


async def run_job(job: Job, home: Path, profile: str | None, cpu_clock: bool = False) -> dict[str, Any]:
    config = bench_config(home, job.max_concurrent)
    shape = build(job.shape, job.size)
    rss_start = maxrss_mb()
    t0 = time.perf_counter()
    workflow = load_workflow_text(workflow_text(shape, job.provider), filename="bench.json")
    load_s = time.perf_counter() - t0
    rss_loaded = maxrss_mb()  # what the engine holds before running: the floor of its peak
    warm = load_workflow_text(workflow_text(build(job.shape, 4), job.provider), filename="warm.json")
    async with bench_dispatcher(config) as local:
        await run_once(warm, config, local, "memory", home / "warm.db")  # start providers, fork server
        walls: list[float] = []
        transactions: list[int] = []
        prof = (cProfile.Profile(time.process_time) if cpu_clock else cProfile.Profile()) if profile else None
        cpu0 = cpu_seconds()
        for rep in range(job.reps):
            if prof:
                prof.enable()
            wall, commits = await run_once(workflow, config, local, job.backend, home / f"rep{rep}.db")
            walls.append(wall)
            transactions.append(commits)
            if prof:
                prof.disable()
        cpu = cpu_seconds() - cpu0
    if prof and profile:
        prof.dump_stats(profile)
    return {
        "job": asdict(job), "tasks": len(shape.nodes), "edges": shape.edges, "walls_s": walls,
        "transactions_per_rep": transactions,
        "load_s": load_s, "engine_cpu_s_per_rep": cpu / job.reps,
        "rss_start_mb": rss_start, "rss_loaded_mb": rss_loaded, "peak_rss_mb": maxrss_mb(),
    }


def register_noop(exe: str, env: dict[str, str]) -> None:
    """Register the no-op provider in ``env``'s GLEITZEIT_HOME, as a user would (a workflow may
    bring only manifests from its own folder, and only with --allow-providers)."""
    subprocess.run([exe, "provider", "add", str(NOOP_MANIFEST), "--force"], env=env, check=True,
                   capture_output=True, timeout=60)


def cli_walls(shape: Shape, backend: str, reps: int, home: Path) -> list[float]:
    """Wall time of the real `gleitzeit run FILE --json` (process start-up included), no-op provider."""
    exe = shutil.which("gleitzeit")
    if exe is None:
        raise RuntimeError("the `gleitzeit` command is not on PATH (pip install -e .)")
    path = home / f"cli-{shape.kind}.json"
    path.write_text(workflow_text(shape, "noop"))
    env = {**os.environ, "GLEITZEIT_HOME": str(home), "GLEITZEIT_SQLITE_PATH": str(home / "cli.db")}
    register_noop(exe, env)
    walls = []
    for _ in range(reps):
        t0 = time.perf_counter()
        done = subprocess.run([exe, "run", str(path), "--backend", backend, "--json"], env=env,
                              capture_output=True, text=True, timeout=600)
        walls.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise RuntimeError(f"gleitzeit run exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", choices=["chain", "fanout", "layered", "map"])
    ap.add_argument("size", type=int)
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "memory"])
    ap.add_argument("--provider", default="noop", choices=list(METHODS))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--max-concurrent", type=int, default=8)
    ap.add_argument("--profile", help="write cProfile stats of the timed runs here")
    ap.add_argument("--cpu-clock", action="store_true", help="profile by CPU time (idle waits excluded)")
    ap.add_argument("--cli", action="store_true", help="time the real `gleitzeit run` command instead")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gz-bench-") as tmp:
        home = Path(tmp)
        os.environ["GLEITZEIT_HOME"] = str(home)
        if args.cli:
            shape = build(args.shape, args.size)
            out: dict[str, Any] = {"tasks": len(shape.nodes), "walls_s": cli_walls(shape, args.backend, args.reps, home)}
        else:
            job = Job(args.shape, args.size, args.backend, args.provider, args.reps, args.max_concurrent)
            out = anyio.run(run_job, job, home, args.profile, args.cpu_clock)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
