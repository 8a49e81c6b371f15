"""The provider the dispatcher contract suite runs on every real adapter (protocol ct/v1).

Every method appends ``<event> <name> <pid>`` lines to the file ``log`` (start,
end, cancelled), so a test reads what reached the provider and in which order.
``contract.py`` holds the same behaviour as a ScriptedDispatcher handler.
"""

from __future__ import annotations

import os
from typing import Any

import anyio

from gleitzeit_sdk import Provider, RequestContext

provider = Provider("contract", "1.0.0", max_in_flight=2)


def note(log: str, event: str, name: str) -> None:
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"{event} {name} {os.getpid()}\n")


@provider.method("ct/sleep")
async def sleep(ctx: RequestContext, log: str, name: str, seconds: float = 0.0) -> dict[str, Any]:
    """Hold a slot for ``seconds`` (or until cancelled)."""
    note(log, "start", name)
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        note(log, "cancelled", name)
        raise
    note(log, "end", name)
    return {"name": name, "meta": {k: ctx.meta.get(k) for k in ("attempt", "taskId", "runId", "traceparent")}}


@provider.method("ct/print")
async def print_(ctx: RequestContext, log: str, name: str, lines: list[str]) -> dict[str, Any]:
    """Print ``lines`` on stdout, one output notification each, then answer."""
    note(log, "start", name)
    for line in lines:
        await ctx.output("stdout", line)
    return {"printed": len(lines)}


@provider.method("ct/crash")
async def crash(ctx: RequestContext, log: str, name: str) -> None:
    """The provider process dies in the middle of the request."""
    note(log, "start", name)
    os._exit(3)


if __name__ == "__main__":
    provider.run()
