"""Its clean-up blocks the event loop, so it exits neither on stdin EOF nor on SIGTERM."""

import time
from contextlib import asynccontextmanager

from _demo import provider


@asynccontextmanager
async def lifespan(config):
    yield {"greeting": "hello"}
    time.sleep(30)  # a blocking call in clean-up


provider.lifespan_fn = lifespan
provider.run()
