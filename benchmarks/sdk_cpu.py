"""Provider CPU per trivial request: the Python SDK against a bare pipe echo child (issue 18).

``python -m benchmarks.sdk_cpu --requests N`` drives N ``noop/pass`` requests,
``--in-flight`` at a time (8, the engine's default ``max_concurrent_tasks``),
through the host's own ``ClientConnection`` into (a) the benchmark's no-op
provider, written on the SDK, and (b) the least a JSON-RPC peer can be: a
stdlib loop that parses each line and answers it. It reads each child's CPU
time (user + system, from /proc) before and after, so the figure is the
provider process's cost alone, and prints one JSON line with both per-request
figures and their ratio. ``--profile FILE`` runs the SDK child under cProfile.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio

from gleitzeit_core.providers.connection import ClientConnection
from gleitzeit_sdk import codes

NOOP_PROVIDER = Path(__file__).with_name("noop_provider.py")
# The floor: parse a line, answer a request, ignore a notification.
ECHO_CHILD = (
    "import sys, json\n"
    "for line in sys.stdin:\n"
    "    req = json.loads(line)\n"
    "    if 'id' in req:\n"
    "        sys.stdout.write(json.dumps({'jsonrpc': '2.0', 'id': req['id'], 'result': req.get('params')}) + '\\n')\n"
    "        sys.stdout.flush()\n"
)
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def cpu_per_request(argv: list[str], requests: int, in_flight: int, handshake: bool) -> float:
    """Milliseconds of the child's CPU per request, after a warm-up."""
    async with await anyio.open_process(argv, stderr=None) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        conn = ClientConnection(proc.stdout, proc.stdin)
        async with anyio.create_task_group() as tg:
            tg.start_soon(conn.run)
            if handshake:
                await conn.call("initialize", {"protocolVersion": codes.PROTOCOL_VERSION, "config": {},
                                               "host": {"name": "bench", "version": "0"}})
                await conn.notify("initialized")
            meta = {"taskId": "t", "runId": "r", "attempt": 1, "progressToken": "p"}

            async def worker(n: int) -> None:
                for _ in range(n):
                    await conn.call("noop/pass", {"value": 1, "_meta": meta})

            async def batch(total: int) -> None:
                async with anyio.create_task_group() as workers:
                    for i in range(in_flight):
                        workers.start_soon(worker, total // in_flight + (i < total % in_flight))

            await batch(min(requests, 500))  # warm-up: imports, caches, the first allocations
            cpu0 = cpu_seconds(proc.pid)
            await batch(requests)
            cpu = cpu_seconds(proc.pid) - cpu0
            await proc.stdin.aclose()
            tg.cancel_scope.cancel()
    return cpu / requests * 1000


async def measure(requests: int, in_flight: int, profile: str | None) -> dict[str, Any]:
    sdk = [sys.executable, str(NOOP_PROVIDER)]
    if profile:
        sdk = [sys.executable, "-m", "cProfile", "-o", profile, str(NOOP_PROVIDER)]
    echo_ms = await cpu_per_request([sys.executable, "-c", ECHO_CHILD], requests, in_flight, handshake=False)
    sdk_ms = await cpu_per_request(sdk, requests, in_flight, handshake=True)
    return {"requests": requests, "in_flight": in_flight, "sdk_cpu_ms_per_request": sdk_ms,
            "echo_cpu_ms_per_request": echo_ms, "ratio": sdk_ms / echo_ms if echo_ms else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--in-flight", type=int, default=8)
    ap.add_argument("--profile", help="write the SDK child's cProfile stats here")
    args = ap.parse_args()
    sys.stdout.write(json.dumps(anyio.run(measure, args.requests, args.in_flight, args.profile)) + "\n")


if __name__ == "__main__":
    main()
