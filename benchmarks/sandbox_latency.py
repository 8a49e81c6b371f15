"""Per-execution latency of a trivial `python/execute` (`print(1+1)`), by execution path.

    python benchmarks/sandbox_latency.py [--runs 200] [--fresh-runs 30]

Rows: the warm fork server with every isolation layer; the same without the workspace quota
(`disk_mb` 0: what the overlay and the copy-back cost); the same with BURST executions at once
(the provider's in-flight limit, as in a fan-out: each one's latency is a sample); the same
through the real provider process over JSON-RPC; a fresh interpreter per execution with every layer; the fork server with no
layer at all ("no sandbox", still a child process); and plain `python -c` as the floor for
starting Python. All paths are measured in interleaved rounds so that load from other processes
affects them alike. A benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import anyio

from gleitzeit_sdk.testing import ProviderProcess, spawn
from provider_python.sandbox.host import Sandbox
from provider_python.sandbox.policy import ExecRequest, SandboxPolicy

CODE = "print(1+1)"
BURST = 4  # provider_python's MAX_IN_FLIGHT
PAUSE = 0.02  # between executions, so one path's background work (slot refill) is not billed to the next


async def timed(once: Callable[[], Awaitable[None]]) -> float:
    t0 = time.perf_counter()
    await once()
    return (time.perf_counter() - t0) * 1000


def via_sandbox(sb: Sandbox, state: str, policy: SandboxPolicy | None = None) -> Callable[[], Awaitable[None]]:
    req = ExecRequest(code=CODE, workspace=tempfile.mkdtemp(dir=state), policy=policy or SandboxPolicy())

    async def once() -> None:
        res = await sb.run(req)
        assert res.ok and res.stdout == "2\n", res

    return once


def burst_via_sandbox(sb: Sandbox, state: str, samples: list[float]) -> Callable[[], Awaitable[None]]:
    """BURST executions started together; each one's own latency goes to `samples`."""
    reqs = [ExecRequest(code=CODE, workspace=tempfile.mkdtemp(dir=state)) for _ in range(BURST)]

    async def one(req: ExecRequest) -> None:
        t0 = time.perf_counter()
        res = await sb.run(req)
        samples.append((time.perf_counter() - t0) * 1000)
        assert res.ok and res.stdout == "2\n", res

    async def once() -> None:
        async with anyio.create_task_group() as tg:
            for req in reqs:
                tg.start_soon(one, req)

    return once


def via_provider(proc: ProviderProcess) -> Callable[[], Awaitable[None]]:
    async def once() -> None:
        resp = await proc.client.request("python/execute", {"code": CODE}, timeout=30)
        assert resp["result"]["stdout"] == "2\n", resp

    return once


async def python_c() -> None:
    res = await anyio.run_process([sys.executable, "-c", CODE])
    assert res.stdout == b"2\n"


def row(name: str, samples: list[float]) -> str:
    s = sorted(samples)
    p95 = s[min(len(s) - 1, int(len(s) * 0.95))]
    return f"| {name:<44} | {len(s):>4} | {statistics.mean(s):>7.2f} | {statistics.median(s):>7.2f} | {p95:>7.2f} | {s[0]:>7.2f} |"


async def main(runs: int, fresh_runs: int) -> None:
    """All paths stay open and are measured in interleaved rounds, so machine load hits them alike."""
    with tempfile.TemporaryDirectory() as state:
        async with AsyncExitStack() as stack:
            fork = await stack.enter_async_context(Sandbox(state_dir=f"{state}/fork"))
            fresh = await stack.enter_async_context(Sandbox(state_dir=f"{state}/fresh", mode="fresh"))
            bare = await stack.enter_async_context(Sandbox(state_dir=f"{state}/bare", layers=()))
            proc = await stack.enter_async_context(spawn([sys.executable, "-m", "provider_python"],
                                                         env={"PATH": os.environ.get("PATH", "")}))
            await proc.client.handshake(timeout=30, config={"sandbox": {"state_dir": f"{state}/provider"}})
            paths: dict[str, tuple[Callable[[], Awaitable[None]], int]] = {
                "fork server, all layers (Sandbox.run)": (via_sandbox(fork, state), 1),
                "fork server, all layers, provider JSON-RPC": (via_provider(proc), 1),
                "fresh interpreter, all layers": (via_sandbox(fresh, state), max(1, runs // fresh_runs)),
                "no sandbox (fork server child, no layers)": (via_sandbox(bare, state), 1),
                "python -c (plain subprocess)": (python_c, max(1, runs // fresh_runs)),
            }
            if "disk_mb" in SandboxPolicy.__dataclass_fields__:  # absent before the quota: comparable runs
                paths["fork server, all layers but the disk quota"] = (via_sandbox(fork, state, SandboxPolicy(disk_mb=0)), 1)
            samples: dict[str, list[float]] = {name: [] for name in paths}
            burst_name = f"fork server, all layers, {BURST} at once (each)"
            samples[burst_name] = []
            burst = burst_via_sandbox(fork, state, samples[burst_name])
            for _ in range(3):  # warm-up
                for once, _ in paths.values():
                    await once()
            await burst()
            samples[burst_name].clear()
            for i in range(runs):
                for name, (once, every) in paths.items():
                    if i % every == 0:
                        samples[name].append(await timed(once))
                        await anyio.sleep(PAUSE)
                if i % BURST == 0:
                    await burst()
                    await anyio.sleep(PAUSE * BURST)
            iso = fork.isolation()
    base = statistics.median(samples["python -c (plain subprocess)"])
    print(f"load (uptime): {os.getloadavg()[0]:.2f}; ratios below are p50 / p50 of python -c ({base:.2f} ms) in this run")
    print(f"active layers: {', '.join(iso['active'])}  (unavailable: {', '.join(iso['unavailable']) or 'none'})")
    print(f"| {'path':<44} | {'runs':>4} | {'mean ms':>7} | {'p50 ms':>7} | {'p95 ms':>7} | {'min ms':>7} | ratio |")
    print(f"|{'-' * 46}|{'-' * 6}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 7}|")
    for name, values in samples.items():
        print(row(name, values) + f" {statistics.median(values) / base:>5.2f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--fresh-runs", type=int, default=30)
    args = ap.parse_args()
    anyio.run(main, args.runs, args.fresh_runs)
