"""An MCP stdio server written with the official SDK (``mcp`` 2.x, modern and legacy
era), for what the published servers cannot be made to do on cue: crash in the
middle of a call, report progress from a modern-era server, return a
non-object ``structuredContent``.

Run: python sdk_server.py STATE_DIR   (STATE_DIR holds flags that survive restarts)
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer

state = Path(sys.argv[1])
server = MCPServer("gleitzeit-test")


@server.tool()
def add(a: int, b: int) -> int:
    """a + b (the SDK sends it as structuredContent ``{"result": a + b}``)."""
    return a + b


@server.tool()
async def steps(count: int, ctx: Context) -> str:
    """Report progress count times, then answer."""
    for i in range(1, count + 1):
        await ctx.report_progress(i, count, f"step {i}")
    return f"did {count} steps"


@server.tool()
async def crash_once(flag: str) -> str:
    """The first call (per flag) is killed by SIGKILL mid-call; later calls answer."""
    marker = state / flag
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
        await anyio.sleep(60)
    return f"survived {flag}"


if __name__ == "__main__":
    (state / "starts").open("a").write(f"{os.getpid()}\n")
    server.run()
