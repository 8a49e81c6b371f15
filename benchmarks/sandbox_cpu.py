"""CPU per sandboxed execution for the whole process tree (host, fork server, supervisors, PID 1s,
children), not just its latency: on 2 cores a fan-out of sandboxed tasks is bound by this.

    python benchmarks/sandbox_cpu.py [--runs 100]

Runs `print(1+1)` through `Sandbox.run` RUNS times, 4 at once (the provider's in-flight limit, as
in a fan-out; `sandbox_latency.py`'s burst), once with every layer and once
with none, and divides the CPU the whole tree used by the executions (slot refills included: the
window ends once the pool is full again). The tree is measured through a cgroup v1 `cpuacct`
group this process moves itself into (root only; every process forked later lands there too,
whoever reaps it: the fork server's supervisors are reaped by the kernel, so getrusage's
RUSAGE_CHILDREN would miss them); the host's own share is getrusage(RUSAGE_SELF). A benchmark,
not a test: numbers depend on the machine and its load, so compare runs made back to back.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator

import anyio

from provider_python.sandbox.host import Sandbox

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sandbox_latency import BURST, CODE, burst_via_sandbox  # noqa: E402 - a sibling script
CPUACCT = "/sys/fs/cgroup/cpuacct"
SETTLE = 0.5  # s after the last execution: the pool refills before the window closes


@contextlib.contextmanager
def tree_cgroup() -> Iterator[str]:
    """A fresh cpuacct group holding this process (and so every process it starts from now on)."""
    group = f"{CPUACCT}/gleitzeit-bench-{os.getpid()}"
    os.mkdir(group)
    try:
        with open(f"{group}/cgroup.procs", "w") as fh:
            fh.write(str(os.getpid()))
        yield group
    finally:
        with open(f"{CPUACCT}/cgroup.procs", "w") as fh:
            fh.write(str(os.getpid()))
        for _ in range(50):  # the fork server's last processes may still be exiting
            try:
                os.rmdir(group)
                break
            except OSError:
                time.sleep(0.1)


def tree_ns(group: str) -> int:
    with open(f"{group}/cpuacct.usage") as fh:
        return int(fh.read())


def self_ns() -> int:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return int((ru.ru_utime + ru.ru_stime) * 1e9)


async def measure(sb: Sandbox, state: str, group: str, runs: int) -> tuple[float, float, float]:
    """(tree CPU ms, host CPU ms, wall p50 ms) per execution."""
    walls: list[float] = []
    round_ = burst_via_sandbox(sb, state, walls)
    for _ in range(2):  # warm-up, then a full pool
        await round_()
    await anyio.sleep(SETTLE)
    walls.clear()
    tree0, host0 = tree_ns(group), self_ns()
    done = 0
    while done < runs:
        await round_()
        done += BURST
        await anyio.sleep(0.02)
    await anyio.sleep(SETTLE)
    tree, host = tree_ns(group) - tree0, self_ns() - host0
    return tree / done / 1e6, host / done / 1e6, statistics.median(walls)


async def main(runs: int) -> None:
    with tree_cgroup() as group, tempfile.TemporaryDirectory() as state:
        rows = []
        for name, layers in (("all layers", None), ("no layers", ())):
            kwargs = {} if layers is None else {"layers": layers}
            async with Sandbox(state_dir=f"{state}/{len(rows)}", **kwargs) as sb:
                rows.append((name, *(await measure(sb, state, group, runs))))
    print(f"load (uptime): {os.getloadavg()[0]:.2f}; {runs} executions of {CODE!r}, {BURST} at once; "
          f"CPU ms per execution (tree = every process, host = this process)")
    print(f"| {'path':<12} | {'tree CPU':>8} | {'host CPU':>8} | {'rest of tree':>12} | {'wall p50':>8} |")
    print(f"|{'-' * 14}|{'-' * 10}|{'-' * 10}|{'-' * 14}|{'-' * 10}|")
    for name, tree, host, wall in rows:
        print(f"| {name:<12} | {tree:>8.2f} | {host:>8.2f} | {tree - host:>12.2f} | {wall:>8.2f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    if not os.access(CPUACCT, os.W_OK):
        sys.exit(f"needs a writable cgroup v1 cpuacct hierarchy at {CPUACCT} (root)")
    anyio.run(main, args.runs)
