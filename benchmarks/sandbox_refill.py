"""How often an execution finds its slot prepared: a chain (one execution after another, no
pause) and a steady fan-out (BURST in flight at all times, each worker starting its next
execution as soon as its last one ends) through `Sandbox.run`, counting executions that took a
slot the fork server had handed over ("held") against those it built on the critical path
("built"), plus their wall p50.

    python benchmarks/sandbox_refill.py [--runs 200]

The counts are operation counts, not times; they depend on how fast executions come compared with
the fork server's refill, so compare runs made back to back (a base worktree against a change).
The count wraps `ForkServer._direct` so that it reads the same on a tree without `slot_counts`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import anyio

from provider_python.sandbox import forkserver_client
from provider_python.sandbox.host import Sandbox
from provider_python.sandbox.policy import ExecRequest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sandbox_latency import BURST, CODE  # noqa: E402 - a sibling script

SETTLE = 0.5  # s before a scenario: the pool is full


def count_direct() -> dict[bool, int]:
    """Count `_direct`'s answers: True = a held slot, False = the fork server builds one."""
    counts = {True: 0, False: 0}
    direct = forkserver_client.ForkServer._direct

    def counted(self: forkserver_client.ForkServer, fds: list[int]) -> bool:
        ok = direct(self, fds)
        counts[ok] += 1
        return ok

    forkserver_client.ForkServer._direct = counted  # type: ignore[method-assign]
    return counts


async def scenario(sb: Sandbox, state: str, counts: dict[bool, int], workers: int, runs: int) -> tuple[int, int, float]:
    """(held, built, wall p50 ms) of `runs` executions by `workers` back-to-back workers."""
    await anyio.sleep(SETTLE)
    before = dict(counts)
    walls: list[float] = []
    left = runs

    async def worker() -> None:
        nonlocal left
        req = ExecRequest(code=CODE, workspace=tempfile.mkdtemp(dir=state))
        while left > 0:
            left -= 1
            t0 = time.perf_counter()
            res = await sb.run(req)
            walls.append((time.perf_counter() - t0) * 1e3)
            assert res.ok, res.error_message

    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker)
    return counts[True] - before[True], counts[False] - before[False], statistics.median(walls)


async def main(runs: int) -> None:
    counts = count_direct()
    with tempfile.TemporaryDirectory() as state:
        async with Sandbox(state_dir=f"{state}/sb") as sb:
            rows = [(name, *(await scenario(sb, state, counts, workers, runs)))
                    for name, workers in (("chain", 1), (f"fan-out x{BURST}", BURST))]
    print(f"load (uptime): {os.getloadavg()[0]:.2f}; {runs} executions of {CODE!r} per scenario")
    print(f"| {'scenario':<12} | {'held':>5} | {'built':>5} | {'wall p50':>8} |")
    print(f"|{'-' * 14}|{'-' * 7}|{'-' * 7}|{'-' * 10}|")
    for name, held, built, wall in rows:
        print(f"| {name:<12} | {held:>5} | {built:>5} | {wall:>8.2f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    anyio.run(main, ap.parse_args().runs)
