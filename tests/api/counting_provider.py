"""A provider that appends its pid to a file when it starts: counts provider starts."""

import os
import sys

from gleitzeit_sdk import Provider, RequestContext

provider = Provider(name="counting", version="1.0.0", max_in_flight=16)


@provider.method("count/pid", idempotent=True)
async def pid(ctx: RequestContext) -> dict:
    """Which process served this task."""
    return {"pid": os.getpid()}


if __name__ == "__main__":
    with open(sys.argv[1], "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    provider.run()
