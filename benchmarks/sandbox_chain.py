"""A chain's view of the sandbox: sandboxed `python/execute` requests back to back through the real
provider process, each sent as soon as the previous one answered.

    python benchmarks/sandbox_chain.py [--runs 100] [--pause-ms 0]

Unlike `sandbox_latency.py` (which pauses between executions so that refilling the slot pool is
not billed to the next one) nothing waits here: the fork server refills the pool while the next
executions run, as in a workflow chain. Prints the p50 latency of one request and the CPU per
execution of the provider process and of its whole process tree (fork server, supervisors, PID 1s,
children: `sandbox_cpu.py`'s cpuacct group, root only; this client's own CPU left out). A
benchmark, not a test: numbers depend on the machine and its load, so compare runs made back to
back.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

from gleitzeit_sdk.testing import spawn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sandbox_cpu import CPUACCT, self_ns, tree_cgroup, tree_ns  # noqa: E402 - a sibling script

CODE = "result = context['n'] + 1"
SETTLE = 0.5  # s after the last execution: the pool refills before the window closes


def process_ns(pid: int) -> int:
    """Nanoseconds on the CPU of one process (/proc/PID/schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


async def main(runs: int, pause: float) -> None:
    with tree_cgroup() as group, tempfile.TemporaryDirectory() as state:
        async with spawn([sys.executable, "-m", "provider_python"], env={"PATH": os.environ.get("PATH", "")}) as proc:
            await proc.client.handshake(timeout=30, config={"sandbox": {"state_dir": state}})
            meta = {"runId": "chain", "workflowDir": state}

            async def once(n: int) -> None:
                params = {"code": CODE, "context": {"n": n}, "_meta": meta}
                resp = await proc.client.request("python/execute", params, timeout=60)
                assert resp["result"]["result"] == n + 1, resp

            for n in range(5):  # warm-up, then a full pool
                await once(n)
            await anyio.sleep(SETTLE)
            pid, walls = proc.process.pid, []
            provider0, tree0, client0 = process_ns(pid), tree_ns(group), self_ns()
            for n in range(runs):
                t0 = time.perf_counter()
                await once(n)
                walls.append((time.perf_counter() - t0) * 1000)
                if pause:
                    await anyio.sleep(pause)
            provider = (process_ns(pid) - provider0) / runs / 1e6
            await anyio.sleep(SETTLE)  # the pool refills the last slots taken
            tree = (tree_ns(group) - tree0 - (self_ns() - client0)) / runs / 1e6
    print(f"load (uptime): {os.getloadavg()[0]:.2f}; {runs} executions back to back"
          + (f", {pause * 1000:g} ms apart" if pause else ""))
    print(f"latency p50 {statistics.median(walls):.2f} ms, mean {statistics.mean(walls):.2f} ms; CPU per execution: "
          f"provider process {provider:.2f} ms, its whole tree {tree:.2f} ms")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--pause-ms", type=float, default=0.0)
    args = ap.parse_args()
    if not os.access(CPUACCT, os.W_OK):
        sys.exit(f"needs a writable cgroup v1 cpuacct hierarchy at {CPUACCT} (root)")
    anyio.run(main, args.runs, args.pause_ms / 1000)
