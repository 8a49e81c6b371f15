"""A provider that appends its pid to a file when it starts: counts provider starts."""

import os
import sys

import anyio

from gleitzeit_sdk import Provider, RequestContext

provider = Provider(name="counting", version="1.0.0", max_in_flight=16)


@provider.method("count/pid", idempotent=True)
async def pid(ctx: RequestContext) -> dict:
    """Which process served this task."""
    return {"pid": os.getpid()}



@provider.method("count/sleep")
async def sleep(ctx: RequestContext, seconds: float) -> dict:
    """Hold a slot until cancelled (or ``seconds`` pass)."""
    await anyio.sleep(seconds)
    return {"slept": seconds}


if __name__ == "__main__":
    with open(sys.argv[1], "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    provider.run()
